/* keymgmt.c — the key object: a key held by crypto_service, as OpenSSL sees it.
 *
 * A key is its id, the service's socket and its public key (fetched from the service when the
 * reference is loaded). It reports the parameters libssl and the X.509 code ask for (type, group,
 * sizes, security bits) and exports its public half, which is how OpenSSL compares it with a
 * certificate and encodes it into a CSR. It never exports a private half, has no import, new or
 * gen: a foreign key can never end up in this keymgmt, and an operation OpenSSL would otherwise
 * try elsewhere with the key's exported public half comes back to our signature code. It has no
 * match either: EVP_PKEY_eq() then compares a certificate's key with ours in the certificate
 * key's keymgmt (our public half exported there) instead of first trying, and failing noisily,
 * to import the certificate's key here.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "provider.h"

/* From the algorithm registry (src/wvds/algorithms.py); the build checks the block is current. */
static const wvdsp_alg_info ALGS[] = {
/* BEGIN GENERATED: python -m wvds.algorithms_c */
    /* algorithm, keytype, group, public, max signature, bits, security bits, category */
    {WVDS_ALG_ML_DSA_44, "ML-DSA-44", NULL, 1312, 2420, 10496, 128, 2},
    {WVDS_ALG_ML_DSA_65, "ML-DSA-65", NULL, 1952, 3309, 15616, 192, 3},
    {WVDS_ALG_ML_DSA_87, "ML-DSA-87", NULL, 2592, 4627, 20736, 256, 5},
    {WVDS_ALG_ECDSA_P256, "EC", "prime256v1", 65, 72, 256, 128, 0},
    {WVDS_ALG_ECDSA_P384, "EC", "secp384r1", 97, 104, 384, 192, 0},
    {WVDS_ALG_SLH_DSA_SHA2_128S, "SLH-DSA-SHA2-128s", NULL, 32, 7856, 256, 128, 1},
    {WVDS_ALG_SLH_DSA_SHA2_128F, "SLH-DSA-SHA2-128f", NULL, 32, 17088, 256, 128, 1},
    {WVDS_ALG_SLH_DSA_SHA2_192S, "SLH-DSA-SHA2-192s", NULL, 48, 16224, 384, 192, 3},
    {WVDS_ALG_SLH_DSA_SHA2_192F, "SLH-DSA-SHA2-192f", NULL, 48, 35664, 384, 192, 3},
    {WVDS_ALG_SLH_DSA_SHA2_256S, "SLH-DSA-SHA2-256s", NULL, 64, 29792, 512, 256, 5},
    {WVDS_ALG_SLH_DSA_SHA2_256F, "SLH-DSA-SHA2-256f", NULL, 64, 49856, 512, 256, 5},
    {WVDS_ALG_SLH_DSA_SHAKE_128S, "SLH-DSA-SHAKE-128s", NULL, 32, 7856, 256, 128, 1},
    {WVDS_ALG_SLH_DSA_SHAKE_128F, "SLH-DSA-SHAKE-128f", NULL, 32, 17088, 256, 128, 1},
    {WVDS_ALG_SLH_DSA_SHAKE_192S, "SLH-DSA-SHAKE-192s", NULL, 48, 16224, 384, 192, 3},
    {WVDS_ALG_SLH_DSA_SHAKE_192F, "SLH-DSA-SHAKE-192f", NULL, 48, 35664, 384, 192, 3},
    {WVDS_ALG_SLH_DSA_SHAKE_256S, "SLH-DSA-SHAKE-256s", NULL, 64, 29792, 512, 256, 5},
    {WVDS_ALG_SLH_DSA_SHAKE_256F, "SLH-DSA-SHAKE-256f", NULL, 64, 49856, 512, 256, 5},
/* END GENERATED */
};

const wvdsp_alg_info *wvdsp_alg_info_for(wvds_algorithm algorithm)
{
    for (size_t i = 0; i < sizeof(ALGS) / sizeof(ALGS[0]); i++)
        if (ALGS[i].algorithm == algorithm)
            return &ALGS[i];
    return NULL;
}

/* --- the key object ------------------------------------------------------------------------- */

struct export_public {
    uint32_t key_id;
    wvds_algorithm algorithm;
    unsigned char *out;
    size_t len;
};

static wvds_status export_public_op(wvds_conn *conn, void *arg)
{
    struct export_public *e = arg;
    return wvds_key_export_public(conn, e->key_id, &e->algorithm, e->out, WVDS_MAX_PUBLIC_KEY_SIZE, &e->len);
}

wvdsp_key *wvdsp_key_new(wvdsp_provctx *pc, const wvds_keyref *ref)
{
    wvdsp_key *key = calloc(1, sizeof(*key));

    if (!key)
        return NULL;
    atomic_init(&key->refs, 1);
    key->pc = pc;
    key->info = wvdsp_alg_info_for(ref->algorithm);
    key->key_id = ref->key_id;
    memcpy(key->socket, ref->socket, sizeof(key->socket));
    return key;
}

/* Asks crypto_service for the key's public half (which also proves the key exists for us). */
static int fetch_public(wvdsp_key *key)
{
    struct export_public e = {key->key_id, 0, key->public_key, 0};
    wvds_status st = wvdsp_service_run(key->pc, key->socket, export_public_op, &e);

    if (st != WVDS_SUCCESS) {
        wvdsp_raise_status(key->pc, st, "loading the referenced key", key->socket, key->key_id);
        return 0;
    }
    /* Key ids are random and may be reused after a deletion: the algorithm must still agree. */
    if (e.algorithm != key->info->algorithm || e.len != key->info->public_len) {
        wvdsp_raise(key->pc, WVDS_R_KEY_MISMATCH, "key 0x%08x: the reference says %s, crypto_service holds a %s key",
                    (unsigned)key->key_id, wvds_keyref_alg_name(key->info->algorithm),
                    wvds_keyref_alg_name(e.algorithm) ? wvds_keyref_alg_name(e.algorithm) : "non-signing");
        return 0;
    }
    key->public_len = e.len;
    return 1;
}

wvdsp_key *wvdsp_key_up_ref(wvdsp_key *key)
{
    atomic_fetch_add(&key->refs, 1);
    return key;
}

void wvdsp_key_free(wvdsp_key *key)
{
    if (key && atomic_fetch_sub(&key->refs, 1) == 1)
        free(key);
}

/* --- keymgmt functions --------------------------------------------------------------------- */

static void keymgmt_free(void *keydata)
{
    wvdsp_key_free(keydata);
}

/* reference: the address of a key object our decoder made; we take it over and look the key
 * up in crypto_service. Failing here (not in the decoder) is what lets OpenSSL's file store
 * report our reason (service down, key deleted) instead of a generic "unsupported". */
static void *keymgmt_load(const void *reference, size_t reference_sz)
{
    wvdsp_key *key;

    if (reference == NULL || reference_sz != sizeof(key))
        return NULL;
    key = *(wvdsp_key **)reference;
    *(wvdsp_key **)reference = NULL;
    if (!fetch_public(key)) {
        wvdsp_key_free(key);
        return NULL;
    }
    return key;
}

static void *keymgmt_dup(const void *keydata, int selection)
{
    wvdsp_key *copy = malloc(sizeof(*copy));
    (void)selection;
    if (!copy)
        return NULL;
    memcpy(copy, keydata, sizeof(*copy));
    atomic_init(&copy->refs, 1);
    return copy;
}

/* Public key, "private key" (usable through the service), and EC domain parameters. */
static int keymgmt_has(const void *keydata, int selection)
{
    (void)selection;
    return keydata != NULL;
}

static int keymgmt_get_params(void *keydata, OSSL_PARAM params[])
{
    wvdsp_key *key = keydata;
    const wvdsp_alg_info *in = key->info;
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_BITS)) && !OSSL_PARAM_set_int(p, in->bits))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_BITS)) && !OSSL_PARAM_set_int(p, in->security_bits))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MAX_SIZE)) && !OSSL_PARAM_set_size_t(p, in->max_signature))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY))
        && !OSSL_PARAM_set_octet_string(p, key->public_key, key->public_len))
        return 0;
    if (in->group == NULL) {
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_CATEGORY))
            && !OSSL_PARAM_set_int(p, in->security_category))
            return 0;
        /* Pure ML-DSA signs the message itself: no digest (as OpenSSL's ML-DSA keymgmt says). */
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MANDATORY_DIGEST)) && !OSSL_PARAM_set_utf8_string(p, ""))
            return 0;
        return 1;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_GROUP_NAME)) && !OSSL_PARAM_set_utf8_string(p, in->group))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY))
        && !OSSL_PARAM_set_octet_string(p, key->public_key, key->public_len))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST))
        && !OSSL_PARAM_set_utf8_string(p, in->algorithm == WVDS_ALG_ECDSA_P384 ? "SHA384" : "SHA256"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT))
        && !OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_ENCODING))
        && !OSSL_PARAM_set_utf8_string(p, OSSL_PKEY_EC_ENCODING_GROUP))
        return 0;
    return 1;
}

static const OSSL_PARAM *mldsa_gettable_params(void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_size_t(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_CATEGORY, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)provctx;
    return params;
}

static const OSSL_PARAM *ec_gettable_params(void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_size_t(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)provctx;
    return params;
}

/* The public half (EC: with its group), in the form OpenSSL's own keymgmts import. */
int wvdsp_key_export(wvdsp_key *key, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    OSSL_PARAM params[3], *p = params;

    if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY)
        return 0; /* stays in crypto_service */
    if (key->info->group)
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)key->info->group, 0);
    if (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, key->public_key, key->public_len);
    *p = OSSL_PARAM_construct_end();
    return cb(params, cbarg);
}

static int keymgmt_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    return wvdsp_key_export(keydata, selection, cb, cbarg);
}

static const OSSL_PARAM *mldsa_export_types(int selection)
{
    static const OSSL_PARAM types[] = {OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0), OSSL_PARAM_END};
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ? NULL : types;
}

static const OSSL_PARAM *ec_export_types(int selection)
{
    static const OSSL_PARAM types[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_END,
    };
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ? NULL : types;
}

/* An EC key signs with ECDSA (and is good for nothing else here). ML-DSA keys need no answer:
 * OpenSSL then uses the key type's name, which is the signature's name. */
static const char *ec_query_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

#define COMMON_KEYMGMT_FUNCTIONS                                              \
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))keymgmt_free},                   \
    {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))keymgmt_load},                   \
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))keymgmt_dup},                     \
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))keymgmt_has},                     \
    {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))keymgmt_get_params},       \
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))keymgmt_export}

const OSSL_DISPATCH wvdsp_mldsa_keymgmt_functions[] = {
    COMMON_KEYMGMT_FUNCTIONS,
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))mldsa_gettable_params},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))mldsa_export_types},
    OSSL_DISPATCH_END,
};

const OSSL_DISPATCH wvdsp_ec_keymgmt_functions[] = {
    COMMON_KEYMGMT_FUNCTIONS,
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))ec_gettable_params},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))ec_export_types},
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))ec_query_operation_name},
    OSSL_DISPATCH_END,
};
