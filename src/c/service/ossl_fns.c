/* The libcrypto entry points of the fast path (AES-256-GCM, RANDOM, signatures, verify, ML-KEM):
 * the service hands over the addresses of the libcrypto it has loaded, so both paths run the
 * same library with the same default library context (fips=yes). */
#include <stddef.h>
#include <string.h>

#include "service_internal.h"

/* wvds_srv_ossl (generated from spec.py) and wvds_fns list the same fields in the same order. */
#define SAME(field) _Static_assert(offsetof(wvds_srv_ossl, field) == offsetof(wvds_fns, field), #field)
SAME(cipher); SAME(ctx_new); SAME(ctx_free); SAME(encrypt_init); SAME(encrypt_update);
SAME(encrypt_final); SAME(decrypt_init); SAME(decrypt_update); SAME(decrypt_final); SAME(ctx_ctrl);
SAME(ctx_get_params); SAME(rand_bytes); SAME(pkey_free); SAME(pkey_ctx_new); SAME(pkey_ctx_free);
SAME(verify_message_init); SAME(verify_init); SAME(verify); SAME(md_ctx_new); SAME(md_ctx_free);
SAME(digest_verify_init); SAME(digest_verify); SAME(encapsulate_init); SAME(encapsulate);
SAME(decapsulate_init); SAME(decapsulate); SAME(sign_message_init); SAME(sign_init); SAME(sign);
SAME(digest_sign_init); SAME(digest_sign);
#undef SAME

wvds_fns wvds_ossl;
atomic_bool wvds_ossl_ready;

int wvds_srv_fast_setup(const wvds_srv_ossl *f)
{
    _Static_assert(sizeof(wvds_srv_ossl) == sizeof(wvds_fns), "one entry point per field of wvds_srv_ossl");
    if (!f || atomic_load(&wvds_ossl_ready))
        return -1;
    void *const *entries = (void *const *)f;
    for (size_t i = 0; i < sizeof *f / sizeof(void *); i++)
        if (!entries[i])
            return -1;
    /* Object and function pointers have one representation on every platform we build for. */
    memcpy(&wvds_ossl, f, sizeof wvds_ossl);
    atomic_store_explicit(&wvds_ossl_ready, true, memory_order_release);
    return 0;
}
