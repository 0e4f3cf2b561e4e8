/* crypto_service's fast path - a client's session (its grants, its slots), AES-256-GCM and RANDOM;
 * the public-key requests (sign, verify, ML-KEM) are in pkey_fast.c. See wvds_srv.h for what it answers and
 * docs/transport.md ("Fast path") for why.
 *
 * Shared-memory rules: the header, key id and AAD length are copied out of the slot
 * before they are checked, as on the Python path. An encryption's AAD and plaintext are
 * opaque: OpenSSL reads them once, straight from the slot, and writes the ciphertext
 * straight to its place in the response area. A client that rewrites its slot meanwhile
 * only garbles its own answer: GHASH may then cover bytes it chose, but every tag is
 * masked with E_K(J0) of a fresh provider-generated nonce, so that teaches it nothing
 * about the key or about other messages. A decryption's AAD, nonce, ciphertext and tag
 * are copied out first, because the tag check validates them, and the plaintext goes to a
 * private buffer and into the response only once it is authenticated. */
#define _GNU_SOURCE
#include <openssl/core.h>
#include <openssl/core_names.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "service_internal.h"

/* --- keys and counters -------------------------------------------------------------------- */

struct wvds_srv_aes_key {
    _Atomic uint32_t refs;
    _Atomic uint64_t uses, reserved;
    pthread_rwlock_t ops; /* read: one C operation, until its answer is out; write: retire, protect */
    pthread_mutex_t lock; /* key bytes against retire's wipe; the nonce stream */
    atomic_bool usable;   /* has bytes and is not retired (cleared first by retire, read anywhere) */
    uint8_t bytes[WVDS_AES_256_KEY_SIZE];
    /* Replay protection (replay.c): the decryption window, and this run's nonce stream, which
     * every encryption must then use: for a software key the provider's IV generator (fixed
     * field = epoch, invocation field started at random by the provider), for a key in an HSM
     * the epoch and the next counter. */
    wvds_srv_replay *replay;
    bool software, streamed, started;
    EVP_CIPHER_CTX *gen;
    uint32_t epoch;
    uint64_t next;
};

wvds_srv_aes_key *wvds_srv_aes_key_new(const uint8_t *key32, uint64_t uses, uint64_t reserved)
{
    wvds_srv_aes_key *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    atomic_init(&k->refs, 1);
    atomic_init(&k->uses, uses);
    atomic_init(&k->reserved, reserved);
    pthread_rwlock_init(&k->ops, NULL);
    pthread_mutex_init(&k->lock, NULL);
    atomic_init(&k->usable, false);
    if (key32) {
        k->software = true;
        memcpy(k->bytes, key32, sizeof k->bytes);
        atomic_store(&k->usable, true);
    }
    return k;
}

int wvds_srv_aes_key_count(wvds_srv_aes_key *k, uint64_t limit)
{
    uint64_t u = atomic_load(&k->uses);
    do {
        if (u >= limit)
            return WVDS_COUNT_LIMIT;
        if (u >= atomic_load(&k->reserved))
            return WVDS_COUNT_RESERVE;
    } while (!atomic_compare_exchange_weak(&k->uses, &u, u + 1));
    return WVDS_COUNT_OK;
}

void wvds_srv_aes_key_reserve(wvds_srv_aes_key *k, uint64_t reserved)
{
    uint64_t r = atomic_load(&k->reserved);
    while (reserved > r && !atomic_compare_exchange_weak(&k->reserved, &r, reserved)) {
    }
}

uint64_t wvds_srv_aes_key_uses(wvds_srv_aes_key *k)
{
    return atomic_load(&k->uses);
}

static void key_unref(wvds_srv_aes_key *k)
{
    if (atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    explicit_bzero(k->bytes, sizeof k->bytes);
    if (k->gen)
        wvds_ossl.ctx_free(k->gen);
    wvds_srv_replay_close(k->replay);
    pthread_mutex_destroy(&k->lock);
    pthread_rwlock_destroy(&k->ops);
    free(k);
}

/* A C operation on the key (an encryption or decryption, until its answer is published) holds `ops`
 * to read, so once retire returns none uses the key any more - as KEY_DELETE promises, and as the
 * Python path's KeyTable.using() does - and protect never swaps the window under a decryption.
 * A key being retired is refused before the lock, so a steady stream of operations cannot starve
 * retire (glibc's rwlock prefers readers). */
static bool op_begin(wvds_srv_aes_key *k)
{
    if (!atomic_load(&k->usable))
        return false;
    pthread_rwlock_rdlock(&k->ops);
    if (atomic_load(&k->usable))
        return true;
    pthread_rwlock_unlock(&k->ops);
    return false;
}

static void op_end(wvds_srv_aes_key *k)
{
    pthread_rwlock_unlock(&k->ops);
}

void wvds_srv_aes_key_retire(wvds_srv_aes_key *k)
{
    if (!k)
        return;
    atomic_store(&k->usable, false); /* no new operation starts */
    pthread_rwlock_wrlock(&k->ops);  /* and those under way have answered */
    pthread_mutex_lock(&k->lock);
    explicit_bzero(k->bytes, sizeof k->bytes);
    if (k->gen) /* holds the key schedule */
        wvds_ossl.ctx_free(k->gen);
    k->gen = NULL;
    k->started = false;
    pthread_mutex_unlock(&k->lock);
    pthread_rwlock_unlock(&k->ops);
}

void wvds_srv_aes_key_protect(wvds_srv_aes_key *k, wvds_srv_replay *replay)
{
    pthread_rwlock_wrlock(&k->ops);
    pthread_mutex_lock(&k->lock);
    wvds_srv_replay *old = k->replay;
    k->replay = replay;
    k->streamed = true;
    pthread_mutex_unlock(&k->lock);
    pthread_rwlock_unlock(&k->ops);
    wvds_srv_replay_close(old);
}

int wvds_srv_aes_key_stream(wvds_srv_aes_key *k, uint32_t epoch, uint64_t start)
{
    uint8_t fixed[4] = {(uint8_t)(epoch >> 24), (uint8_t)(epoch >> 16), (uint8_t)(epoch >> 8), (uint8_t)epoch};
    int rc = -1;
    pthread_mutex_lock(&k->lock);
    if (!k->streamed)
        goto out;
    if (!k->software) { /* a key in an HSM: the service supplies the counter's start */
        k->epoch = epoch, k->next = start, k->started = true;
        rc = 0;
        goto out;
    }
    if (!atomic_load(&k->usable) || !atomic_load_explicit(&wvds_ossl_ready, memory_order_acquire))
        goto out;
    EVP_CIPHER_CTX *gen = wvds_ossl.ctx_new();
    /* The provider keeps the invocation field and starts it from its DRBG (SP 800-38D 8.2.1 with
     * the IV generated inside the module: it reports iv-generated). */
    if (!gen || wvds_ossl.encrypt_init(gen, wvds_ossl.cipher, k->bytes, NULL, NULL) <= 0 ||
        wvds_ossl.ctx_ctrl(gen, EVP_CTRL_AEAD_SET_IV_FIXED, (int)sizeof fixed, fixed) <= 0) {
        wvds_ossl.ctx_free(gen);
        goto out;
    }
    if (k->gen)
        wvds_ossl.ctx_free(k->gen);
    k->gen = gen, k->epoch = epoch, k->started = true;
    rc = 0;
out:
    pthread_mutex_unlock(&k->lock);
    return rc;
}

int wvds_srv_aes_key_next_nonce(wvds_srv_aes_key *k, uint8_t *nonce)
{
    int rc = -1;
    pthread_mutex_lock(&k->lock);
    if (k->streamed && k->started && !k->gen) {
        uint64_t c = k->next++;
        for (int i = 0; i < 4; i++)
            nonce[i] = (uint8_t)(k->epoch >> (24 - 8 * i));
        for (int i = 0; i < 8; i++)
            nonce[4 + i] = (uint8_t)(c >> (56 - 8 * i));
        rc = 0;
    }
    pthread_mutex_unlock(&k->lock);
    return rc;
}

/* With `ops` held (either way). */
static int replay_check(wvds_srv_aes_key *k, const uint8_t *nonce)
{
    return k->replay ? wvds_srv_replay_check(k->replay, nonce) : WVDS_REPLAY_FRESH;
}

int wvds_srv_aes_key_replay_check(wvds_srv_aes_key *k, const uint8_t *nonce)
{
    pthread_rwlock_rdlock(&k->ops); /* (not op_begin: the Python path checks a key in an HSM too) */
    int r = replay_check(k, nonce);
    pthread_rwlock_unlock(&k->ops);
    return r;
}

int wvds_srv_aes_key_replay_floor(wvds_srv_aes_key *k, uint32_t epoch)
{
    pthread_rwlock_rdlock(&k->ops);
    int r = k->replay ? 0 : -1;
    if (k->replay)
        wvds_srv_replay_raise_floor(k->replay, epoch);
    pthread_rwlock_unlock(&k->ops);
    return r;
}

void wvds_srv_aes_key_release(wvds_srv_aes_key *k)
{
    if (k)
        key_unref(k);
}

/* --- sessions --------------------------------------------------------------------------- */

/* f->out: the largest response payload (a decryption's plaintext is at most MAX_PAYLOAD). */
#define OUT_CAP (WVDS_SLOT_RESP_AREA - WVDS_HEADER_SIZE)
_Static_assert(OUT_CAP >= WVDS_MAX_PAYLOAD + WVDS_GCM_TAG_SIZE, "f->out holds a decryption's plaintext");

#define GRANTS 32 /* keys a client uses at once through the fast path; more only means a Python detour */

typedef struct grant {
    uint32_t key_id, usage;
    wvds_srv_aes_key *key; /* an AES key's grant, or */
    wvds_srv_pkey *pkey;   /* a public-key key's; both NULL: free entry */
} grant;

struct wvds_srv_fast {
    wvds_srv_bucket *bucket;
    uint64_t limit;
    atomic_bool stopped;
    pthread_mutex_t lock; /* grants */
    grant grants[GRANTS];
    unsigned next_victim;
    uint16_t slot_count; /* of the channel being served (wvds_srv_serve) */
    uint8_t *in;  /* a decryption's or public-key request's payload, copied out of the slot */
    uint8_t *out; /* a decryption's plaintext until the tag has verified; a public-key answer until complete */
    /* Requests returned to the caller after the fast path took their rate-limit token (take_token). */
    _Atomic uint8_t charged[WVDS_SHM_MAX_SLOTS];
    /* Slots handed to the service and not yet released: the service's own record of what it is
     * working on (the state word in shared memory is the client's to write too). */
    _Atomic uint8_t held[WVDS_SHM_MAX_SLOTS];
};

wvds_srv_fast *wvds_srv_fast_new(wvds_srv_bucket *bucket, uint64_t limit)
{
    wvds_srv_fast *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->in = malloc(WVDS_MAX_PAYLOAD);
    f->out = malloc(OUT_CAP);
    if (!f->in || !f->out) {
        free(f->in);
        free(f->out);
        free(f);
        return NULL;
    }
    f->bucket = bucket;
    f->limit = limit;
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

static bool in_use(const grant *g)
{
    return g->key || g->pkey;
}

/* The one grant of key_id (of either kind) becomes `with` (which carries its references). */
static void put_grant(wvds_srv_fast *f, grant with)
{
    pthread_mutex_lock(&f->lock);
    grant *g = NULL;
    for (unsigned i = 0; i < GRANTS && !g; i++)
        if (in_use(&f->grants[i]) && f->grants[i].key_id == with.key_id)
            g = &f->grants[i];
    for (unsigned i = 0; i < GRANTS && !g; i++)
        if (!in_use(&f->grants[i]))
            g = &f->grants[i];
    if (!g)
        g = &f->grants[f->next_victim++ % GRANTS];
    grant old = *g;
    *g = with;
    pthread_mutex_unlock(&f->lock);
    if (old.key)
        key_unref(old.key);
    wvds_srv_pkey_release(old.pkey);
}

int wvds_srv_fast_grant(wvds_srv_fast *f, uint32_t key_id, wvds_srv_aes_key *key, uint32_t usage)
{
    usage &= WVDS_USAGE_ENCRYPT | WVDS_USAGE_DECRYPT;
    if (!f || !key || key_id == 0 || !usage)
        return -1;
    atomic_fetch_add(&key->refs, 1);
    put_grant(f, (grant){key_id, usage, key, NULL});
    return 0;
}

int wvds_srv_fast_grant_pkey(wvds_srv_fast *f, uint32_t key_id, wvds_srv_pkey *key, uint32_t usage)
{
    usage &= WVDS_USAGE_SIGN | WVDS_USAGE_VERIFY | WVDS_USAGE_ENCAPS | WVDS_USAGE_DECAPS | WVDS_USAGE_RELEASE_SECRET;
    if (!f || !key || key_id == 0 || !usage)
        return -1;
    wvds_srv_pkey_ref(key);
    put_grant(f, (grant){key_id, usage, NULL, key});
    return 0;
}

static int fast_held(void *ctx, unsigned slot)
{
    wvds_srv_fast *f = ctx;
    return slot < WVDS_SHM_MAX_SLOTS && atomic_load_explicit(&f->held[slot], memory_order_acquire);
}

static void fast_hold(void *ctx, unsigned slot)
{
    wvds_srv_fast *f = ctx;
    if (slot < WVDS_SHM_MAX_SLOTS)
        atomic_store_explicit(&f->held[slot], 1, memory_order_release);
}

void wvds_srv_fast_release(wvds_srv_fast *f, int slot)
{
    if (f && slot >= 0 && (unsigned)slot < WVDS_SHM_MAX_SLOTS) {
        atomic_store_explicit(&f->charged[slot], 0, memory_order_relaxed);
        atomic_store_explicit(&f->held[slot], 0, memory_order_release);
    }
}

int wvds_srv_fast_charged(wvds_srv_fast *f, int slot)
{
    if (!f || slot < 0 || (unsigned)slot >= WVDS_SHM_MAX_SLOTS)
        return 0;
    return atomic_exchange_explicit(&f->charged[slot], 0, memory_order_relaxed);
}

/* Takes the client's rate-limit token for the request in `slot`. Should the fast path not answer
 * it after all (a signature that does not verify, a failed tag ...), the slot stays marked and the
 * caller does not take a second token (wvds_srv_fast_charged): one token per request, whichever
 * path answers it. */
static bool take_token(wvds_srv_fast *f, unsigned slot)
{
    if (!wvds_srv_bucket_allow(f->bucket))
        return false;
    atomic_store_explicit(&f->charged[slot], 1, memory_order_relaxed);
    return true;
}

void wvds_srv_fast_stop(wvds_srv_fast *f)
{
    if (f)
        atomic_store(&f->stopped, true);
}

void wvds_srv_fast_free(wvds_srv_fast *f)
{
    if (!f)
        return;
    for (unsigned i = 0; i < GRANTS; i++) {
        if (f->grants[i].key)
            key_unref(f->grants[i].key);
        wvds_srv_pkey_release(f->grants[i].pkey);
    }
    pthread_mutex_destroy(&f->lock);
    explicit_bzero(f->in, WVDS_MAX_PAYLOAD);
    explicit_bzero(f->out, OUT_CAP);
    free(f->in);
    free(f->out);
    free(f);
}

/* The granted key for key_id with all of `usage`, with a reference for the caller; NULL if
 * none (a retired key's grant is dropped here). */
static wvds_srv_aes_key *granted(wvds_srv_fast *f, uint32_t key_id, uint32_t usage)
{
    wvds_srv_aes_key *k = NULL, *dropped = NULL;
    pthread_mutex_lock(&f->lock);
    for (unsigned i = 0; i < GRANTS; i++) {
        grant *g = &f->grants[i];
        if (!g->key || g->key_id != key_id) /* (a public-key key's grant never matches: no AES key) */
            continue;
        if (!atomic_load(&g->key->usable)) { /* a stale "usable" is caught again under the key's lock */
            dropped = g->key;
            g->key = NULL;
        } else if ((g->usage & usage) == usage) {
            k = g->key;
            atomic_fetch_add(&k->refs, 1);
        }
        break;
    }
    pthread_mutex_unlock(&f->lock);
    if (dropped)
        key_unref(dropped);
    return k;
}

/* The granted public-key key for key_id with all of `usage`, with a reference; NULL if none. (A
 * retired one stays until replaced: wvds_srv_pkey_run refuses it.) */
static wvds_srv_pkey *granted_pkey(wvds_srv_fast *f, uint32_t key_id, uint32_t usage)
{
    wvds_srv_pkey *k = NULL;
    pthread_mutex_lock(&f->lock);
    for (unsigned i = 0; i < GRANTS && !k; i++) {
        grant *g = &f->grants[i];
        if (g->pkey && g->key_id == key_id && (g->usage & usage) == usage) {
            k = g->pkey;
            wvds_srv_pkey_ref(k);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return k;
}

/* --- requests ------------------------------------------------------------------------------ */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* AES request payload before the AAD: key id (u32), AAD length (u16). */
#define AES_FIXED 6u
/* RANDOM request payload: the length (u32), nothing else. */
#define RANDOM_FIXED 4u

/* The response header for a SUCCESS with `payload_len` bytes already in place, then DONE. */
static void publish(void *shm, unsigned slot, size_t payload_len)
{
    uint8_t *r = wvds_slot_response(shm, slot);
    uint32_t n = (uint32_t)payload_len;
    r[0] = WVDS_RESPONSE_MAGIC, r[1] = WVDS_PROTOCOL_VERSION, r[2] = WVDS_SUCCESS, r[3] = 0;
    r[4] = (uint8_t)n, r[5] = (uint8_t)(n >> 8), r[6] = (uint8_t)(n >> 16), r[7] = (uint8_t)(n >> 24);
    wvds_slot_publish(shm, slot, WVDS_HEADER_SIZE + n);
}

static bool key_init(EVP_CIPHER_CTX *ctx, wvds_srv_aes_key *k, bool encrypt, const uint8_t *nonce)
{
    pthread_mutex_lock(&k->lock);
    bool ok = atomic_load(&k->usable) && (encrypt ? wvds_ossl.encrypt_init(ctx, wvds_ossl.cipher, k->bytes, NULL, NULL)
                                    : wvds_ossl.decrypt_init(ctx, wvds_ossl.cipher, k->bytes, nonce, NULL)) > 0;
    pthread_mutex_unlock(&k->lock);
    return ok;
}

/* One encryption with the key (op_begin held): nonce, ciphertext (pt_len bytes, may be where the plaintext
 * was read from only if they do not overlap partially) and tag. A replay-protected key
 * takes its nonce from this run's stream (none started yet: false, the caller goes to the
 * Python path, which starts it); any other key a fresh provider-generated random nonce.
 * Either way the provider must report the nonce as generated inside it. */
static bool seal(wvds_srv_aes_key *k, const uint8_t *aad, int aad_len, const uint8_t *pt, int pt_len, uint8_t *nonce,
                 uint8_t *ct, uint8_t *tag)
{
    unsigned generated = 0;
    OSSL_PARAM q[] = {
        {OSSL_CIPHER_PARAM_IV, OSSL_PARAM_OCTET_STRING, nonce, WVDS_GCM_NONCE_SIZE, OSSL_PARAM_UNMODIFIED},
        {OSSL_CIPHER_PARAM_AEAD_IV_GENERATED, OSSL_PARAM_UNSIGNED_INTEGER, &generated, sizeof generated,
         OSSL_PARAM_UNMODIFIED},
        {NULL, 0, NULL, 0, 0},
    };
    int a = 0, n = 0, m = 0; /* bytes out of the AAD, data and final steps */
    bool ok, streamed = k->streamed;
    EVP_CIPHER_CTX *ctx;
    if (streamed) { /* the stream's generator, one encryption at a time */
        pthread_mutex_lock(&k->lock);
        ctx = atomic_load(&k->usable) ? k->gen : NULL;
        ok = ctx && wvds_ossl.encrypt_init(ctx, NULL, NULL, NULL, NULL) > 0 &&
             wvds_ossl.ctx_ctrl(ctx, EVP_CTRL_GCM_IV_GEN, WVDS_GCM_NONCE_SIZE, nonce) > 0;
    } else {
        ctx = wvds_ossl.ctx_new();
        ok = ctx && key_init(ctx, k, true, NULL);
    }
    ok = ok && (aad_len == 0 || wvds_ossl.encrypt_update(ctx, NULL, &a, aad, aad_len) > 0) &&
         (pt_len == 0 || wvds_ossl.encrypt_update(ctx, ct, &n, pt, pt_len) > 0) &&
         wvds_ossl.encrypt_final(ctx, ct + n, &m) > 0 &&
         wvds_ossl.ctx_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, WVDS_GCM_TAG_SIZE, tag) > 0 &&
         wvds_ossl.ctx_get_params(ctx, streamed ? q + 1 : q) > 0 && generated == 1 &&
         (streamed || q[0].return_size == WVDS_GCM_NONCE_SIZE) && n + m == pt_len;
    if (streamed)
        pthread_mutex_unlock(&k->lock);
    else
        wvds_ossl.ctx_free(ctx);
    return ok;
}

int wvds_srv_aes_key_seal(wvds_srv_aes_key *k, const uint8_t *aad, uint32_t aad_len, const uint8_t *pt,
                          uint32_t pt_len, uint8_t *nonce, uint8_t *ct, uint8_t *tag)
{
    if (!atomic_load_explicit(&wvds_ossl_ready, memory_order_acquire) || aad_len > INT32_MAX || pt_len > INT32_MAX ||
        !op_begin(k))
        return -1;
    bool ok = seal(k, aad, (int)aad_len, pt, (int)pt_len, nonce, ct, tag);
    op_end(k);
    return ok ? 0 : -1;
}

static bool encrypt(void *shm, unsigned slot, wvds_srv_aes_key *k, const uint8_t *aad, int aad_len,
                    const uint8_t *pt, int pt_len)
{
    /* The ciphertext goes straight to its place in the response: nonce || ciphertext || tag. */
    uint8_t *r = wvds_slot_response(shm, slot), *ct = r + WVDS_HEADER_SIZE + WVDS_GCM_NONCE_SIZE;
    uint8_t nonce[WVDS_GCM_NONCE_SIZE], tag[WVDS_GCM_TAG_SIZE];
    if (!op_begin(k))
        return false;
    bool ok = seal(k, aad, aad_len, pt, pt_len, nonce, ct, tag);
    if (ok) {
        memcpy(r + WVDS_HEADER_SIZE, nonce, sizeof nonce);
        memcpy(ct + pt_len, tag, sizeof tag);
        publish(shm, slot, sizeof nonce + (size_t)pt_len + sizeof tag);
    }
    op_end(k);
    return ok;
}

static bool decrypt(wvds_srv_fast *f, void *shm, unsigned slot, wvds_srv_aes_key *k, int aad_len, int sealed_len)
{
    const uint8_t *aad = f->in, *nonce = f->in + aad_len, *ct = nonce + WVDS_GCM_NONCE_SIZE;
    int ct_len = sealed_len - (int)(WVDS_GCM_NONCE_SIZE + WVDS_GCM_TAG_SIZE);
    uint8_t tag[WVDS_GCM_TAG_SIZE];
    memcpy(tag, ct + ct_len, sizeof tag);
    if (!op_begin(k))
        return false;
    EVP_CIPHER_CTX *ctx = wvds_ossl.ctx_new();
    int a = 0, n = 0, m = 0;
    bool ok = ctx && key_init(ctx, k, false, nonce) &&
              (aad_len == 0 || wvds_ossl.decrypt_update(ctx, NULL, &a, aad, aad_len) > 0) &&
              (ct_len == 0 || wvds_ossl.decrypt_update(ctx, f->out, &n, ct, ct_len) > 0) &&
              wvds_ossl.ctx_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, WVDS_GCM_TAG_SIZE, tag) > 0 &&
              wvds_ossl.decrypt_final(ctx, f->out + n, &m) > 0 && n + m == ct_len;
    wvds_ossl.ctx_free(ctx);
    /* Only an authenticated nonce enters the window (forgeries cannot move it); a replayed or
     * too old one goes to the Python path, which decrypts again and answers NONCE_REUSE. */
    ok = ok && replay_check(k, nonce) == WVDS_REPLAY_FRESH;
    if (ok) { /* released only once authenticated */
        memcpy(wvds_slot_response(shm, slot) + WVDS_HEADER_SIZE, f->out, (size_t)ct_len);
        publish(shm, slot, (size_t)ct_len);
    }
    op_end(k);
    explicit_bzero(f->out, (size_t)ct_len);
    return ok;
}

/* RANDOM: `n` bytes from the DRBG the Python path uses (the default library context, fips=yes),
 * made in f->out and then copied to the response area: the CTR-DRBG zeroes its output buffer
 * and encrypts it in place, and OpenSSL never works in memory the client can write. Only a
 * well-formed request (exactly a u32 length, at most MAX_PAYLOAD) within the rate limit is
 * answered here; a bad one, a refused token or a DRBG failure goes to Python for its status. */
static int random_answer(wvds_srv_fast *f, void *shm, unsigned slot, uint32_t payload_len, uint32_t n)
{
    if (payload_len != RANDOM_FIXED || n > WVDS_MAX_PAYLOAD || n > OUT_CAP || !take_token(f, slot))
        return 0;
    if (n > 0 && wvds_ossl.rand_bytes(NULL, f->out, n, 0) <= 0)
        return 0;
    memcpy(wvds_slot_response(shm, slot) + WVDS_HEADER_SIZE, f->out, n);
    explicit_bzero(f->out, n); /* the client's secret, perhaps (a key it makes) */
    publish(shm, slot, n);
    return 1;
}

/* A public-key request (pkey_fast.c) on a granted key. It costs as much as an ML-DSA or ML-KEM
 * operation, so it is answered here only while no other request of the client waits: overlapping
 * ones go to the caller, which spreads them over its worker pool. The payload is copied out first. */
/* prefix: the payload's first AES_FIXED bytes, copied with the header (every key reference lies in them). */
static int pkey_answer(wvds_srv_fast *f, void *shm, unsigned slot, uint8_t type, const uint8_t *prefix,
                       uint32_t payload_len)
{
    uint32_t key_id, need, copied_id, n = 0;
    if (wvds_srv_pending(shm, f->slot_count) > 0) /* (-1 without a serve call yet: nothing waits) */
        return 0;
    if (!wvds_srv_pkey_request(type, prefix, payload_len, &key_id, &need))
        return 0;
    wvds_srv_pkey *k = granted_pkey(f, key_id, need); /* before the copy: an ungranted key costs none */
    if (!k || !wvds_srv_pkey_serves(k, type)) {
        wvds_srv_pkey_release(k);
        return 0;
    }
    /* From here only the copy is read; a client that rewrote the key reference meanwhile goes to Python. */
    memcpy(f->in, wvds_slot_request(shm, slot) + WVDS_HEADER_SIZE, payload_len);
    if (!wvds_srv_pkey_request(type, f->in, payload_len, &copied_id, &need) || copied_id != key_id) {
        wvds_srv_pkey_release(k);
        return 0;
    }
    /* The token is taken before the work (else a client out of tokens would get it done and only
     * its answer refused); a failure after it goes to Python without taking another. The answer is
     * made in f->out, never in the client's memory (pkey_fast.c says why), and wiped there after. */
    int ok = take_token(f, slot) && wvds_srv_pkey_run(k, type, f->in, payload_len, f->out, OUT_CAP, &n);
    wvds_srv_pkey_release(k);
    if (ok) {
        memcpy(wvds_slot_response(shm, slot) + WVDS_HEADER_SIZE, f->out, n);
        publish(shm, slot, n);
    }
    if (ok)
        explicit_bzero(f->out, n); /* (a failed operation wiped what it may have written: wvds_srv_pkey_run) */
    return ok;
}

int wvds_srv_fast_answer(wvds_srv_fast *f, void *shm, unsigned slot, uint32_t req_len)
{
    uint8_t head[WVDS_HEADER_SIZE + AES_FIXED] = {0};
    if (!atomic_load_explicit(&wvds_ossl_ready, memory_order_acquire) || atomic_load(&f->stopped) ||
        req_len < WVDS_HEADER_SIZE + RANDOM_FIXED || req_len > WVDS_SLOT_REQ_AREA)
        return 0;
    const uint8_t *req = wvds_slot_request(shm, slot);
    memcpy(head, req, req_len < sizeof head ? req_len : sizeof head);
    uint32_t payload_len = req_len - WVDS_HEADER_SIZE, key_id = le32(head + 8);
    if (head[0] != WVDS_REQUEST_MAGIC || head[1] != WVDS_PROTOCOL_VERSION || head[3] != 0 ||
        le32(head + 4) != payload_len)
        return 0;
    switch (head[2]) {
    case WVDS_REQ_RANDOM:
        return random_answer(f, shm, slot, payload_len, le32(head + 8));
    case WVDS_REQ_MLDSA_SIGN:
    case WVDS_REQ_SLHDSA_SIGN:
    case WVDS_REQ_ECDSA_SIGN:
    case WVDS_REQ_MLDSA_VERIFY:
    case WVDS_REQ_SLHDSA_VERIFY:
    case WVDS_REQ_ECDSA_VERIFY:
    case WVDS_REQ_MLKEM_ENCAPS:
    case WVDS_REQ_MLKEM_DECAPS:
        return pkey_answer(f, shm, slot, head[2], head + WVDS_HEADER_SIZE, payload_len);
    }
    uint32_t aad_len = (uint32_t)head[12] | (uint32_t)head[13] << 8;
    bool enc = head[2] == WVDS_REQ_AES_ENCRYPT;
    if (req_len < sizeof head || (!enc && head[2] != WVDS_REQ_AES_DECRYPT) || payload_len < AES_FIXED + aad_len)
        return 0;
    uint32_t data_len = payload_len - AES_FIXED - aad_len;
    if (!enc && data_len < WVDS_GCM_NONCE_SIZE + WVDS_GCM_TAG_SIZE)
        return 0;
    wvds_srv_aes_key *k = granted(f, key_id, enc ? WVDS_USAGE_ENCRYPT : WVDS_USAGE_DECRYPT);
    if (!k)
        return 0;
    bool ok = false;
    /* The token first, then the count: a request the bucket refuses must not use up an invocation
     * (a client out of tokens could otherwise burn a shared key's 2^32 at the speed of its round
     * trips), and one the counter sends to Python (a reservation to persist, the limit) has paid
     * its token here (wvds_srv_fast_charged). */
    if (take_token(f, slot) && (!enc || wvds_srv_aes_key_count(k, f->limit) == WVDS_COUNT_OK)) {
        const uint8_t *body = req + WVDS_HEADER_SIZE + AES_FIXED;
        if (enc) {
            ok = encrypt(shm, slot, k, body, (int)aad_len, body + aad_len, (int)data_len);
        } else {
            memcpy(f->in, body, aad_len + data_len);
            ok = decrypt(f, shm, slot, k, (int)aad_len, (int)data_len);
        }
    }
    key_unref(k);
    return ok;
}

static int fast_answer(void *ctx, void *shm, unsigned slot, uint32_t req_len)
{
    wvds_srv_fast *f = ctx;
    if (!wvds_srv_fast_answer(f, shm, slot, req_len))
        return 0;
    atomic_store_explicit(&f->charged[slot], 0, memory_order_relaxed); /* answered: its token is spent */
    return 1;
}

int wvds_srv_serve(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us, int timeout_ms,
                   wvds_srv_fast *f, uint8_t *out, uint32_t out_cap, uint32_t *out_len)
{
    wvds_serve_hooks hooks = {.ctx = f, .answer = fast_answer, .held = fast_held, .hold = fast_hold};
    if (f)
        f->slot_count = slot_count;
    return wvds_slots_serve(shm, slot_count, doorbell_fd, sock_fd, spin_us, timeout_ms, f ? &hooks : NULL, out,
                            out_cap, out_len);
}
