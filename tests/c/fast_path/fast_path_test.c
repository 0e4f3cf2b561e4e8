/* Unit test of crypto_service's fast path, AES, RANDOM and the public-key requests (src/c/service/aes_fast.c,
 * pkey_fast.c, bucket.c), in C
 * with the real libcrypto, run by tests/c/test_fast_path.py under ASan/UBSan natively and
 * hardened under qemu-user. The service is played by this program: it writes request
 * frames into a slot, marks it BUSY as wvds_srv_next would, and calls wvds_srv_fast_answer.
 *
 * Checks: answers only what it should (grants, usage, header, lengths, counters, limit,
 * bucket, stop, retired keys), every answer is right (checked with EVP independently), the
 * nonce is never repeated, a refused request leaves the slot untouched, and random frames
 * never crash it; RANDOM only for exactly a u32 length of at most MAX_PAYLOAD, within the
 * bucket, with fresh bytes; OpenSSL never writes an answer (signature, KEM, random) into the
 * client's memory (it reads back what it wrote of an SLH-DSA signature); retiring an AES key waits for the
 * decryption under way. Prints PASS. */
#define _GNU_SOURCE /* usleep */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "service_internal.h"

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
#define KEY_ID 0x1234567u
static void *shm;
static size_t shm_bytes;

/* The output buffers the fast path hands OpenSSL's signing, KEM and DRBG calls (through wvds_srv_ossl): none
 * may lie in shared memory, which the client can rewrite while OpenSSL reads it back. */
static int outputs_seen, outputs_in_shm;
static void note_output(const void *out)
{
    if (!out)
        return;
    outputs_seen++;
    const uint8_t *o = out, *m = shm;
    outputs_in_shm += o >= m && o < m + shm_bytes;
}
static int rand_seen(OSSL_LIB_CTX *c, unsigned char *out, size_t n, unsigned int strength)
{
    note_output(out);
    return RAND_bytes_ex(c, out, n, strength);
}
static int sign_seen(EVP_PKEY_CTX *c, unsigned char *sig, size_t *n, const unsigned char *tbs, size_t len)
{
    note_output(sig);
    return EVP_PKEY_sign(c, sig, n, tbs, len);
}
static int digest_sign_seen(EVP_MD_CTX *c, unsigned char *sig, size_t *n, const unsigned char *tbs, size_t len)
{
    note_output(sig);
    return EVP_DigestSign(c, sig, n, tbs, len);
}
static int encapsulate_seen(EVP_PKEY_CTX *c, unsigned char *ct, size_t *ct_len, unsigned char *ss, size_t *ss_len)
{
    note_output(ct), note_output(ss);
    return EVP_PKEY_encapsulate(c, ct, ct_len, ss, ss_len);
}
static int decapsulate_seen(EVP_PKEY_CTX *c, unsigned char *ss, size_t *ss_len, const unsigned char *ct, size_t n)
{
    note_output(ss);
    return EVP_PKEY_decapsulate(c, ss, ss_len, ct, n);
}

/* A decryption that lingers in its last step while `slow_final` is set (the retire test); `in_final` says
 * it got there. */
static _Atomic int slow_final, in_final;
static int decrypt_final_slow(EVP_CIPHER_CTX *c, unsigned char *out, int *n)
{
    if (atomic_load(&slow_final)) {
        atomic_store(&in_final, 1);
        usleep(200 * 1000);
    }
    return EVP_DecryptFinal_ex(c, out, n);
}

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

/* A public-key request with this payload in slot 0 (BUSY), offered to the fast path: 1 if it answered. */
static int offer_payload(wvds_srv_fast *f, uint8_t type, const uint8_t *payload, uint32_t plen)
{
    uint8_t *r = wvds_slot_request(shm, 0);
    r[0] = WVDS_REQUEST_MAGIC, r[1] = WVDS_PROTOCOL_VERSION, r[2] = type, r[3] = 0;
    memcpy(r + 4, &plen, 4);
    memcpy(r + 8, payload, plen);
    wvds_slot_header *h = wvds_slot_at(shm, 0);
    atomic_store(&h->state, WVDS_SLOT_BUSY);
    atomic_store(&h->resp_len, 0);
    return wvds_srv_fast_answer(f, shm, 0, 8 + plen);
}

/* Key reference by id, then `rest`, into p: the payload's length. */
static uint32_t keyref_payload(uint8_t *p, uint32_t key_id, const uint8_t *rest, size_t n)
{
    p[0] = WVDS_KEYREF_KEY_ID;
    memcpy(p + 1, &key_id, 4);
    memcpy(p + 5, rest, n);
    return (uint32_t)(5 + n);
}

/* ML-DSA verify payload: key ref, context, signature, message. */
static uint32_t mldsa_payload(uint8_t *p, uint32_t key_id, const uint8_t *ctx, uint8_t ctx_len, const uint8_t *sig,
                              uint16_t sig_len, const uint8_t *msg, size_t msg_len)
{
    uint8_t *q = p + keyref_payload(p, key_id, &ctx_len, 1);
    memcpy(q, ctx, ctx_len), q += ctx_len;
    memcpy(q, &sig_len, 2), q += 2;
    memcpy(q, sig, sig_len), q += sig_len;
    memcpy(q, msg, msg_len), q += msg_len;
    return (uint32_t)(q - p);
}

/* Verify (ML-DSA-44, ECDSA P-256) and ML-KEM-768 encaps/decaps on granted keys, each checked with EVP;
 * everything the Python path must answer (failures, wrong kind, missing usage, inline keys, no
 * RETURN_SECRET, every truncation) is left alone; a retired key is refused. */
static void public_key_requests(wvds_srv_fast *f)
{
    static uint8_t p[WVDS_MAX_PAYLOAD], sig[5000];
    const uint8_t msg[] = "reading 42", ctx[] = "ctx";
    size_t n, sig_len = sizeof sig;
    const uint8_t *a = NULL;
    const uint32_t DSA = 0x501, KEM = 0x502, EC = 0x503;

    EVP_PKEY *dsa = EVP_PKEY_Q_keygen(NULL, NULL, "ML-DSA-44");
    EVP_SIGNATURE *alg = EVP_SIGNATURE_fetch(NULL, "ML-DSA-44", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_octet_string("context-string", (void *)ctx, 3), OSSL_PARAM_END};
    EVP_PKEY_CTX *sc = EVP_PKEY_CTX_new_from_pkey(NULL, dsa, NULL);
    CHECK(dsa && alg && sc && EVP_PKEY_sign_message_init(sc, alg, params) == 1 &&
              EVP_PKEY_sign(sc, sig, &sig_len, msg, sizeof msg) == 1 && sig_len == 2420,
          "ML-DSA-44 signature made");
    EVP_PKEY_CTX_free(sc);
    EVP_PKEY_up_ref(dsa);
    wvds_srv_pkey *dk = wvds_srv_pkey_new(dsa, alg, WVDS_PKEY_MLDSA, 2420, 0, 0);
    uint32_t len = mldsa_payload(p, DSA, ctx, 3, sig, (uint16_t)sig_len, msg, sizeof msg);
    CHECK(dk && offer_payload(f, WVDS_REQ_MLDSA_VERIFY, p, len) == 0, "verify before the grant");
    CHECK(wvds_srv_fast_grant_pkey(f, DSA, dk, WVDS_USAGE_ENCRYPT | WVDS_USAGE_EXPORTABLE) == -1,
          "no public-key usage");
    CHECK(wvds_srv_fast_grant_pkey(f, DSA, dk, WVDS_USAGE_VERIFY) == 0, "grant verify");
    CHECK(offer_payload(f, WVDS_REQ_MLDSA_VERIFY, p, len) == 1 && (a = answer(&n)) && n == 0, "verified in C");
    CHECK(offer_payload(f, WVDS_REQ_SLHDSA_VERIFY, p, len) == 0, "an ML-DSA key for SLHDSA_VERIFY");
    for (uint32_t cut = 0; cut < len; cut += cut < 40 ? 1 : 97)
        CHECK(offer_payload(f, WVDS_REQ_MLDSA_VERIFY, p, cut) == 0, "truncated to %u", cut);
    p[len - 1] ^= 1;
    CHECK(offer_payload(f, WVDS_REQ_MLDSA_VERIFY, p, len) == 0, "other message");
    len = mldsa_payload(p, DSA, ctx, 2, sig, (uint16_t)sig_len, msg, sizeof msg);
    CHECK(offer_payload(f, WVDS_REQ_MLDSA_VERIFY, p, len) == 0, "other context");
    len = mldsa_payload(p, DSA, ctx, 3, sig, (uint16_t)sig_len - 1, msg, sizeof msg);
    CHECK(offer_payload(f, WVDS_REQ_MLDSA_VERIFY, p, len) == 0, "short signature");
    len = mldsa_payload(p, DSA, ctx, 3, sig, (uint16_t)sig_len, msg, sizeof msg);
    p[0] = WVDS_KEYREF_INLINE;
    CHECK(offer_payload(f, WVDS_REQ_MLDSA_VERIFY, p, len) == 0, "inline key");

    /* ML-DSA signing: only a key that may sign here (private_ops), and only with SIGN granted */
    uint8_t sp[4 + 1 + 3 + sizeof msg];
    const uint32_t SIGNER = 0x504;
    memcpy(sp, &SIGNER, 4), sp[4] = 3, memcpy(sp + 5, ctx, 3), memcpy(sp + 8, msg, sizeof msg);
    CHECK(wvds_srv_fast_grant_pkey(f, SIGNER, dk, WVDS_USAGE_SIGN | WVDS_USAGE_VERIFY) == 0 &&
              offer_payload(f, WVDS_REQ_MLDSA_SIGN, sp, sizeof sp) == 0,
          "a key without private_ops does not sign here");
    EVP_PKEY_up_ref(dsa);
    wvds_srv_pkey *sk = wvds_srv_pkey_new(dsa, alg, WVDS_PKEY_MLDSA, 2420, 0, 1);
    CHECK(sk && wvds_srv_fast_grant_pkey(f, SIGNER, sk, WVDS_USAGE_VERIFY) == 0 &&
              offer_payload(f, WVDS_REQ_MLDSA_SIGN, sp, sizeof sp) == 0,
          "SIGN not granted");
    CHECK(wvds_srv_fast_grant_pkey(f, SIGNER, sk, WVDS_USAGE_SIGN) == 0, "grant sign");
    for (int i = 0; i < 3; i++) {
        CHECK(offer_payload(f, WVDS_REQ_MLDSA_SIGN, sp, sizeof sp) == 1 && (a = answer(&n)) && n == 2420,
              "signed in C");
        EVP_PKEY_CTX *vc = EVP_PKEY_CTX_new_from_pkey(NULL, dsa, NULL);
        CHECK(a && EVP_PKEY_verify_message_init(vc, alg, params) == 1 &&
                  EVP_PKEY_verify(vc, a, n, msg, sizeof msg) == 1,
              "the signature verifies with EVP");
        EVP_PKEY_CTX_free(vc);
    }
    CHECK(wvds_srv_pkey_uses(sk) == 3, "three signatures counted");
    CHECK(offer_payload(f, WVDS_REQ_SLHDSA_SIGN, sp, sizeof sp) == 0 &&
              offer_payload(f, WVDS_REQ_ECDSA_SIGN, sp, 10) == 0,
          "an ML-DSA key for other signatures");
    for (uint32_t cut = 0; cut < 8; cut++)
        CHECK(offer_payload(f, WVDS_REQ_MLDSA_SIGN, sp, cut) == 0, "sign request cut to %u", cut);
    wvds_srv_pkey_retire(sk);
    CHECK(offer_payload(f, WVDS_REQ_MLDSA_SIGN, sp, sizeof sp) == 0 && wvds_srv_pkey_uses(sk) == 3, "retired signer");
    wvds_srv_pkey_release(sk);

    /* ECDSA P-256: DER signature over SHA-256 (HASH_DEFAULT) and over a given SHA-256 digest */
    EVP_PKEY *eck = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t der_len = sizeof der;
    CHECK(eck && EVP_DigestSignInit_ex(mc, NULL, "SHA256", NULL, NULL, eck, NULL) == 1 &&
              EVP_DigestSign(mc, der, &der_len, msg, sizeof msg) == 1,
          "ECDSA signature made");
    EVP_MD_CTX_free(mc);
    EVP_PKEY_up_ref(eck);
    wvds_srv_pkey *ek = wvds_srv_pkey_new(eck, NULL, WVDS_PKEY_ECDSA, 72, WVDS_HASH_SHA256, 0);
    CHECK(ek && wvds_srv_fast_grant_pkey(f, EC, ek, WVDS_USAGE_VERIFY) == 0, "grant ECDSA");
    uint8_t head[4] = {WVDS_HASH_DEFAULT, 0, (uint8_t)der_len, 0}, body[200];
    memcpy(body, head, 4), memcpy(body + 4, der, der_len), memcpy(body + 4 + der_len, msg, sizeof msg);
    len = keyref_payload(p, EC, body, 4 + der_len + sizeof msg);
    CHECK(offer_payload(f, WVDS_REQ_ECDSA_VERIFY, p, len) == 1 && answer(&n) && n == 0, "ECDSA verified in C");
    CHECK(offer_payload(f, WVDS_REQ_MLDSA_VERIFY, p, len) == 0, "an EC key for MLDSA_VERIFY");
    p[5] = WVDS_HASH_SHA384;
    CHECK(offer_payload(f, WVDS_REQ_ECDSA_VERIFY, p, len) == 0, "other hash");
    p[5] = 9;
    CHECK(offer_payload(f, WVDS_REQ_ECDSA_VERIFY, p, len) == 0, "unknown hash");
    p[5] = WVDS_HASH_DEFAULT, p[6] = 2;
    CHECK(offer_payload(f, WVDS_REQ_ECDSA_VERIFY, p, len) == 0, "unknown flag");
    p[6] = WVDS_ECDSA_PREHASHED;
    CHECK(offer_payload(f, WVDS_REQ_ECDSA_VERIFY, p, len) == 0, "prehashed but not a digest");
    /* ECDSA signing, over the data and over a SHA-384 digest, each verified with EVP */
    EVP_PKEY_up_ref(eck);
    wvds_srv_pkey *es = wvds_srv_pkey_new(eck, NULL, WVDS_PKEY_ECDSA, 72, WVDS_HASH_SHA256, 1);
    const uint32_t ECS = 0x505;
    uint8_t eq[4 + 2 + 48];
    memcpy(eq, &ECS, 4), eq[4] = WVDS_HASH_DEFAULT, eq[5] = 0, memcpy(eq + 6, msg, sizeof msg);
    CHECK(es && wvds_srv_fast_grant_pkey(f, ECS, es, WVDS_USAGE_SIGN) == 0 &&
              offer_payload(f, WVDS_REQ_ECDSA_SIGN, eq, 6 + sizeof msg) == 1 && (a = answer(&n)) && n > 8 && n <= 72,
          "ECDSA signed in C");
    mc = EVP_MD_CTX_new();
    CHECK(a && EVP_DigestVerifyInit_ex(mc, NULL, "SHA256", NULL, NULL, eck, NULL) == 1 &&
              EVP_DigestVerify(mc, a, n, msg, sizeof msg) == 1,
          "the ECDSA signature verifies with EVP");
    EVP_MD_CTX_free(mc);
    eq[4] = WVDS_HASH_SHA384, eq[5] = WVDS_ECDSA_PREHASHED;
    memset(eq + 6, 0x42, 48);
    CHECK(offer_payload(f, WVDS_REQ_ECDSA_SIGN, eq, sizeof eq) == 1 && (a = answer(&n)), "ECDSA signed a digest");
    OSSL_PARAM dp384[] = {OSSL_PARAM_utf8_string("digest", "SHA384", 6), OSSL_PARAM_END};
    EVP_PKEY_CTX *ec = EVP_PKEY_CTX_new_from_pkey(NULL, eck, NULL);
    CHECK(a && EVP_PKEY_verify_init_ex(ec, dp384) == 1 && EVP_PKEY_verify(ec, a, n, eq + 6, 48) == 1,
          "the prehashed signature verifies with EVP");
    EVP_PKEY_CTX_free(ec);
    CHECK(offer_payload(f, WVDS_REQ_ECDSA_SIGN, eq, sizeof eq - 1) == 0, "prehashed: not a SHA-384 digest");
    eq[5] = 2;
    CHECK(offer_payload(f, WVDS_REQ_ECDSA_SIGN, eq, sizeof eq) == 0, "unknown flag");
    eq[4] = 4, eq[5] = 0;
    CHECK(offer_payload(f, WVDS_REQ_ECDSA_SIGN, eq, sizeof eq) == 0, "unknown hash");
    wvds_srv_pkey_release(es);

    /* ML-KEM-768: encaps and decaps returning the secret */
    EVP_PKEY *kem = EVP_PKEY_Q_keygen(NULL, NULL, "ML-KEM-768");
    EVP_PKEY_up_ref(kem);
    wvds_srv_pkey *kk = wvds_srv_pkey_new(kem, NULL, WVDS_PKEY_MLKEM, 1088, 0, 1);
    uint8_t flags = WVDS_KEM_RETURN_SECRET, ct[1088], secret[32];
    len = keyref_payload(p, KEM, &flags, 1);
    CHECK(kk && wvds_srv_fast_grant_pkey(f, KEM, kk, WVDS_USAGE_ENCAPS | WVDS_USAGE_DECAPS) == 0, "grant KEM");
    CHECK(offer_payload(f, WVDS_REQ_MLKEM_ENCAPS, p, len) == 0, "no RELEASE_SECRET: not released");
    CHECK(wvds_srv_fast_grant_pkey(f, KEM, kk, WVDS_USAGE_ENCAPS | WVDS_USAGE_DECAPS | WVDS_USAGE_RELEASE_SECRET) == 0,
          "grant KEM with RELEASE_SECRET");
    a = NULL;
    CHECK(offer_payload(f, WVDS_REQ_MLKEM_ENCAPS, p, len) == 1 && (a = answer(&n)) && n == 4 + 2 + 1088 + 1 + 32 &&
              memcmp(a, "\0\0\0\0\x40\x04", 6) == 0 && a[6 + 1088] == 32,
          "encapsulated in C");
    if (a && n == 4 + 2 + 1088 + 1 + 32) {
        memcpy(ct, a + 6, sizeof ct), memcpy(secret, a + 7 + 1088, sizeof secret);
        uint8_t mine[32];
        size_t mine_len = sizeof mine;
        EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new_from_pkey(NULL, kem, NULL);
        CHECK(EVP_PKEY_decapsulate_init(dc, NULL) == 1 &&
                  EVP_PKEY_decapsulate(dc, mine, &mine_len, ct, sizeof ct) == 1 &&
                  memcmp(mine, secret, 32) == 0,
              "EVP decapsulates the same secret");
        EVP_PKEY_CTX_free(dc);
        uint8_t dp[5 + 1088] = {0};
        memcpy(dp, &KEM, 4), dp[4] = WVDS_KEM_RETURN_SECRET, memcpy(dp + 5, ct, sizeof ct);
        CHECK(offer_payload(f, WVDS_REQ_MLKEM_DECAPS, dp, sizeof dp) == 1 && (a = answer(&n)) && n == 37 &&
                  memcmp(a, "\0\0\0\0\x20", 5) == 0 && memcmp(a + 5, secret, 32) == 0,
              "decapsulated in C");
        CHECK(offer_payload(f, WVDS_REQ_MLKEM_DECAPS, dp, sizeof dp - 1) == 0, "short ciphertext");
        dp[4] = 0;
        CHECK(offer_payload(f, WVDS_REQ_MLKEM_DECAPS, dp, sizeof dp) == 0, "no RETURN_SECRET: a new key (Python)");
    }
    flags = 0;
    len = keyref_payload(p, KEM, &flags, 1);
    CHECK(offer_payload(f, WVDS_REQ_MLKEM_ENCAPS, p, len) == 0, "encaps making a key: Python");
    flags = 3;
    len = keyref_payload(p, KEM, &flags, 1);
    CHECK(offer_payload(f, WVDS_REQ_MLKEM_ENCAPS, p, len) == 0, "unknown flag");

    /* Mutated requests (bytes flipped, lengths cut or grown, the type changed) against the granted keys:
     * never a crash (ASan), and what C answers is right - a verification only of the unchanged
     * request, a decapsulation only with the secret EVP gets from the ciphertext in the request. */
    uint32_t vlen = mldsa_payload(p, DSA, ctx, 3, sig, (uint16_t)sig_len, msg, sizeof msg);
    static uint8_t orig_v[WVDS_MAX_PAYLOAD], orig_d[5 + 1088], m[WVDS_MAX_PAYLOAD];
    memcpy(orig_v, p, vlen);
    memcpy(orig_d, &KEM, 4), orig_d[4] = WVDS_KEM_RETURN_SECRET, memcpy(orig_d + 5, ct, sizeof ct);
    int verified = 0, decapsulated = 0;
    srand(7);
    for (int i = 0; i < 3000; i++) {
        bool kem_req = i & 1;
        uint8_t type = kem_req ? WVDS_REQ_MLKEM_DECAPS : WVDS_REQ_MLDSA_VERIFY;
        uint32_t mlen = kem_req ? sizeof orig_d : vlen;
        memcpy(m, kem_req ? orig_d : orig_v, mlen);
        for (int k = rand() % 4; k > 0 && mlen > 0; k--) {
            switch (rand() % 4) {
            case 0: m[rand() % mlen] ^= (uint8_t)(1 + rand() % 255); break;
            case 1: m[rand() % (mlen < 12 ? mlen : 12)] = (uint8_t)rand(); break; /* the fixed fields */
            case 2: mlen = (uint32_t)rand() % (mlen + 1); break;
            default: type = (uint8_t)(rand() % 2 ? WVDS_REQ_ECDSA_VERIFY : WVDS_REQ_MLKEM_ENCAPS); break;
            }
        }
        if (!offer_payload(f, type, m, mlen))
            continue;
        a = answer(&n);
        if (type == WVDS_REQ_MLDSA_VERIFY) {
            CHECK(a && n == 0 && mlen == vlen && memcmp(m, orig_v, vlen) == 0, "verified a changed request");
            verified++;
        } else if (type == WVDS_REQ_MLKEM_DECAPS) {
            uint8_t mine[32];
            size_t mine_len = sizeof mine;
            EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new_from_pkey(NULL, kem, NULL);
            CHECK(a && n == 37 && mlen == sizeof orig_d && memcmp(m, &KEM, 4) == 0 &&
                      EVP_PKEY_decapsulate_init(dc, NULL) == 1 &&
                      EVP_PKEY_decapsulate(dc, mine, &mine_len, m + 5, 1088) == 1 && memcmp(a + 5, mine, 32) == 0,
                  "decapsulation answered for a changed request");
            EVP_PKEY_CTX_free(dc);
            decapsulated++;
        } else {
            CHECK(type == WVDS_REQ_MLKEM_ENCAPS && a && n == 4 + 2 + 1088 + 1 + 32, "answered type %u", type);
        }
    }
    CHECK(verified > 100 && decapsulated > 100, "mutations: %d verified, %d decapsulated", verified, decapsulated);

    /* retired keys: nothing more in C; release frees them (ASan: no leak, no use after free) */
    wvds_srv_pkey_retire(dk);
    len = mldsa_payload(p, DSA, ctx, 3, sig, (uint16_t)sig_len, msg, sizeof msg);
    CHECK(offer_payload(f, WVDS_REQ_MLDSA_VERIFY, p, len) == 0, "retired key");
    wvds_srv_pkey_retire(kk);
    flags = WVDS_KEM_RETURN_SECRET;
    len = keyref_payload(p, KEM, &flags, 1);
    CHECK(offer_payload(f, WVDS_REQ_MLKEM_ENCAPS, p, len) == 0, "retired KEM key");
    CHECK(wvds_srv_pkey_new(NULL, NULL, WVDS_PKEY_MLKEM, 1088, 0, 0) == NULL, "no key");
    EVP_PKEY_up_ref(kem);
    CHECK(wvds_srv_pkey_new(kem, NULL, WVDS_PKEY_MLDSA, 2420, 0, 0) == NULL, "ML-DSA kind without its algorithm");
    wvds_srv_pkey_release(dk);
    wvds_srv_pkey_release(ek);
    wvds_srv_pkey_release(kk);
    EVP_PKEY_free(dsa);
    EVP_PKEY_free(eck);
    EVP_PKEY_free(kem);
    EVP_SIGNATURE_free(alg);
}

struct decryption {
    wvds_srv_fast *f;
    uint32_t req_len;
    int answered;
};

static void *decrypt_in_thread(void *arg)
{
    struct decryption *d = arg;
    d->answered = wvds_srv_fast_answer(d->f, shm, 0, d->req_len);
    return NULL;
}

/* KEY_DELETE's promise on the C path: once retire returns, no operation with the key is under way - a
 * decryption that started before has published its answer (it holds the key until then). */
static void retire_waits_for_a_decryption(wvds_srv_fast *f, const uint8_t *aad, const uint8_t *data)
{
    static uint8_t sealed[200];
    size_t n = 0;
    const uint8_t *a = NULL;
    const uint32_t ID = 0x777;
    wvds_srv_aes_key *k = wvds_srv_aes_key_new(KEY, 0, 1u << 30);
    CHECK(k && wvds_srv_fast_grant(f, ID, k, WVDS_USAGE_ENCRYPT | WVDS_USAGE_DECRYPT) == 0 &&
              offer(f, WVDS_REQ_AES_ENCRYPT, ID, aad, 6, data, 100) == 1 && (a = answer(&n)) && n == 128,
          "sealed for the retire test");
    if (a)
        memcpy(sealed, a, 128);
    struct decryption d = {f, build(WVDS_REQ_AES_DECRYPT, ID, aad, 6, sealed, 128), 0};
    pthread_t t;
    atomic_store(&slow_final, 1);
    CHECK(pthread_create(&t, NULL, decrypt_in_thread, &d) == 0, "thread");
    while (!atomic_load(&in_final)) /* the decryption is in its last step, holding the key */
        usleep(1000);
    wvds_srv_aes_key_retire(k);
    wvds_slot_header *h = wvds_slot_at(shm, 0);
    CHECK(atomic_load(&h->state) == WVDS_SLOT_DONE, "retire returned while a decryption was under way");
    pthread_join(t, NULL);
    atomic_store(&slow_final, 0);
    CHECK(d.answered == 1 && (a = answer(&n)) && n == 100 && memcmp(a, data, 100) == 0, "the decryption's answer");
    CHECK(offer(f, WVDS_REQ_AES_DECRYPT, ID, aad, 6, sealed, 128) == 0, "none after the retire");
    wvds_srv_aes_key_release(k);
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
                         (void *)decrypt_final_slow,
                         (void *)EVP_CIPHER_CTX_ctrl,
                         (void *)EVP_CIPHER_CTX_get_params,
                         (void *)rand_seen,
                         (void *)EVP_PKEY_free,
                         (void *)EVP_PKEY_CTX_new_from_pkey,
                         (void *)EVP_PKEY_CTX_free,
                         (void *)EVP_PKEY_verify_message_init,
                         (void *)EVP_PKEY_verify_init_ex,
                         (void *)EVP_PKEY_verify,
                         (void *)EVP_MD_CTX_new,
                         (void *)EVP_MD_CTX_free,
                         (void *)EVP_DigestVerifyInit_ex,
                         (void *)EVP_DigestVerify,
                         (void *)EVP_PKEY_encapsulate_init,
                         (void *)encapsulate_seen,
                         (void *)EVP_PKEY_decapsulate_init,
                         (void *)decapsulate_seen,
                         (void *)EVP_PKEY_sign_message_init,
                         (void *)EVP_PKEY_sign_init_ex,
                         (void *)sign_seen,
                         (void *)EVP_DigestSignInit_ex,
                         (void *)digest_sign_seen};
    size_t size = shm_bytes = wvds_srv_shm_size(1);
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
    wvds_srv_ossl partial = fns;
    partial.decapsulate = NULL;
    CHECK(wvds_srv_fast_setup(&partial) == -1, "setup refuses a missing entry point");
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
    uint64_t uses_before = wvds_srv_aes_key_uses(key);
    for (int i = 0; i < 1000; i++)
        answered += offer(rated, WVDS_REQ_AES_ENCRYPT, KEY_ID, aad, 6, data, 10);
    unsigned long long burnt = wvds_srv_aes_key_uses(key) - uses_before;
    CHECK(answered == 3 && burnt == 0, "encryptions refused a token used up %llu invocations", burnt);

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

    public_key_requests(f);
    CHECK(outputs_seen > 10 && outputs_in_shm == 0, "OpenSSL wrote %d of %d answers into shared memory",
          outputs_in_shm, outputs_seen);
    retire_waits_for_a_decryption(f, aad, data);

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
