/* provider.c — entry point of the wvds OpenSSL provider: what it offers, and its errors.
 *
 * The provider makes keys held by crypto_service usable by any OpenSSL 3.6 application, the way
 * TPM and PKCS#11 providers do: a key reference file decodes to a key object (decoder.c) whose
 * private-key operations are forwarded over our IPC (signature.c). Nothing else is offered: no
 * key generation, no import, no digests, ciphers or key exchange; everything but signing with
 * these keys stays with the providers the application already uses (FIPS, base, default).
 */
#include <stdarg.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "provider.h"

/* The post-quantum signature keys, from the algorithm registry (src/wvds/algorithms.py). */
/* BEGIN GENERATED: python -m wvds.algorithms_c (names) */
#define MLDSA44_NAMES "ML-DSA-44:MLDSA44:2.16.840.1.101.3.4.3.17:id-ml-dsa-44"
#define MLDSA65_NAMES "ML-DSA-65:MLDSA65:2.16.840.1.101.3.4.3.18:id-ml-dsa-65"
#define MLDSA87_NAMES "ML-DSA-87:MLDSA87:2.16.840.1.101.3.4.3.19:id-ml-dsa-87"
#define SLHDSA_SHA2_128S_NAMES "SLH-DSA-SHA2-128s:2.16.840.1.101.3.4.3.20:id-slh-dsa-sha2-128s"
#define SLHDSA_SHA2_128F_NAMES "SLH-DSA-SHA2-128f:2.16.840.1.101.3.4.3.21:id-slh-dsa-sha2-128f"
#define SLHDSA_SHA2_192S_NAMES "SLH-DSA-SHA2-192s:2.16.840.1.101.3.4.3.22:id-slh-dsa-sha2-192s"
#define SLHDSA_SHA2_192F_NAMES "SLH-DSA-SHA2-192f:2.16.840.1.101.3.4.3.23:id-slh-dsa-sha2-192f"
#define SLHDSA_SHA2_256S_NAMES "SLH-DSA-SHA2-256s:2.16.840.1.101.3.4.3.24:id-slh-dsa-sha2-256s"
#define SLHDSA_SHA2_256F_NAMES "SLH-DSA-SHA2-256f:2.16.840.1.101.3.4.3.25:id-slh-dsa-sha2-256f"
#define SLHDSA_SHAKE_128S_NAMES "SLH-DSA-SHAKE-128s:2.16.840.1.101.3.4.3.26:id-slh-dsa-shake-128s"
#define SLHDSA_SHAKE_128F_NAMES "SLH-DSA-SHAKE-128f:2.16.840.1.101.3.4.3.27:id-slh-dsa-shake-128f"
#define SLHDSA_SHAKE_192S_NAMES "SLH-DSA-SHAKE-192s:2.16.840.1.101.3.4.3.28:id-slh-dsa-shake-192s"
#define SLHDSA_SHAKE_192F_NAMES "SLH-DSA-SHAKE-192f:2.16.840.1.101.3.4.3.29:id-slh-dsa-shake-192f"
#define SLHDSA_SHAKE_256S_NAMES "SLH-DSA-SHAKE-256s:2.16.840.1.101.3.4.3.30:id-slh-dsa-shake-256s"
#define SLHDSA_SHAKE_256F_NAMES "SLH-DSA-SHAKE-256f:2.16.840.1.101.3.4.3.31:id-slh-dsa-shake-256f"
/* END GENERATED */
#define EC_NAMES "EC:id-ecPublicKey:1.2.840.10045.2.1"

/* Same names as OpenSSL's own implementations: libssl and the X.509 code recognise keys by name. */
static const OSSL_ALGORITHM keymgmt_algs[] = {
/* BEGIN GENERATED: python -m wvds.algorithms_c (keymgmt) */
    {MLDSA44_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions, "ML-DSA-44 key held by crypto_service"},
    {MLDSA65_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions, "ML-DSA-65 key held by crypto_service"},
    {MLDSA87_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions, "ML-DSA-87 key held by crypto_service"},
    {SLHDSA_SHA2_128S_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHA2-128s key held by crypto_service"},
    {SLHDSA_SHA2_128F_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHA2-128f key held by crypto_service"},
    {SLHDSA_SHA2_192S_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHA2-192s key held by crypto_service"},
    {SLHDSA_SHA2_192F_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHA2-192f key held by crypto_service"},
    {SLHDSA_SHA2_256S_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHA2-256s key held by crypto_service"},
    {SLHDSA_SHA2_256F_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHA2-256f key held by crypto_service"},
    {SLHDSA_SHAKE_128S_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHAKE-128s key held by crypto_service"},
    {SLHDSA_SHAKE_128F_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHAKE-128f key held by crypto_service"},
    {SLHDSA_SHAKE_192S_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHAKE-192s key held by crypto_service"},
    {SLHDSA_SHAKE_192F_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHAKE-192f key held by crypto_service"},
    {SLHDSA_SHAKE_256S_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHAKE-256s key held by crypto_service"},
    {SLHDSA_SHAKE_256F_NAMES, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions,
     "SLH-DSA-SHAKE-256f key held by crypto_service"},
/* END GENERATED */
    {EC_NAMES, WVDS_PROPS, wvdsp_ec_keymgmt_functions, "EC P-256/P-384 key held by crypto_service"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM signature_algs[] = {
/* BEGIN GENERATED: python -m wvds.algorithms_c (signature) */
    {MLDSA44_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions, "ML-DSA-44 with a key held by crypto_service"},
    {MLDSA65_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions, "ML-DSA-65 with a key held by crypto_service"},
    {MLDSA87_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions, "ML-DSA-87 with a key held by crypto_service"},
    {SLHDSA_SHA2_128S_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHA2-128s with a key held by crypto_service"},
    {SLHDSA_SHA2_128F_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHA2-128f with a key held by crypto_service"},
    {SLHDSA_SHA2_192S_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHA2-192s with a key held by crypto_service"},
    {SLHDSA_SHA2_192F_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHA2-192f with a key held by crypto_service"},
    {SLHDSA_SHA2_256S_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHA2-256s with a key held by crypto_service"},
    {SLHDSA_SHA2_256F_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHA2-256f with a key held by crypto_service"},
    {SLHDSA_SHAKE_128S_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHAKE-128s with a key held by crypto_service"},
    {SLHDSA_SHAKE_128F_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHAKE-128f with a key held by crypto_service"},
    {SLHDSA_SHAKE_192S_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHAKE-192s with a key held by crypto_service"},
    {SLHDSA_SHAKE_192F_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHAKE-192f with a key held by crypto_service"},
    {SLHDSA_SHAKE_256S_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHAKE-256s with a key held by crypto_service"},
    {SLHDSA_SHAKE_256F_NAMES, WVDS_PROPS, wvdsp_mldsa_signature_functions,
     "SLH-DSA-SHAKE-256f with a key held by crypto_service"},
/* END GENERATED */
    {"ECDSA", WVDS_PROPS, wvdsp_ecdsa_signature_functions, "ECDSA with a key held by crypto_service"},
    {NULL, NULL, NULL, NULL},
};

/* A decoder's name is what it produces: "DER" from PEM, then a key type from DER. */
#define REF_PROPS WVDS_PROPS ",input=der,structure=" WVDS_KEYREF_STRUCTURE
static const OSSL_ALGORITHM decoder_algs[] = {
    {"DER", WVDS_PROPS ",input=pem", wvdsp_pem_to_der_decoder_functions, "WVDS KEY REFERENCE PEM to DER"},
/* BEGIN GENERATED: python -m wvds.algorithms_c (decoder) */
    {MLDSA44_NAMES, REF_PROPS, wvdsp_mldsa44_decoder_functions, "key reference to ML-DSA-44 key"},
    {MLDSA65_NAMES, REF_PROPS, wvdsp_mldsa65_decoder_functions, "key reference to ML-DSA-65 key"},
    {MLDSA87_NAMES, REF_PROPS, wvdsp_mldsa87_decoder_functions, "key reference to ML-DSA-87 key"},
    {SLHDSA_SHA2_128S_NAMES, REF_PROPS, wvdsp_slhdsa_sha2_128s_decoder_functions,
     "key reference to SLH-DSA-SHA2-128s key"},
    {SLHDSA_SHA2_128F_NAMES, REF_PROPS, wvdsp_slhdsa_sha2_128f_decoder_functions,
     "key reference to SLH-DSA-SHA2-128f key"},
    {SLHDSA_SHA2_192S_NAMES, REF_PROPS, wvdsp_slhdsa_sha2_192s_decoder_functions,
     "key reference to SLH-DSA-SHA2-192s key"},
    {SLHDSA_SHA2_192F_NAMES, REF_PROPS, wvdsp_slhdsa_sha2_192f_decoder_functions,
     "key reference to SLH-DSA-SHA2-192f key"},
    {SLHDSA_SHA2_256S_NAMES, REF_PROPS, wvdsp_slhdsa_sha2_256s_decoder_functions,
     "key reference to SLH-DSA-SHA2-256s key"},
    {SLHDSA_SHA2_256F_NAMES, REF_PROPS, wvdsp_slhdsa_sha2_256f_decoder_functions,
     "key reference to SLH-DSA-SHA2-256f key"},
    {SLHDSA_SHAKE_128S_NAMES, REF_PROPS, wvdsp_slhdsa_shake_128s_decoder_functions,
     "key reference to SLH-DSA-SHAKE-128s key"},
    {SLHDSA_SHAKE_128F_NAMES, REF_PROPS, wvdsp_slhdsa_shake_128f_decoder_functions,
     "key reference to SLH-DSA-SHAKE-128f key"},
    {SLHDSA_SHAKE_192S_NAMES, REF_PROPS, wvdsp_slhdsa_shake_192s_decoder_functions,
     "key reference to SLH-DSA-SHAKE-192s key"},
    {SLHDSA_SHAKE_192F_NAMES, REF_PROPS, wvdsp_slhdsa_shake_192f_decoder_functions,
     "key reference to SLH-DSA-SHAKE-192f key"},
    {SLHDSA_SHAKE_256S_NAMES, REF_PROPS, wvdsp_slhdsa_shake_256s_decoder_functions,
     "key reference to SLH-DSA-SHAKE-256s key"},
    {SLHDSA_SHAKE_256F_NAMES, REF_PROPS, wvdsp_slhdsa_shake_256f_decoder_functions,
     "key reference to SLH-DSA-SHAKE-256f key"},
/* END GENERATED */
    {EC_NAMES, REF_PROPS, wvdsp_ec_decoder_functions, "key reference to EC key"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *query_operation(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return keymgmt_algs;
    case OSSL_OP_SIGNATURE:
        return signature_algs;
    case OSSL_OP_DECODER:
        return decoder_algs;
    }
    return NULL;
}

static const OSSL_ITEM reason_strings[] = {
    {WVDS_R_SERVICE_UNAVAILABLE, "crypto_service unavailable"},
    {WVDS_R_KEY_NOT_FOUND, "key not found in crypto_service (deleted, or not visible to this user)"},
    {WVDS_R_SERVICE_REFUSED, "crypto_service refused the operation"},
    {WVDS_R_BAD_KEY_REFERENCE, "malformed WVDS key reference"},
    {WVDS_R_KEY_MISMATCH, "key in crypto_service does not match its reference"},
    {WVDS_R_NOT_SUPPORTED, "not supported for a key held by crypto_service"},
    {WVDS_R_INTERNAL, "internal error in the wvds provider"},
    {0, NULL},
};

static const OSSL_ITEM *get_reason_strings(void *provctx)
{
    (void)provctx;
    return reason_strings;
}

static const OSSL_PARAM *gettable_params(void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
        OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
        OSSL_PARAM_END,
    };
    (void)provctx;
    return params;
}

static int get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    (void)provctx;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, "WvdS crypto_service key provider"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, WVDS_PRODUCT_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, "wvds " WVDS_PRODUCT_VERSION " (" OPENSSL_VERSION_TEXT " headers)"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static void teardown(void *provctx)
{
    wvdsp_provctx *pc = provctx;
    wvdsp_service_close_all(pc);
    OSSL_LIB_CTX_free(pc->libctx);
    pthread_mutex_destroy(&pc->lock);
    free(pc);
}

static const OSSL_DISPATCH provider_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))query_operation},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))get_reason_strings},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))get_params},
    OSSL_DISPATCH_END,
};

__attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                                                              const OSSL_DISPATCH **out, void **provctx);

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                       void **provctx)
{
    wvdsp_provctx *pc = calloc(1, sizeof(*pc));

    if (!pc)
        return 0;
    for (const OSSL_DISPATCH *f = in; f->function_id != 0; f++) {
        switch (f->function_id) {
        case OSSL_FUNC_CORE_NEW_ERROR:
            pc->new_error = OSSL_FUNC_core_new_error(f);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            pc->set_error_debug = OSSL_FUNC_core_set_error_debug(f);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            pc->vset_error = OSSL_FUNC_core_vset_error(f);
            break;
        }
    }
    pc->handle = handle;
    /* A child library context sees the application's providers and default properties, so the
     * digests we compute for ECDSA come from the same (FIPS) provider the application uses. */
    pc->libctx = OSSL_LIB_CTX_new_child(handle, in);
    if (!pc->libctx || pthread_mutex_init(&pc->lock, NULL) != 0) {
        OSSL_LIB_CTX_free(pc->libctx);
        free(pc);
        return 0;
    }
    *out = provider_functions;
    *provctx = pc;
    return 1;
}

void wvdsp_raise_at(wvdsp_provctx *pc, const char *file, int line, const char *func, int reason, const char *fmt, ...)
{
    va_list ap;

    if (!pc || !pc->new_error || !pc->vset_error)
        return;
    pc->new_error(pc->handle);
    if (pc->set_error_debug)
        pc->set_error_debug(pc->handle, file, line, func);
    va_start(ap, fmt);
    pc->vset_error(pc->handle, (uint32_t)reason, fmt, ap);
    va_end(ap);
}

void wvdsp_raise_status_at(wvdsp_provctx *pc, const char *file, int line, const char *func, wvds_status st,
                           const char *what, const char *socket, uint32_t key_id)
{
    int reason;

    switch (st) {
    case WVDS_ERR_CONNECT:
    case WVDS_ERR_REFUSED:
    case WVDS_ERR_DISCONNECTED:
    case WVDS_ERR_TIMEOUT:
    case WVDS_SHUTTING_DOWN:
        reason = WVDS_R_SERVICE_UNAVAILABLE;
        break;
    case WVDS_KEY_NOT_FOUND:
        reason = WVDS_R_KEY_NOT_FOUND;
        break;
    default:
        reason = WVDS_R_SERVICE_REFUSED;
    }
    wvdsp_raise_at(pc, file, line, func, reason, "%s: key 0x%08x, socket %s: %s", what, (unsigned)key_id,
                   socket && socket[0] ? socket : "(default)", wvds_status_name(st));
}
