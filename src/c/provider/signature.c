/* signature.c — ML-DSA, SLH-DSA and ECDSA with keys held by crypto_service.
 *
 * Signing is forwarded to crypto_service, where the FIPS provider signs with the key that never
 * leaves it. Verifying is forwarded too, with the key's public half sent inline (the service's
 * FIPS provider verifies; no key permission is involved), so this provider does no public-key
 * cryptography of its own either.
 *
 * ML-DSA and SLH-DSA are pure (FIPS 204, 205): the whole message travels to the service, so one message is
 * limited to what fits one request (64 KiB minus the header fields) — plenty for TLS
 * CertificateVerify and CSRs. ECDSA digest-sign/verify hashes locally with the application's
 * own digest implementation (under fips=yes: the FIPS provider), fetched through our child
 * library context, and sends only the digest (WVDS_ECDSA_PREHASHED).
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "provider.h"

typedef struct {
    wvdsp_provctx *pc;
    char *propq;
    wvdsp_key *key;
    EVP_MD *md;        /* ECDSA: the hash (set, or chosen by the curve) */
    EVP_MD_CTX *mdctx; /* ECDSA: running digest of a digest-sign/verify */
    unsigned char context[WVDS_MAX_CONTEXT_SIZE]; /* ML-DSA context string */
    size_t context_len;
} sigctx;

/* DER AlgorithmIdentifiers for the signatures we make (X.509/CSR signatureAlgorithm). ML-DSA and
 * SLH-DSA: 2.16.840.1.101.3.4.3.<arc>, no parameters; the arc is 17-19 for ML-DSA-44/65/87 and
 * 20-31 for the SLH-DSA sets in our algorithm-id order (SHA2 128s, 128f, ..., SHAKE 256f). */
static const unsigned char AID_NIST_SIG[12] = {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03};

static int is_slhdsa(wvds_algorithm alg)
{
    return alg >= WVDS_ALG_SLH_DSA_SHA2_128S && alg <= WVDS_ALG_SLH_DSA_SHAKE_256F;
}

static unsigned char nist_sig_arc(wvds_algorithm alg)
{
    return (unsigned char)(is_slhdsa(alg) ? 20 + (alg - WVDS_ALG_SLH_DSA_SHA2_128S) : 17 + (alg - WVDS_ALG_ML_DSA_44));
}
static const unsigned char AID_ECDSA[3][12] = { /* ecdsa-with-SHA256, -SHA384, -SHA512 */
    {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02},
    {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03},
    {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04},
};

/* --- forwarding ------------------------------------------------------------------------------ */

struct call {
    const wvdsp_key *key;
    int verify;
    wvds_hash_alg hash;
    const unsigned char *context;
    size_t context_len;
    const unsigned char *data;
    size_t data_len;
    unsigned char *sig;
    size_t sig_cap, sig_len;
};

static wvds_status call_op(wvds_conn *conn, void *arg)
{
    struct call *c = arg;
    const wvdsp_key *k = c->key;

    if (k->info->group) {
        if (c->verify)
            return wvds_ecdsa_verify_inline(conn, k->info->algorithm, k->public_key, k->public_len, c->hash,
                                            WVDS_ECDSA_PREHASHED, c->data, c->data_len, c->sig, c->sig_len);
        return wvds_ecdsa_sign(conn, k->key_id, c->hash, WVDS_ECDSA_PREHASHED, c->data, c->data_len, c->sig,
                               c->sig_cap, &c->sig_len);
    }
    if (is_slhdsa(k->info->algorithm)) {
        if (c->verify)
            return wvds_slhdsa_verify_inline(conn, k->info->algorithm, k->public_key, k->public_len, c->context,
                                             c->context_len, c->data, c->data_len, c->sig, c->sig_len);
        return wvds_slhdsa_sign(conn, k->key_id, c->context, c->context_len, c->data, c->data_len, c->sig,
                                c->sig_cap, &c->sig_len);
    }
    if (c->verify)
        return wvds_mldsa_verify_inline(conn, k->info->algorithm, k->public_key, k->public_len, c->context,
                                        c->context_len, c->data, c->data_len, c->sig, c->sig_len);
    return wvds_mldsa_sign(conn, k->key_id, c->context, c->context_len, c->data, c->data_len, c->sig, c->sig_cap,
                           &c->sig_len);
}

/* 1: signed / verified; 0: failed (error raised) or, for verify, a bad signature (no error). */
static int forward(sigctx *ctx, struct call *c)
{
    wvds_status st;

    c->key = ctx->key;
    st = wvdsp_service_run(ctx->pc, ctx->key->socket, call_op, c);
    if (st == WVDS_SUCCESS)
        return 1;
    if (!(c->verify && st == WVDS_SIGNATURE_INVALID))
        wvdsp_raise_status(ctx->pc, st, c->verify ? "verifying with crypto_service" : "signing with crypto_service",
                          ctx->key->socket, ctx->key->key_id);
    return 0;
}

/* --- context ---------------------------------------------------------------------------------- */

static void *sig_newctx(void *provctx, const char *propq)
{
    sigctx *ctx = calloc(1, sizeof(*ctx));

    if (!ctx)
        return NULL;
    ctx->pc = provctx;
    if (propq && (ctx->propq = strdup(propq)) == NULL) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void sig_freectx(void *vctx)
{
    sigctx *ctx = vctx;

    if (!ctx)
        return;
    EVP_MD_CTX_free(ctx->mdctx);
    EVP_MD_free(ctx->md);
    wvdsp_key_free(ctx->key);
    free(ctx->propq);
    free(ctx);
}

/* EVP_DigestSignFinal() works on a copy unless told otherwise, so copies must carry the digest state. */
static void *sig_dupctx(void *vctx)
{
    sigctx *src = vctx, *ctx = malloc(sizeof(*ctx));

    if (!ctx)
        return NULL;
    *ctx = *src;
    ctx->propq = NULL, ctx->md = NULL, ctx->mdctx = NULL, ctx->key = NULL;
    if ((src->propq && (ctx->propq = strdup(src->propq)) == NULL) || (src->md && !EVP_MD_up_ref(src->md))) {
        sig_freectx(ctx);
        return NULL;
    }
    ctx->md = src->md;
    if (src->mdctx && ((ctx->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_MD_CTX_copy_ex(ctx->mdctx, src->mdctx))) {
        sig_freectx(ctx);
        return NULL;
    }
    ctx->key = src->key ? wvdsp_key_up_ref(src->key) : NULL;
    return ctx;
}

static int hash_of(const EVP_MD *md, wvds_hash_alg *hash)
{
    if (EVP_MD_is_a(md, "SHA2-256"))
        *hash = WVDS_HASH_SHA256;
    else if (EVP_MD_is_a(md, "SHA2-384"))
        *hash = WVDS_HASH_SHA384;
    else if (EVP_MD_is_a(md, "SHA2-512"))
        *hash = WVDS_HASH_SHA512;
    else
        return 0;
    return 1;
}

/* ECDSA: the hashes crypto_service accepts (SHA-256/384/512), from the application's providers. */
static int set_digest(sigctx *ctx, const char *mdname)
{
    wvds_hash_alg hash;
    EVP_MD *md = EVP_MD_fetch(ctx->pc->libctx, mdname, ctx->propq);

    if (!md || !hash_of(md, &hash)) {
        EVP_MD_free(md);
        wvdsp_raise(ctx->pc, WVDS_R_NOT_SUPPORTED, "ECDSA with digest %s (crypto_service signs SHA-256/384/512)",
                   mdname);
        return 0;
    }
    EVP_MD_free(ctx->md);
    ctx->md = md;
    return 1;
}

/* An integer parameter crypto_service supports with one value only: absent, or that value. */
static int accepted(sigctx *ctx, const OSSL_PARAM params[], const char *name, int only)
{
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, name);
    int value;

    if (p == NULL || (OSSL_PARAM_get_int(p, &value) && value == only))
        return 1;
    wvdsp_raise(ctx->pc, WVDS_R_NOT_SUPPORTED, "%s (crypto_service signs hedged/randomised, pure messages only)",
                name);
    return 0;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sigctx *ctx = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_CONTEXT_STRING))) {
        void *buf = ctx->context;
        if (!OSSL_PARAM_get_octet_string(p, &buf, sizeof(ctx->context), &ctx->context_len))
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST))) {
        const char *name;
        if (ctx->mdctx || !OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_digest(ctx, name))
            return 0; /* not in the middle of a digest-sign */
    }
    /* What crypto_service cannot do must fail loudly, not be ignored. */
    if (!accepted(ctx, params, OSSL_SIGNATURE_PARAM_DETERMINISTIC, 0)
        || !accepted(ctx, params, OSSL_SIGNATURE_PARAM_NONCE_TYPE, 0) /* ECDSA: 1 = deterministic */
        || !accepted(ctx, params, OSSL_SIGNATURE_PARAM_MU, 0)
        || !accepted(ctx, params, OSSL_SIGNATURE_PARAM_MESSAGE_ENCODING, 1)) /* 1 = pure */
        return 0;
    return 1;
}

static const OSSL_PARAM *mldsa_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_CONTEXT_STRING, NULL, 0),
        OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_DETERMINISTIC, NULL),
        OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_MESSAGE_ENCODING, NULL),
        OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_MU, NULL),
        OSSL_PARAM_END,
    };
    (void)vctx, (void)provctx;
    return params;
}

static const OSSL_PARAM *ecdsa_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_uint(OSSL_SIGNATURE_PARAM_NONCE_TYPE, NULL),
        OSSL_PARAM_END,
    };
    (void)vctx, (void)provctx;
    return params;
}

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sigctx *ctx = vctx;
    OSSL_PARAM *p;
    wvds_hash_alg hash = WVDS_HASH_SHA256;

    if (!ctx->key)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID))) {
        if (ctx->key->info->group == NULL) {
            unsigned char aid[sizeof(AID_NIST_SIG) + 1];
            memcpy(aid, AID_NIST_SIG, sizeof(AID_NIST_SIG));
            aid[sizeof(AID_NIST_SIG)] = nist_sig_arc(ctx->key->info->algorithm);
            if (!OSSL_PARAM_set_octet_string(p, aid, sizeof(aid)))
                return 0;
        } else if (ctx->md && hash_of(ctx->md, &hash) /* known once the hash is */
                   && !OSSL_PARAM_set_octet_string(p, AID_ECDSA[hash - WVDS_HASH_SHA256], sizeof(AID_ECDSA[0]))) {
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) && ctx->md
        && !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(ctx->md)))
        return 0;
    return 1;
}

static const OSSL_PARAM *sig_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)vctx, (void)provctx;
    return params;
}

/* Takes the key (its type must fit this signature) and the parameters. */
static int init(sigctx *ctx, void *provkey, int ecdsa, const OSSL_PARAM params[])
{
    wvdsp_key *key = provkey;

    if (key) {
        if ((key->info->group != NULL) != ecdsa) {
            wvdsp_raise(ctx->pc, WVDS_R_INTERNAL, "key type does not fit the signature algorithm");
            return 0;
        }
        wvdsp_key_free(ctx->key);
        ctx->key = wvdsp_key_up_ref(key);
    } else if (!ctx->key) {
        return 0;
    }
    EVP_MD_CTX_free(ctx->mdctx);
    ctx->mdctx = NULL;
    return sig_set_ctx_params(ctx, params);
}

/* --- ML-DSA --------------------------------------------------------------------------------- */

static int mldsa_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return init(vctx, provkey, 0, params);
}

static int mldsa_digest_init(void *vctx, const char *mdname, void *provkey, const OSSL_PARAM params[])
{
    sigctx *ctx = vctx;
    if (mdname && mdname[0]) {
        wvdsp_raise(ctx->pc, WVDS_R_NOT_SUPPORTED, "ML-DSA and SLH-DSA sign the message itself, not a %s digest",
                    mdname);
        return 0;
    }
    return init(vctx, provkey, 0, params);
}

static int mldsa_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize, const unsigned char *tbs,
                      size_t tbslen)
{
    sigctx *ctx = vctx;
    struct call c = {.context = ctx->context, .context_len = ctx->context_len, .data = tbs, .data_len = tbslen,
                     .sig = sig, .sig_cap = sigsize};

    if (sig == NULL) {
        *siglen = ctx->key->info->max_signature;
        return 1;
    }
    if (!forward(ctx, &c))
        return 0;
    *siglen = c.sig_len;
    return 1;
}

static int mldsa_verify(void *vctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs, size_t tbslen)
{
    sigctx *ctx = vctx;
    struct call c = {.verify = 1, .context = ctx->context, .context_len = ctx->context_len, .data = tbs,
                     .data_len = tbslen, .sig = (unsigned char *)sig, .sig_len = siglen};
    return forward(ctx, &c);
}

const OSSL_DISPATCH wvdsp_mldsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
    {OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT, (void (*)(void))mldsa_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))mldsa_sign},
    {OSSL_FUNC_SIGNATURE_VERIFY_MESSAGE_INIT, (void (*)(void))mldsa_init},
    {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))mldsa_verify},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))mldsa_digest_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))mldsa_sign},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))mldsa_digest_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))mldsa_verify},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))mldsa_settable_ctx_params},
    OSSL_DISPATCH_END,
};

/* --- ECDSA ------------------------------------------------------------------------------------ */

static int ecdsa_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return init(vctx, provkey, 1, params);
}

static int ecdsa_digest_init(void *vctx, const char *mdname, void *provkey, const OSSL_PARAM params[])
{
    sigctx *ctx = vctx;

    if (!init(ctx, provkey, 1, params))
        return 0;
    if (!mdname || !mdname[0]) /* the curve's own hash, as OpenSSL's EC keys default to */
        mdname = ctx->key->info->algorithm == WVDS_ALG_ECDSA_P384 ? "SHA2-384" : "SHA2-256";
    if (!set_digest(ctx, mdname))
        return 0;
    if ((ctx->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex2(ctx->mdctx, ctx->md, NULL)) {
        wvdsp_raise(ctx->pc, WVDS_R_INTERNAL, "cannot start digest %s", mdname);
        return 0;
    }
    return 1;
}

/* tbs is a digest: of the set hash, else the hash its length implies. */
static int ecdsa_hash_for(sigctx *ctx, size_t tbslen, wvds_hash_alg *hash)
{
    if (ctx->md) {
        if (hash_of(ctx->md, hash) && (size_t)EVP_MD_get_size(ctx->md) == tbslen)
            return 1;
    } else if (tbslen == 32 || tbslen == 48 || tbslen == 64) {
        *hash = tbslen == 32 ? WVDS_HASH_SHA256 : tbslen == 48 ? WVDS_HASH_SHA384 : WVDS_HASH_SHA512;
        return 1;
    }
    wvdsp_raise(ctx->pc, WVDS_R_NOT_SUPPORTED, "ECDSA over a %zu-byte digest", tbslen);
    return 0;
}

static int ecdsa_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize, const unsigned char *tbs,
                      size_t tbslen)
{
    sigctx *ctx = vctx;
    struct call c = {.data = tbs, .data_len = tbslen, .sig = sig, .sig_cap = sigsize};

    if (sig == NULL) {
        *siglen = ctx->key->info->max_signature;
        return 1;
    }
    if (!ecdsa_hash_for(ctx, tbslen, &c.hash) || !forward(ctx, &c))
        return 0;
    *siglen = c.sig_len;
    return 1;
}

static int ecdsa_verify(void *vctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs, size_t tbslen)
{
    sigctx *ctx = vctx;
    struct call c = {.verify = 1, .data = tbs, .data_len = tbslen, .sig = (unsigned char *)sig, .sig_len = siglen};
    return ecdsa_hash_for(ctx, tbslen, &c.hash) && forward(ctx, &c);
}

static int ecdsa_digest_update(void *vctx, const unsigned char *data, size_t len)
{
    sigctx *ctx = vctx;
    return ctx->mdctx && EVP_DigestUpdate(ctx->mdctx, data, len);
}

static int ecdsa_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    sigctx *ctx = vctx;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len;

    if (sig == NULL) {
        *siglen = ctx->key->info->max_signature;
        return 1;
    }
    if (!ctx->mdctx || !EVP_DigestFinal_ex(ctx->mdctx, digest, &len))
        return 0;
    return ecdsa_sign(ctx, sig, siglen, sigsize, digest, len);
}

static int ecdsa_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    sigctx *ctx = vctx;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len;

    if (!ctx->mdctx || !EVP_DigestFinal_ex(ctx->mdctx, digest, &len))
        return 0;
    return ecdsa_verify(ctx, sig, siglen, digest, len);
}

const OSSL_DISPATCH wvdsp_ecdsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))ecdsa_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))ecdsa_sign},
    {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))ecdsa_init},
    {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))ecdsa_verify},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))ecdsa_digest_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))ecdsa_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))ecdsa_digest_sign_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))ecdsa_digest_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))ecdsa_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))ecdsa_digest_verify_final},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))ecdsa_settable_ctx_params},
    OSSL_DISPATCH_END,
};
