/* provider.h — internals shared by the files of the wvds OpenSSL provider (wvds.so).
 *
 *   provider.c   entry point, algorithm tables, errors
 *   service.c    connections to crypto_service (one per socket path, reconnect after a restart)
 *   keymgmt.c    the key object: a key id in crypto_service plus its public key
 *   signature.c  ML-DSA and ECDSA: private-key operations forwarded to crypto_service
 *   decoder.c    key reference file (PEM/DER) -> key object
 *   keyref.c     the key reference format itself (libc only, shared with wvds-keyref)
 *
 * Internal names use wvdsp_ so they never meet the client library's wvds_ API.
 */
#ifndef WVDS_PROVIDER_H
#define WVDS_PROVIDER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>

#include "keyref.h"
#include "wvds_crypto.h"

/* Every algorithm of this provider carries these properties. fips=yes is what lets the
 * algorithms be fetched under `default_properties = fips=yes`; docs/provider.md says what
 * it does and does not mean. */
#define WVDS_PROPS "provider=wvds,fips=yes"

typedef struct wvdsp_service wvdsp_service;

typedef struct wvdsp_provctx {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *libctx; /* child of the application's: same providers and default properties */
    OSSL_FUNC_core_new_error_fn *new_error;
    OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
    OSSL_FUNC_core_vset_error_fn *vset_error;
    pthread_mutex_t lock; /* guards services */
    wvdsp_service *services;
} wvdsp_provctx;

/* Error reasons (the provider's own library in OpenSSL's error queue). */
enum {
    WVDS_R_SERVICE_UNAVAILABLE = 1,
    WVDS_R_KEY_NOT_FOUND,
    WVDS_R_SERVICE_REFUSED,
    WVDS_R_BAD_KEY_REFERENCE,
    WVDS_R_KEY_MISMATCH,
    WVDS_R_NOT_SUPPORTED,
    WVDS_R_INTERNAL,
};

/* Raises an error with printf-style detail (and where it was raised). */
#define wvdsp_raise(pc, reason, ...) wvdsp_raise_at(pc, __FILE__, __LINE__, __func__, reason, __VA_ARGS__)
void wvdsp_raise_at(wvdsp_provctx *pc, const char *file, int line, const char *func, int reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Raises the error that fits a failed call to crypto_service (what, which key, which status). */
#define wvdsp_raise_status(pc, st, what, socket, key_id) \
    wvdsp_raise_status_at(pc, __FILE__, __LINE__, __func__, st, what, socket, key_id)
void wvdsp_raise_status_at(wvdsp_provctx *pc, const char *file, int line, const char *func, wvds_status st,
                           const char *what, const char *socket, uint32_t key_id);

/* --- service.c ---------------------------------------------------------------------------- */

/* Runs op on the connection for socket ("" = the library's default), connecting first if
 * needed. A connection the service dropped (restart) is replaced and op retried once. */
typedef wvds_status (*wvdsp_op)(wvds_conn *conn, void *arg);
wvds_status wvdsp_service_run(wvdsp_provctx *pc, const char *socket, wvdsp_op op, void *arg);
void wvdsp_service_close_all(wvdsp_provctx *pc);

/* --- keymgmt.c ------------------------------------------------------------------------------ */

typedef struct wvdsp_alg_info {
    wvds_algorithm algorithm;
    const char *keytype;  /* the OpenSSL key type: "ML-DSA-65", "EC" */
    const char *group;    /* EC group name (as OpenSSL's EC keymgmt reports it), NULL for ML-DSA */
    size_t public_len;    /* raw ML-DSA key, or uncompressed EC point */
    size_t max_signature; /* ML-DSA signature, or the largest DER ECDSA-Sig-Value */
    int bits, security_bits, security_category;
} wvdsp_alg_info;

const wvdsp_alg_info *wvdsp_alg_info_for(wvds_algorithm algorithm);

typedef struct wvdsp_key {
    atomic_int refs;
    wvdsp_provctx *pc;
    const wvdsp_alg_info *info;
    uint32_t key_id;
    char socket[WVDS_KEYREF_MAX_SOCKET + 1];
    unsigned char public_key[WVDS_MAX_PUBLIC_KEY_SIZE];
    size_t public_len;
} wvdsp_key;

/* A key object for a parsed reference (the decoder's output). Our keymgmt's load then fetches
 * its public key from crypto_service, which fails cleanly if the service or the key is gone. */
wvdsp_key *wvdsp_key_new(wvdsp_provctx *pc, const wvds_keyref *ref);
wvdsp_key *wvdsp_key_up_ref(wvdsp_key *key);
void wvdsp_key_free(wvdsp_key *key);
int wvdsp_key_export(wvdsp_key *key, int selection, OSSL_CALLBACK *cb, void *cbarg);

extern const OSSL_DISPATCH wvdsp_mldsa_keymgmt_functions[]; /* ML-DSA and SLH-DSA keys (no group) */
extern const OSSL_DISPATCH wvdsp_ec_keymgmt_functions[];

/* --- signature.c, decoder.c ------------------------------------------------------------------ */

extern const OSSL_DISPATCH wvdsp_mldsa_signature_functions[]; /* ML-DSA and SLH-DSA: both pure, with a context */
extern const OSSL_DISPATCH wvdsp_ecdsa_signature_functions[];
extern const OSSL_DISPATCH wvdsp_pem_to_der_decoder_functions[];
/* BEGIN GENERATED: python -m wvds.algorithms_c */
extern const OSSL_DISPATCH wvdsp_mldsa44_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_mldsa65_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_mldsa87_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_sha2_128s_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_sha2_128f_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_sha2_192s_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_sha2_192f_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_sha2_256s_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_sha2_256f_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_shake_128s_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_shake_128f_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_shake_192s_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_shake_192f_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_shake_256s_decoder_functions[];
extern const OSSL_DISPATCH wvdsp_slhdsa_shake_256f_decoder_functions[];
/* END GENERATED */
extern const OSSL_DISPATCH wvdsp_ec_decoder_functions[];

#define WVDS_KEYREF_STRUCTURE "WvdsKeyReference"

#endif /* WVDS_PROVIDER_H */
