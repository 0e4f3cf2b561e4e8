/* What the service library's files share beyond the exported API (wvds_srv.h). */
#ifndef WVDS_SERVICE_INTERNAL_H
#define WVDS_SERVICE_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "slots_service.h"
#include "wvds_srv.h"

/* libcrypto entry points, typed from OpenSSL's own prototypes (the library is compiled against
 * its headers but does not link it): installed once by wvds_srv_fast_setup (ossl_fns.c). */
typedef struct wvds_fns {
    EVP_CIPHER *cipher;
    __typeof__(&EVP_CIPHER_CTX_new) ctx_new;
    __typeof__(&EVP_CIPHER_CTX_free) ctx_free;
    __typeof__(&EVP_EncryptInit_ex2) encrypt_init;
    __typeof__(&EVP_EncryptUpdate) encrypt_update;
    __typeof__(&EVP_EncryptFinal_ex) encrypt_final;
    __typeof__(&EVP_DecryptInit_ex2) decrypt_init;
    __typeof__(&EVP_DecryptUpdate) decrypt_update;
    __typeof__(&EVP_DecryptFinal_ex) decrypt_final;
    __typeof__(&EVP_CIPHER_CTX_ctrl) ctx_ctrl;
    __typeof__(&EVP_CIPHER_CTX_get_params) ctx_get_params;
    __typeof__(&RAND_bytes_ex) rand_bytes;
    __typeof__(&EVP_PKEY_free) pkey_free;
    __typeof__(&EVP_PKEY_CTX_new_from_pkey) pkey_ctx_new;
    __typeof__(&EVP_PKEY_CTX_free) pkey_ctx_free;
    __typeof__(&EVP_PKEY_verify_message_init) verify_message_init;
    __typeof__(&EVP_PKEY_verify_init_ex) verify_init;
    __typeof__(&EVP_PKEY_verify) verify;
    __typeof__(&EVP_MD_CTX_new) md_ctx_new;
    __typeof__(&EVP_MD_CTX_free) md_ctx_free;
    __typeof__(&EVP_DigestVerifyInit_ex) digest_verify_init;
    __typeof__(&EVP_DigestVerify) digest_verify;
    __typeof__(&EVP_PKEY_encapsulate_init) encapsulate_init;
    __typeof__(&EVP_PKEY_encapsulate) encapsulate;
    __typeof__(&EVP_PKEY_decapsulate_init) decapsulate_init;
    __typeof__(&EVP_PKEY_decapsulate) decapsulate;
    __typeof__(&EVP_PKEY_sign_message_init) sign_message_init;
    __typeof__(&EVP_PKEY_sign_init_ex) sign_init;
    __typeof__(&EVP_PKEY_sign) sign;
    __typeof__(&EVP_DigestSignInit_ex) digest_sign_init;
    __typeof__(&EVP_DigestSign) digest_sign;
} wvds_fns;
extern wvds_fns wvds_ossl;
extern atomic_bool wvds_ossl_ready; /* wvds_ossl is filled in (acquire before using it) */

/* The fast path's wvds_serve_hooks.answer: answers and publishes the BUSY request in `slot`
 * (req_len read once) if it can: 1; else 0 and the slot is untouched. */
int wvds_srv_fast_answer(wvds_srv_fast *f, void *shm, unsigned slot, uint32_t req_len);

/* pkey_fast.c: the public-key requests the fast path may answer. */

/* Whether a request of `type` with this payload (a private copy: the header's or the whole payload's; read
 * no further than its first 6 bytes) is one the fast path answers for a granted key: 1 with the key id it
 * names and the usage bits it needs, else 0 (a wrong form, an inline key, a request that creates a key). */
int wvds_srv_pkey_request(uint8_t type, const uint8_t *payload, uint32_t len, uint32_t *key_id, uint32_t *need);
/* Whether k's kind (and private half) can serve a request of `type` at all: checked before the
 * request takes a token, so a request sent on to Python for that is not charged twice. */
int wvds_srv_pkey_serves(const wvds_srv_pkey *k, uint8_t type);
/* Performs it with k and writes the response payload into out (room for cap bytes; memory only the
 * service can write: OpenSSL reads back part of what it writes): 1 with *out_len set if it succeeded,
 * else 0 (not verified, wrong kind or size, an OpenSSL error, a key being retired), out wiped if the
 * operation could have written to it. */
int wvds_srv_pkey_run(wvds_srv_pkey *k, uint8_t type, const uint8_t *payload, uint32_t len, uint8_t *out,
                      uint32_t cap, uint32_t *out_len);
void wvds_srv_pkey_ref(wvds_srv_pkey *k);

#endif
