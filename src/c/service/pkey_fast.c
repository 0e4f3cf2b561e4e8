/* crypto_service's fast path - the public-key requests of keys a client has already used:
 * ML-DSA, SLH-DSA and ECDSA signatures (keys of the FIPS provider) and verifications, and ML-KEM
 * encapsulations and decapsulations that return the shared secret. See wvds_srv.h for what is
 * answered here and docs/transport.md ("Fast path") for why.
 *
 * The session (aes_fast.c) copies the whole payload out of shared memory before anything here
 * reads it, and has the answer written to a private buffer, copied to the response area once
 * complete: OpenSSL reads back what it has written of an SLH-DSA signature (R, FORS, each
 * layer's WOTS+ signature feed the next step), so a client rewriting its response area while
 * the service signs would make one WOTS+ key sign two different roots - the "grafting trees"
 * fault attack, which forges signatures. Only successes are answered
 * here: a signature that does not verify, a wrong size, an unknown flag or hash go to the
 * Python path, which gives them their status (with the token taken here: wvds_srv_fast_charged).
 * What needs a new key (encaps/decaps without RETURN_SECRET: the secret becomes an AES key)
 * is Python's too.
 *
 * Deletion: every operation holds its key's read lock for its whole length and retire takes
 * the write lock, so once KEY_DELETE is answered no operation uses the key (crypto-erase holds
 * as on the Python path), and the EVP_PKEY is freed then, not when the last grant goes. */
#define _GNU_SOURCE
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "service_internal.h"

struct wvds_srv_pkey {
    _Atomic uint32_t refs;
    pthread_rwlock_t lock; /* read: one operation; write: retire */
    atomic_bool retiring;  /* set before retire waits for the lock: no new operation starts */
    EVP_PKEY *pkey;        /* NULL once retired */
    EVP_SIGNATURE *sig;    /* pure ML-DSA / SLH-DSA: the fetched algorithm (the service's) */
    uint32_t kind, size;   /* WVDS_PKEY_*; signature or ciphertext size (wvds_srv_pkey_new) */
    uint32_t digest;       /* ECDSA: the curve's HASH_DEFAULT */
    bool private_ops;      /* may sign or decapsulate here */
    _Atomic uint64_t uses; /* signatures made here (KEY_DESCRIBE adds them to the Python path's) */
};

/* Payload layouts (include/wvds_crypto.h, wvds.protocol.payloads): a key reference by id is
 * kind (u8, KEYREF_KEY_ID) + key id (u32). */
#define KEYREF_SIZE 5u
#define ENCAPS_SIZE (KEYREF_SIZE + 1u)   /* key ref, flags */
#define DECAPS_FIXED 5u                  /* key id, flags, then the ciphertext */
#define ENCAPS_FIXED 7u                  /* response: key id (u32), ct length (u16), then ct, secret length (u8) */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

wvds_srv_pkey *wvds_srv_pkey_new(void *pkey, void *signature, uint32_t kind, uint32_t size, uint32_t digest,
                                 int private_ops)
{
    if (!pkey || !atomic_load_explicit(&wvds_ossl_ready, memory_order_acquire))
        return NULL; /* not set up: nothing to free it with (the caller's mistake, documented) */
    bool pure = kind == WVDS_PKEY_MLDSA || kind == WVDS_PKEY_SLHDSA;
    wvds_srv_pkey *k = NULL;
    bool digest_ok = kind != WVDS_PKEY_ECDSA || (digest >= WVDS_HASH_SHA256 && digest <= WVDS_HASH_SHA512);
    if ((pure ? signature != NULL : kind == WVDS_PKEY_ECDSA || kind == WVDS_PKEY_MLKEM) && size > 0 &&
        size <= WVDS_MAX_PAYLOAD && digest_ok)
        k = calloc(1, sizeof *k);
    if (!k) {
        wvds_ossl.pkey_free(pkey);
        return NULL;
    }
    atomic_init(&k->refs, 1);
    pthread_rwlock_init(&k->lock, NULL);
    atomic_init(&k->retiring, false);
    k->pkey = pkey, k->sig = signature, k->kind = kind, k->size = size, k->digest = digest;
    k->private_ops = private_ops;
    atomic_init(&k->uses, 0);
    return k;
}

uint64_t wvds_srv_pkey_uses(wvds_srv_pkey *k)
{
    return k ? atomic_load(&k->uses) : 0;
}

void wvds_srv_pkey_ref(wvds_srv_pkey *k)
{
    atomic_fetch_add(&k->refs, 1);
}

void wvds_srv_pkey_retire(wvds_srv_pkey *k)
{
    if (!k)
        return;
    atomic_store(&k->retiring, true); /* glibc's rwlock prefers readers: stop them coming */
    pthread_rwlock_wrlock(&k->lock);
    if (k->pkey)
        wvds_ossl.pkey_free(k->pkey);
    k->pkey = NULL;
    pthread_rwlock_unlock(&k->lock);
}

void wvds_srv_pkey_release(wvds_srv_pkey *k)
{
    if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    wvds_srv_pkey_retire(k);
    pthread_rwlock_destroy(&k->lock);
    free(k);
}

int wvds_srv_pkey_request(uint8_t type, const uint8_t *p, uint32_t len, uint32_t *key_id, uint32_t *need)
{
    switch (type) {
    case WVDS_REQ_MLDSA_SIGN:
    case WVDS_REQ_SLHDSA_SIGN:
    case WVDS_REQ_ECDSA_SIGN:
        if (len < 4)
            return 0;
        *key_id = le32(p), *need = WVDS_USAGE_SIGN;
        return 1;
    case WVDS_REQ_MLDSA_VERIFY:
    case WVDS_REQ_SLHDSA_VERIFY:
    case WVDS_REQ_ECDSA_VERIFY:
        if (len < KEYREF_SIZE || p[0] != WVDS_KEYREF_KEY_ID)
            return 0;
        *key_id = le32(p + 1), *need = WVDS_USAGE_VERIFY;
        return 1;
    case WVDS_REQ_MLKEM_ENCAPS:
        if (len != ENCAPS_SIZE || p[0] != WVDS_KEYREF_KEY_ID || p[5] != WVDS_KEM_RETURN_SECRET)
            return 0;
        *key_id = le32(p + 1), *need = WVDS_USAGE_ENCAPS | WVDS_USAGE_RELEASE_SECRET;
        return 1;
    case WVDS_REQ_MLKEM_DECAPS:
        if (len < DECAPS_FIXED || p[4] != WVDS_KEM_RETURN_SECRET)
            return 0;
        *key_id = le32(p), *need = WVDS_USAGE_DECAPS | WVDS_USAGE_RELEASE_SECRET;
        return 1;
    default:
        return 0;
    }
}

/* Pure ML-DSA / SLH-DSA: context length (u8), context, signature length (u16), signature, message. */
static bool verify_pure(wvds_srv_pkey *k, const uint8_t *p, uint32_t len)
{
    if (len < 1)
        return false;
    uint32_t ctx_len = p[0];
    if (len < 1 + ctx_len + 2)
        return false;
    uint32_t sig_len = le16(p + 1 + ctx_len);
    const uint8_t *sig = p + 3 + ctx_len;
    if (sig_len != k->size || len - 3 - ctx_len < sig_len)
        return false;
    const uint8_t *msg = sig + sig_len;
    size_t msg_len = len - 3 - ctx_len - sig_len;
    OSSL_PARAM params[] = {
        {OSSL_SIGNATURE_PARAM_CONTEXT_STRING, OSSL_PARAM_OCTET_STRING, (void *)(p + 1), ctx_len, OSSL_PARAM_UNMODIFIED},
        {NULL, 0, NULL, 0, 0},
    };
    EVP_PKEY_CTX *ctx = wvds_ossl.pkey_ctx_new(NULL, k->pkey, NULL);
    bool ok = ctx && wvds_ossl.verify_message_init(ctx, k->sig, ctx_len ? params : NULL) > 0 &&
              wvds_ossl.verify(ctx, sig, sig_len, msg, msg_len) == 1;
    wvds_ossl.pkey_ctx_free(ctx);
    return ok;
}

/* Pure ML-DSA / SLH-DSA signing: context length (u8), context, message. */
static bool sign_pure(wvds_srv_pkey *k, const uint8_t *p, uint32_t len, uint8_t *out, uint32_t cap,
                      uint32_t *out_len)
{
    if (len < 1 || len - 1 < p[0] || cap < k->size)
        return false;
    uint32_t ctx_len = p[0];
    size_t sig_len = k->size;
    OSSL_PARAM params[] = {
        {OSSL_SIGNATURE_PARAM_CONTEXT_STRING, OSSL_PARAM_OCTET_STRING, (void *)(p + 1), ctx_len, OSSL_PARAM_UNMODIFIED},
        {NULL, 0, NULL, 0, 0},
    };
    EVP_PKEY_CTX *ctx = wvds_ossl.pkey_ctx_new(NULL, k->pkey, NULL);
    bool ok = ctx && wvds_ossl.sign_message_init(ctx, k->sig, ctx_len ? params : NULL) > 0 &&
              wvds_ossl.sign(ctx, out, &sig_len, p + 1 + ctx_len, len - 1 - ctx_len) > 0 && sig_len == k->size;
    wvds_ossl.pkey_ctx_free(ctx);
    *out_len = (uint32_t)sig_len;
    return ok;
}

/* ECDSA's digests by HashAlg; an ECDSA request's hash (u8) and flags (u8): the digest, or NULL
 * for an unknown hash or flag (the Python path's statuses). */
static const struct digest {
    const char *name;
    size_t size;
} DIGESTS[] = {[WVDS_HASH_SHA256] = {"SHA256", 32}, [WVDS_HASH_SHA384] = {"SHA384", 48},
               [WVDS_HASH_SHA512] = {"SHA512", 64}};

static const struct digest *ecdsa_digest(const wvds_srv_pkey *k, uint8_t hash, uint8_t flags)
{
    if (hash > WVDS_HASH_SHA512 || (flags & ~WVDS_ECDSA_PREHASHED))
        return NULL;
    return &DIGESTS[hash == WVDS_HASH_DEFAULT ? k->digest : hash];
}

static OSSL_PARAM digest_param(const struct digest *md)
{
    return (OSSL_PARAM){OSSL_SIGNATURE_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING, (void *)md->name, strlen(md->name),
                        OSSL_PARAM_UNMODIFIED};
}

/* ECDSA signing: hash (u8), flags (u8), data (or its digest). A DER signature of at most k->size. */
static bool sign_ecdsa(wvds_srv_pkey *k, const uint8_t *p, uint32_t len, uint8_t *out, uint32_t cap,
                       uint32_t *out_len)
{
    const struct digest *md = len >= 2 ? ecdsa_digest(k, p[0], p[1]) : NULL;
    bool prehashed = len >= 2 && (p[1] & WVDS_ECDSA_PREHASHED);
    if (!md || cap < k->size || (prehashed && len - 2 != md->size))
        return false;
    size_t sig_len = k->size;
    bool ok;
    if (prehashed) {
        OSSL_PARAM params[] = {digest_param(md), OSSL_PARAM_END};
        EVP_PKEY_CTX *ctx = wvds_ossl.pkey_ctx_new(NULL, k->pkey, NULL);
        ok = ctx && wvds_ossl.sign_init(ctx, params) > 0 && wvds_ossl.sign(ctx, out, &sig_len, p + 2, len - 2) > 0;
        wvds_ossl.pkey_ctx_free(ctx);
    } else {
        EVP_MD_CTX *mctx = wvds_ossl.md_ctx_new();
        ok = mctx && wvds_ossl.digest_sign_init(mctx, NULL, md->name, NULL, NULL, k->pkey, NULL) > 0 &&
             wvds_ossl.digest_sign(mctx, out, &sig_len, p + 2, len - 2) > 0;
        wvds_ossl.md_ctx_free(mctx);
    }
    *out_len = (uint32_t)sig_len;
    return ok && sig_len > 0 && sig_len <= k->size;
}

/* ECDSA: hash (u8), flags (u8), signature length (u16), DER signature, data (or its digest). */
static bool verify_ecdsa(wvds_srv_pkey *k, const uint8_t *p, uint32_t len)
{
    const struct digest *md = len >= 4 ? ecdsa_digest(k, p[0], p[1]) : NULL;
    if (!md)
        return false;
    uint32_t sig_len = le16(p + 2);
    bool prehashed = p[1] & WVDS_ECDSA_PREHASHED;
    if (sig_len == 0 || sig_len > k->size || len - 4 < sig_len)
        return false;
    const uint8_t *sig = p + 4, *data = sig + sig_len;
    size_t data_len = len - 4 - sig_len;
    bool ok = false;
    if (prehashed) {
        if (data_len != md->size)
            return false;
        OSSL_PARAM params[] = {digest_param(md), OSSL_PARAM_END};
        EVP_PKEY_CTX *ctx = wvds_ossl.pkey_ctx_new(NULL, k->pkey, NULL);
        ok = ctx && wvds_ossl.verify_init(ctx, params) > 0 && wvds_ossl.verify(ctx, sig, sig_len, data, data_len) == 1;
        wvds_ossl.pkey_ctx_free(ctx);
    } else {
        EVP_MD_CTX *mctx = wvds_ossl.md_ctx_new();
        ok = mctx && wvds_ossl.digest_verify_init(mctx, NULL, md->name, NULL, NULL, k->pkey, NULL) > 0 &&
             wvds_ossl.digest_verify(mctx, sig, sig_len, data, data_len) == 1;
        wvds_ossl.md_ctx_free(mctx);
    }
    return ok;
}

/* Response: key id 0 (u32), ciphertext length (u16), ciphertext, secret length (u8), secret. */
static bool encapsulate(wvds_srv_pkey *k, uint8_t *out, uint32_t cap, uint32_t *out_len)
{
    uint32_t n = ENCAPS_FIXED + k->size + WVDS_SHARED_SECRET_SIZE;
    if (cap < n || k->size > UINT16_MAX)
        return false;
    uint8_t *ct = out + 6, *secret = ct + k->size + 1;
    size_t ct_len = k->size, ss_len = WVDS_SHARED_SECRET_SIZE;
    EVP_PKEY_CTX *ctx = wvds_ossl.pkey_ctx_new(NULL, k->pkey, NULL);
    bool ok = ctx && wvds_ossl.encapsulate_init(ctx, NULL) > 0 &&
              wvds_ossl.encapsulate(ctx, ct, &ct_len, secret, &ss_len) > 0 && ct_len == k->size &&
              ss_len == WVDS_SHARED_SECRET_SIZE;
    wvds_ossl.pkey_ctx_free(ctx);
    if (ok) {
        memset(out, 0, 4);
        out[4] = (uint8_t)k->size, out[5] = (uint8_t)(k->size >> 8);
        ct[k->size] = WVDS_SHARED_SECRET_SIZE;
        *out_len = n;
    }
    return ok;
}

/* Request after the key id and flags: the ciphertext. Response: key id 0, secret length, secret. */
static bool decapsulate(wvds_srv_pkey *k, const uint8_t *ct, uint32_t ct_len, uint8_t *out, uint32_t cap,
                        uint32_t *out_len)
{
    uint32_t n = 5 + WVDS_SHARED_SECRET_SIZE;
    if (ct_len != k->size || cap < n)
        return false;
    size_t ss_len = WVDS_SHARED_SECRET_SIZE;
    EVP_PKEY_CTX *ctx = wvds_ossl.pkey_ctx_new(NULL, k->pkey, NULL);
    bool ok = ctx && wvds_ossl.decapsulate_init(ctx, NULL) > 0 &&
              wvds_ossl.decapsulate(ctx, out + 5, &ss_len, ct, ct_len) > 0 && ss_len == WVDS_SHARED_SECRET_SIZE;
    wvds_ossl.pkey_ctx_free(ctx);
    if (ok) {
        memset(out, 0, 4);
        out[4] = WVDS_SHARED_SECRET_SIZE;
        *out_len = n;
    }
    return ok;
}

int wvds_srv_pkey_serves(const wvds_srv_pkey *k, uint8_t type)
{
    switch (type) {
    case WVDS_REQ_MLDSA_SIGN:
        return k->private_ops && k->kind == WVDS_PKEY_MLDSA;
    case WVDS_REQ_SLHDSA_SIGN:
        return k->private_ops && k->kind == WVDS_PKEY_SLHDSA;
    case WVDS_REQ_ECDSA_SIGN:
        return k->private_ops && k->kind == WVDS_PKEY_ECDSA;
    case WVDS_REQ_MLDSA_VERIFY:
        return k->kind == WVDS_PKEY_MLDSA;
    case WVDS_REQ_SLHDSA_VERIFY:
        return k->kind == WVDS_PKEY_SLHDSA;
    case WVDS_REQ_ECDSA_VERIFY:
        return k->kind == WVDS_PKEY_ECDSA;
    case WVDS_REQ_MLKEM_ENCAPS:
        return k->kind == WVDS_PKEY_MLKEM;
    case WVDS_REQ_MLKEM_DECAPS:
        return k->private_ops && k->kind == WVDS_PKEY_MLKEM;
    default:
        return 0;
    }
}

int wvds_srv_pkey_run(wvds_srv_pkey *k, uint8_t type, const uint8_t *p, uint32_t len, uint8_t *out, uint32_t cap,
                      uint32_t *out_len)
{
    bool ok = false, wrote = false;
    if (atomic_load(&k->retiring))
        return 0;
    pthread_rwlock_rdlock(&k->lock);
    if (!k->pkey || !atomic_load_explicit(&wvds_ossl_ready, memory_order_acquire) || !wvds_srv_pkey_serves(k, type))
        goto out;
    switch (type) {
    case WVDS_REQ_MLDSA_SIGN:
    case WVDS_REQ_SLHDSA_SIGN:
        ok = sign_pure(k, p + 4, len - 4, out, cap, out_len), wrote = true;
        break;
    case WVDS_REQ_ECDSA_SIGN:
        ok = sign_ecdsa(k, p + 4, len - 4, out, cap, out_len), wrote = true;
        break;
    case WVDS_REQ_MLDSA_VERIFY:
    case WVDS_REQ_SLHDSA_VERIFY:
        ok = verify_pure(k, p + KEYREF_SIZE, len - KEYREF_SIZE);
        *out_len = 0;
        break;
    case WVDS_REQ_ECDSA_VERIFY:
        ok = verify_ecdsa(k, p + KEYREF_SIZE, len - KEYREF_SIZE);
        *out_len = 0;
        break;
    case WVDS_REQ_MLKEM_ENCAPS:
        ok = encapsulate(k, out, cap, out_len), wrote = true;
        break;
    case WVDS_REQ_MLKEM_DECAPS:
        ok = decapsulate(k, p + DECAPS_FIXED, len - DECAPS_FIXED, out, cap, out_len), wrote = true;
        break;
    }
out:
    pthread_rwlock_unlock(&k->lock);
    if (!ok && wrote)
        explicit_bzero(out, cap); /* a failed operation may have left part of a secret */
    if (ok && (type == WVDS_REQ_MLDSA_SIGN || type == WVDS_REQ_SLHDSA_SIGN || type == WVDS_REQ_ECDSA_SIGN))
        atomic_fetch_add(&k->uses, 1);
    return ok;
}
