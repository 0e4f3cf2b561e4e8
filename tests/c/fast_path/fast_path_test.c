/* Unit test of crypto_service's fast path, AES and RANDOM (src/c/service/aes_fast.c, bucket.c), in C
 * with the real libcrypto, run by tests/c/test_fast_path.py under ASan/UBSan natively and
 * hardened under qemu-user. The service is played by this program: it writes request
 * frames into a slot, marks it BUSY as wvds_srv_next would, and calls wvds_srv_fast_answer.
 *
 * Checks: answers only what it should (grants, usage, header, lengths, counters, limit,
 * bucket, stop, retired keys), every answer is right (checked with EVP independently), the
 * nonce is never repeated, a refused request leaves the slot untouched, and random frames
 * never crash it; RANDOM only for exactly a u32 length of at most MAX_PAYLOAD, within the
 * bucket, with fresh bytes. Prints PASS. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "service_internal.h"

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
#define KEY_ID 0x1234567u
static void *shm;

/* Writes an AES frame into slot 0's request area and marks the slot BUSY; returns req_len. */
static uint32_t build(uint8_t type, uint32_t key_id, const uint8_t *aad, uint16_t aad_len, const uint8_t *data,
                      size_t len)
{
    uint8_t *r = wvds_slot_request(shm, 0);
    uint32_t plen = (uint32_t)(6 + aad_len + len);
    r[0] = WVDS_REQUEST_MAGIC, r[1] = WVDS_PROTOCOL_VERSION, r[2] = type, r[3] = 0;
    memcpy(r + 4, &plen, 4);
    memcpy(r + 8, &key_id, 4);
    memcpy(r + 12, &aad_len, 2);
    memcpy(r + 14, aad, aad_len);
    memcpy(r + 14 + aad_len, data, len);
    wvds_slot_header *h = wvds_slot_at(shm, 0);
    atomic_store(&h->state, WVDS_SLOT_BUSY);
    atomic_store(&h->resp_len, 0);
    return 8 + plen;
}

/* A RANDOM frame with `plen` payload bytes (the first four: n), offered to the fast path: 1 if it answered. */
static int offer_random(wvds_srv_fast *f, uint32_t n, uint32_t plen)
{
    uint8_t *r = wvds_slot_request(shm, 0);
    r[0] = WVDS_REQUEST_MAGIC, r[1] = WVDS_PROTOCOL_VERSION, r[2] = WVDS_REQ_RANDOM, r[3] = 0;
    memcpy(r + 4, &plen, 4);
    memset(r + 8, 0, plen);
    memcpy(r + 8, &n, plen < 4 ? plen : 4);
    wvds_slot_header *h = wvds_slot_at(shm, 0);
    atomic_store(&h->state, WVDS_SLOT_BUSY);
    atomic_store(&h->resp_len, 0);
    return wvds_srv_fast_answer(f, shm, 0, 8 + plen);
}

/* Builds the frame and offers it to the fast path: 1 if it answered. */
static int offer(wvds_srv_fast *f, uint8_t type, uint32_t key_id, const uint8_t *aad, uint16_t aad_len,
                 const uint8_t *data, size_t len)
{
    return wvds_srv_fast_answer(f, shm, 0, build(type, key_id, aad, aad_len, data, len));
}

/* The answer in slot 0: its payload, or NULL unless it is a DONE SUCCESS frame. */
static const uint8_t *answer(size_t *len)
{
    wvds_slot_header *h = wvds_slot_at(shm, 0);
    const uint8_t *f = wvds_slot_response(shm, 0);
    uint32_t flen = atomic_load(&h->resp_len), plen;
    memcpy(&plen, f + 4, 4);
    if (atomic_load(&h->state) != WVDS_SLOT_DONE || flen < 8 || f[0] != WVDS_RESPONSE_MAGIC || f[2] != 0 ||
        plen != flen - 8)
        return NULL;
    *len = plen;
    return f + 8;
}

static int evp_decrypt(const uint8_t *aad, size_t aad_len, const uint8_t *sealed, size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l, ok = EVP_DecryptInit_ex2(c, EVP_aes_256_gcm(), KEY, sealed, NULL) &&
                EVP_DecryptUpdate(c, NULL, &l, aad, (int)aad_len) &&
                EVP_DecryptUpdate(c, out, &l, sealed + 12, (int)(n - 28)) &&
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(sealed + n - 16)) &&
                EVP_DecryptFinal_ex(c, out + l, &l);
    EVP_CIPHER_CTX_free(c);
    return ok;
}

int main(void)
{
    EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    wvds_srv_ossl fns = {gcm,
                         (void *)EVP_CIPHER_CTX_new,
                         (void *)EVP_CIPHER_CTX_free,
                         (void *)EVP_EncryptInit_ex2,
                         (void *)EVP_EncryptUpdate,
                         (void *)EVP_EncryptFinal_ex,
                         (void *)EVP_DecryptInit_ex2,
                         (void *)EVP_DecryptUpdate,
                         (void *)EVP_DecryptFinal_ex,
                         (void *)EVP_CIPHER_CTX_ctrl,
                         (void *)EVP_CIPHER_CTX_get_params,
                         (void *)RAND_bytes_ex};
    size_t size = wvds_srv_shm_size(1);
    shm = aligned_alloc(4096, size);
    wvds_srv_init_control(shm, 1, 1);
    wvds_srv_bucket *open = wvds_srv_bucket_new(0, 1, 0);
    wvds_srv_fast *f = wvds_srv_fast_new(open, 1u << 30);
    wvds_srv_aes_key *key = wvds_srv_aes_key_new(KEY, 0, 1u << 30);
    static uint8_t data[WVDS_MAX_PAYLOAD], out[WVDS_MAX_PAYLOAD], sealed[WVDS_MAX_PAYLOAD + 64], kept[64];
    const uint8_t aad[] = "header";
    const uint8_t *a;
    size_t n = 0, sealed_len = 0;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);

    CHECK(offer(f, WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, 100) == 0, "before setup");
    CHECK(wvds_srv_fast_setup(&fns) == 0 && wvds_srv_fast_setup(&fns) == -1, "setup once");
    CHECK(offer(f, WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, 100) == 0, "no grant");
    CHECK(wvds_srv_fast_grant(f, KEY_ID, key, WVDS_USAGE_DECRYPT | WVDS_USAGE_SIGN) == 0, "grant decrypt only");
    CHECK(offer(f, WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, 100) == 0, "encrypt not granted");
    CHECK(wvds_srv_fast_grant(f, KEY_ID, key, WVDS_USAGE_ENCRYPT | WVDS_USAGE_DECRYPT) == 0, "grant both");
    CHECK(wvds_srv_fast_grant(f, KEY_ID, key, WVDS_USAGE_SIGN) == -1, "no AES usage");

    /* round trips of every size class, each checked with EVP */
    size_t sizes[] = {0, 1, 16, 17, 4096, WVDS_MAX_PAYLOAD - 6 - 6};
    uint8_t first_nonce[12];
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t len = sizes[i];
        CHECK(offer(f, WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, len) == 1, "encrypt %zu", len);
        a = answer(&n);
        CHECK(a && n == len + 28, "encrypt answer %zu", len);
        if (!a)
            continue;
        memcpy(sealed, a, n);
        if (len == 17) { /* kept for the refusals below */
            memcpy(kept, a, n);
            sealed_len = n;
        }
        CHECK(evp_decrypt(aad, 6, sealed, n, out) && memcmp(out, data, len) == 0, "EVP decrypts %zu", len);
        if (i == 0)
            memcpy(first_nonce, sealed, 12);
        else
            CHECK(memcmp(first_nonce, sealed, 12) != 0, "fresh nonce");
        if (len <= WVDS_MAX_PAYLOAD - 6 - 6 - 28) {
            CHECK(offer(f, WVDS_REQ_AES_DECRYPT, KEY_ID, aad, 6, sealed, n) == 1, "decrypt %zu", len);
            a = answer(&n);
            CHECK(a && n == len && memcmp(a, data, len) == 0, "decrypt answer %zu", len);
        }
    }
    CHECK(wvds_srv_aes_key_uses(key) == 6, "six encryptions counted: %llu",
          (unsigned long long)wvds_srv_aes_key_uses(key));

    /* RANDOM: no grant needed; fresh bytes of exactly the length asked */
    uint32_t rsizes[] = {0, 1, 16, 1000, WVDS_MAX_PAYLOAD};
    for (size_t i = 0; i < sizeof rsizes / sizeof *rsizes; i++) {
        memset(wvds_slot_response(shm, 0) + 8, 0, rsizes[i]);
        CHECK(offer_random(f, rsizes[i], 4) == 1, "random %u", rsizes[i]);
        a = answer(&n);
        CHECK(a && n == rsizes[i], "random answer %u", rsizes[i]);
        if (a && n >= 1000) {
            size_t zeros = 0;
            for (size_t k = 0; k < n; k++)
                zeros += a[k] == 0;
            CHECK(zeros < n / 64, "random bytes written (%zu zeros in %zu)", zeros, n);
        }
    }
    CHECK(offer_random(f, 16, 4) == 1 && (a = answer(&n)) && n == 16, "random 16");
    memcpy(kept, a, 16);
    CHECK(offer_random(f, 16, 4) == 1 && (a = answer(&n)) && n == 16 && memcmp(kept, a, 16) != 0, "fresh");
    memset(wvds_slot_response(shm, 0), 0xEE, 64);
    CHECK(offer_random(f, WVDS_MAX_PAYLOAD + 1, 4) == 0, "random above MAX_PAYLOAD");
    CHECK(offer_random(f, 16, 3) == 0 && offer_random(f, 16, 5) == 0 && offer_random(f, 16, 0) == 0,
          "random payload not exactly a u32");
    CHECK(atomic_load(&wvds_slot_at(shm, 0)->state) == WVDS_SLOT_BUSY && wvds_slot_response(shm, 0)[0] == 0xEE,
          "refused RANDOM leaves the slot alone");

    /* what it leaves to the caller: the slot stays BUSY and untouched */
    memset(wvds_slot_response(shm, 0), 0xEE, 64);
    kept[sealed_len - 1] ^= 1;
    CHECK(offer(f, WVDS_REQ_AES_DECRYPT, KEY_ID, aad, 6, kept, sealed_len) == 0, "tampered tag");
    CHECK(offer(f, WVDS_REQ_AES_DECRYPT, KEY_ID, aad, 6, kept, 27) == 0, "shorter than nonce + tag");
    CHECK(offer(f, WVDS_REQ_AES_ENCRYPT, KEY_ID + 1, aad, 6, data, 10) == 0, "other key id");
    CHECK(offer(f, WVDS_REQ_RANDOM, KEY_ID, aad, 6, data, 10) == 0, "not AES");
    uint8_t *req = wvds_slot_request(shm, 0);
    struct {
        unsigned off;
        uint8_t val;
        uint32_t len;
        const char *what;
    } spoil[] = {{0, 0x00, 0, "magic"},         {1, 0x02, 0, "version"},
                 {3, 0x01, 0, "flags"},         {4, 0x00, 0, "header length"},
                 {12, 0xFF, 0, "AAD past end"}, {0, 0, 13, "shorter than key id + AAD length"},
                 {0, 0, WVDS_SLOT_REQ_AREA + 1, "req_len past the area"}};
    for (size_t i = 0; i < sizeof spoil / sizeof *spoil; i++) {
        uint32_t len = build(WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, 10); /* a valid frame to spoil */
        if (!spoil[i].len)
            req[spoil[i].off] = spoil[i].val;
        CHECK(wvds_srv_fast_answer(f, shm, 0, spoil[i].len ? spoil[i].len : len) == 0, "%s", spoil[i].what);
    }
    CHECK(atomic_load(&wvds_slot_at(shm, 0)->state) == WVDS_SLOT_BUSY &&
              wvds_slot_response(shm, 0)[0] == 0xEE,
          "refusals leave the slot alone");

    /* counters: the reservation and the limit stop it, Python's reserve lets it go on */
    wvds_srv_aes_key *small = wvds_srv_aes_key_new(KEY, 0, 3);
    wvds_srv_fast *limited = wvds_srv_fast_new(open, 5);
    wvds_srv_fast_grant(limited, 7, small, WVDS_USAGE_ENCRYPT);
    int answered = 0;
    for (int i = 0; i < 10; i++)
        answered += offer(limited, WVDS_REQ_AES_ENCRYPT, 7, aad, 6, data, 10);
    CHECK(answered == 3 && wvds_srv_aes_key_count(small, 5) == WVDS_COUNT_RESERVE, "stops at the reservation");
    wvds_srv_aes_key_reserve(small, 100);
    wvds_srv_aes_key_reserve(small, 50); /* never goes back */
    for (int i = 0; i < 10; i++)
        answered += offer(limited, WVDS_REQ_AES_ENCRYPT, 7, aad, 6, data, 10);
    CHECK(answered == 5 && wvds_srv_aes_key_count(small, 5) == WVDS_COUNT_LIMIT && wvds_srv_aes_key_uses(small) == 5,
          "stops at the limit (%d answered)", answered);

    /* the bucket: burst 3 at 1/s, then refused */
    wvds_srv_bucket *tight = wvds_srv_bucket_new(1, 3, 10);
    wvds_srv_fast *rated = wvds_srv_fast_new(tight, 1000);
    wvds_srv_fast_grant(rated, KEY_ID, key, WVDS_USAGE_ENCRYPT);
    answered = 0;
    for (int i = 0; i < 6; i++)
        answered += offer(rated, WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, 10);
    CHECK(answered == 3 && !wvds_srv_bucket_allow(tight), "bucket: %d answered", answered);
    CHECK(offer_random(rated, 16, 4) == 0, "RANDOM takes a token too");

    /* random frames with the granted key id: nothing crashes, every answer is right */
    srand(7);
    int rights = 0;
    for (int i = 0; i < 20000; i++) {
        uint8_t type = rand() % 2 ? WVDS_REQ_AES_ENCRYPT : WVDS_REQ_AES_DECRYPT;
        size_t dlen = (size_t)rand() % 200;
        uint16_t alen = (uint16_t)(rand() % 20);
        for (size_t k = 0; k < dlen; k++)
            data[k] = (uint8_t)rand();
        if (offer(f, type, KEY_ID, data + 100, alen, data, dlen)) {
            a = answer(&n);
            CHECK(a && type == WVDS_REQ_AES_ENCRYPT && n == dlen + 28 && evp_decrypt(data + 100, alen, a, n, out) &&
                      memcmp(out, data, dlen) == 0,
                  "random frame %d answered wrongly", i);
            rights++;
        }
        if (rand() % 50 == 0) { /* and some raw garbage */
            for (size_t k = 0; k < 64; k++)
                wvds_slot_request(shm, 0)[k] = (uint8_t)rand();
            wvds_srv_fast_answer(f, shm, 0, (uint32_t)rand() % (WVDS_SLOT_REQ_AREA + 100));
        }
    }
    CHECK(rights > 5000, "random encryptions answered: %d", rights);

    /* stop, and a retired key */
    wvds_srv_fast_stop(rated);
    CHECK(offer(rated, WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, 10) == 0, "stopped");
    wvds_srv_aes_key_retire(key);
    CHECK(offer(f, WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, 10) == 0, "retired key");
    CHECK(wvds_srv_fast_grant(f, KEY_ID, key, WVDS_USAGE_ENCRYPT) == 0 &&
              offer(f, WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, 10) == 0,
          "a retired key granted again is still refused");

    wvds_srv_fast_free(f);
    wvds_srv_fast_free(limited);
    wvds_srv_fast_free(rated);
    wvds_srv_aes_key_release(key); /* the last reference: freed here (ASan checks) */
    wvds_srv_aes_key_release(small);
    wvds_srv_bucket_free(open);
    wvds_srv_bucket_free(tight);
    free(shm);
    EVP_CIPHER_free(gcm);
    if (failures)
        return 1;
    printf("PASS\n");
    return 0;
}
