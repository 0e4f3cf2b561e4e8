/* decoder.c — key reference files to keys: how unmodified applications get at our keys.
 *
 * Two steps, as OpenSSL's own decoders work:
 *   "DER" from PEM      recognises the WVDS KEY REFERENCE label (any other PEM is left alone)
 *                       and passes the DER on, tagged with the key type and our structure name;
 *   key type from DER   one per key type, structure WvdsKeyReference: parses the reference and
 *                       hands OpenSSL a key object by reference, which only our keymgmt can
 *                       load; loading asks crypto_service for the key's public half.
 * So a deleted key or a stopped service is reported where the application reads its key (openssl:
 * "Could not find private key from ..." and our reason), not later in a handshake. The DER step
 * also works on its own (-keyform DER).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "provider.h"

typedef struct {
    wvdsp_provctx *pc;
    const char *keytype; /* what a key decoder produces; NULL for PEM to DER */
} decctx;

static void *newctx(void *provctx, const char *keytype)
{
    decctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx)
        ctx->pc = provctx, ctx->keytype = keytype;
    return ctx;
}

static void freectx(void *ctx)
{
    free(ctx);
}

/* --- PEM to DER ----------------------------------------------------------------------------- */

static void *pem_newctx(void *provctx)
{
    return newctx(provctx, NULL);
}

static int pem_decode(void *vctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb, void *data_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    decctx *ctx = vctx;
    BIO *in = BIO_new_from_core_bio(ctx->pc->libctx, cin);
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;
    int ok = 1, read;
    wvds_keyref ref;
    (void)selection, (void)pw_cb, (void)pw_cbarg;

    if (!in)
        return 0;
    ERR_set_mark(); /* not PEM at all is not an error: another decoder's turn */
    read = PEM_read_bio(in, &name, &header, &der, &len) > 0;
    ERR_pop_to_mark();
    BIO_free(in);
    if (read && strcmp(name, WVDS_KEYREF_PEM_LABEL) == 0) {
        if (!wvds_keyref_from_der(der, (size_t)len, &ref)) {
            wvdsp_raise(ctx->pc, WVDS_R_BAD_KEY_REFERENCE, "the " WVDS_KEYREF_PEM_LABEL " block does not parse");
            ok = 0; /* ours, but broken: say so instead of "unsupported" */
        } else {
            int type = OSSL_OBJECT_PKEY;
            OSSL_PARAM params[] = {
                OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type),
                OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)wvdsp_alg_info_for(ref.algorithm)->keytype, 0),
                OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE, WVDS_KEYREF_STRUCTURE, 0),
                OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_INPUT_TYPE, "DER", 0),
                OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der, (size_t)len),
                OSSL_PARAM_construct_end(),
            };
            ok = data_cb(params, data_cbarg);
        }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    return ok;
}

static int pem_does_selection(void *provctx, int selection)
{
    (void)provctx, (void)selection;
    return 1;
}

const OSSL_DISPATCH wvdsp_pem_to_der_decoder_functions[] = {
    {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))pem_newctx},
    {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))freectx},
    {OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))pem_does_selection},
    {OSSL_FUNC_DECODER_DECODE, (void (*)(void))pem_decode},
    OSSL_DISPATCH_END,
};

/* --- DER to key ------------------------------------------------------------------------------ */

static int key_decode(void *vctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb, void *data_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    decctx *ctx = vctx;
    BIO *in = BIO_new_from_core_bio(ctx->pc->libctx, cin);
    unsigned char der[WVDS_KEYREF_MAX_DER + 1];
    size_t len = 0, n;
    wvds_keyref ref;
    wvdsp_key *key;
    int ok, type = OSSL_OBJECT_PKEY;
    (void)pw_cb, (void)pw_cbarg;

    if (!in)
        return 0;
    ERR_set_mark();
    while (len < sizeof(der) && BIO_read_ex(in, der + len, sizeof(der) - len, &n) && n > 0)
        len += n;
    ERR_pop_to_mark();
    BIO_free(in);
    /* Anything else is someone else's DER: end empty-handed, which is not an error. */
    if (len > WVDS_KEYREF_MAX_DER || !wvds_keyref_from_der(der, len, &ref)
        || strcmp(wvdsp_alg_info_for(ref.algorithm)->keytype, ctx->keytype) != 0
        || (selection != 0 && !(selection & OSSL_KEYMGMT_SELECT_KEYPAIR)))
        return 1;
    if ((key = wvdsp_key_new(ctx->pc, &ref)) == NULL)
        return 0;
    {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type),
            OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, (char *)ctx->keytype, 0),
            OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &key, sizeof(key)),
            OSSL_PARAM_construct_end(),
        };
        ok = data_cb(params, data_cbarg);
    }
    wvdsp_key_free(key); /* NULL if our keymgmt took it over */
    return ok;
}

/* Another provider's keymgmt asking for our key: it could only get the public half and would
 * then fail to sign with it, so refuse. Keys held by crypto_service live in our keymgmt only. */
static int key_export_object(void *vctx, const void *reference, size_t reference_sz, OSSL_CALLBACK *export_cb,
                             void *export_cbarg)
{
    (void)vctx, (void)reference, (void)reference_sz, (void)export_cb, (void)export_cbarg;
    return 0;
}

static int key_does_selection(void *provctx, int selection)
{
    (void)provctx;
    return selection == 0 || (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0;
}

#define KEY_DECODER(fname, keytype)                                                       \
    static void *fname##_newctx(void *provctx)                                           \
    {                                                                                      \
        return newctx(provctx, keytype);                                                  \
    }                                                                                      \
    const OSSL_DISPATCH wvdsp_##fname##_decoder_functions[] = {                             \
        {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))fname##_newctx},                        \
        {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))freectx},                              \
        {OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))key_does_selection},            \
        {OSSL_FUNC_DECODER_DECODE, (void (*)(void))key_decode},                            \
        {OSSL_FUNC_DECODER_EXPORT_OBJECT, (void (*)(void))key_export_object},              \
        OSSL_DISPATCH_END,                                                                 \
    };

/* BEGIN GENERATED: python -m wvds.algorithms_c */
KEY_DECODER(mldsa44, "ML-DSA-44")
KEY_DECODER(mldsa65, "ML-DSA-65")
KEY_DECODER(mldsa87, "ML-DSA-87")
KEY_DECODER(slhdsa_sha2_128s, "SLH-DSA-SHA2-128s")
KEY_DECODER(slhdsa_sha2_128f, "SLH-DSA-SHA2-128f")
KEY_DECODER(slhdsa_sha2_192s, "SLH-DSA-SHA2-192s")
KEY_DECODER(slhdsa_sha2_192f, "SLH-DSA-SHA2-192f")
KEY_DECODER(slhdsa_sha2_256s, "SLH-DSA-SHA2-256s")
KEY_DECODER(slhdsa_sha2_256f, "SLH-DSA-SHA2-256f")
KEY_DECODER(slhdsa_shake_128s, "SLH-DSA-SHAKE-128s")
KEY_DECODER(slhdsa_shake_128f, "SLH-DSA-SHAKE-128f")
KEY_DECODER(slhdsa_shake_192s, "SLH-DSA-SHAKE-192s")
KEY_DECODER(slhdsa_shake_192f, "SLH-DSA-SHAKE-192f")
KEY_DECODER(slhdsa_shake_256s, "SLH-DSA-SHAKE-256s")
KEY_DECODER(slhdsa_shake_256f, "SLH-DSA-SHAKE-256f")
/* END GENERATED */
KEY_DECODER(ec, "EC")
