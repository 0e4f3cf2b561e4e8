/* Argument checks shared by the operations: labels, algorithm families, key references.
 * Switches over generated enums have no default case so that a new protocol value
 * fails the build (-Wswitch) until it is classified here. */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"

bool wvds_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0)
            more = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            more = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            more = 3, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n - i - 1 < more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        /* Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8. */
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += more + 1;
    }
    return true;
}

bool wvds_label_ok(const char *label, size_t *len)
{
    *len = 0;
    if (!label)
        return true;
    size_t n = strnlen(label, WVDS_MAX_LABEL_SIZE + 1);
    if (n > WVDS_MAX_LABEL_SIZE || !wvds_utf8_ok((const uint8_t *)label, n))
        return false;
    *len = n;
    return true;
}

typedef enum { FAMILY_NONE, FAMILY_AES, FAMILY_MLDSA, FAMILY_SLHDSA, FAMILY_MLKEM, FAMILY_ECDSA } family;

static family family_of(wvds_algorithm alg)
{
    switch (alg) {
    case WVDS_ALG_AES_256_GCM:
        return FAMILY_AES;
    case WVDS_ALG_ML_DSA_44:
    case WVDS_ALG_ML_DSA_65:
    case WVDS_ALG_ML_DSA_87:
        return FAMILY_MLDSA;
    case WVDS_ALG_ML_KEM_512:
    case WVDS_ALG_ML_KEM_768:
    case WVDS_ALG_ML_KEM_1024:
        return FAMILY_MLKEM;
    case WVDS_ALG_ECDSA_P256:
    case WVDS_ALG_ECDSA_P384:
        return FAMILY_ECDSA;
    case WVDS_ALG_SLH_DSA_SHA2_128S:
    case WVDS_ALG_SLH_DSA_SHA2_128F:
    case WVDS_ALG_SLH_DSA_SHA2_192S:
    case WVDS_ALG_SLH_DSA_SHA2_192F:
    case WVDS_ALG_SLH_DSA_SHA2_256S:
    case WVDS_ALG_SLH_DSA_SHA2_256F:
    case WVDS_ALG_SLH_DSA_SHAKE_128S:
    case WVDS_ALG_SLH_DSA_SHAKE_128F:
    case WVDS_ALG_SLH_DSA_SHAKE_192S:
    case WVDS_ALG_SLH_DSA_SHAKE_192F:
    case WVDS_ALG_SLH_DSA_SHAKE_256S:
    case WVDS_ALG_SLH_DSA_SHAKE_256F:
        return FAMILY_SLHDSA;
    }
    return FAMILY_NONE;
}

bool wvds_is_algorithm(wvds_algorithm alg)
{
    return family_of(alg) != FAMILY_NONE;
}

bool wvds_is_mldsa(wvds_algorithm alg)
{
    return family_of(alg) == FAMILY_MLDSA;
}

bool wvds_is_slhdsa(wvds_algorithm alg)
{
    return family_of(alg) == FAMILY_SLHDSA;
}

bool wvds_is_mlkem(wvds_algorithm alg)
{
    return family_of(alg) == FAMILY_MLKEM;
}

bool wvds_is_ecdsa(wvds_algorithm alg)
{
    return family_of(alg) == FAMILY_ECDSA;
}

size_t wvds_public_key_size(wvds_algorithm alg)
{
    switch (alg) {
    case WVDS_ALG_ML_DSA_44:
        return WVDS_MLDSA44_PUBLIC_KEY_SIZE;
    case WVDS_ALG_ML_DSA_65:
        return WVDS_MLDSA65_PUBLIC_KEY_SIZE;
    case WVDS_ALG_ML_DSA_87:
        return WVDS_MLDSA87_PUBLIC_KEY_SIZE;
    case WVDS_ALG_ML_KEM_512:
        return WVDS_MLKEM512_PUBLIC_KEY_SIZE;
    case WVDS_ALG_ML_KEM_768:
        return WVDS_MLKEM768_PUBLIC_KEY_SIZE;
    case WVDS_ALG_ML_KEM_1024:
        return WVDS_MLKEM1024_PUBLIC_KEY_SIZE;
    case WVDS_ALG_ECDSA_P256:
        return WVDS_ECDSA_P256_PUBLIC_KEY_SIZE;
    case WVDS_ALG_ECDSA_P384:
        return WVDS_ECDSA_P384_PUBLIC_KEY_SIZE;
    case WVDS_ALG_AES_256_GCM:
        return 0;
    default: /* SLH-DSA: PK.seed || PK.root, 2n bytes (n = 16, 24, 32 for 128, 192, 256 bits) */
        return wvds_is_slhdsa(alg) ? (size_t)(alg - WVDS_ALG_SLH_DSA_SHA2_128S) % 6 / 2 * 16 + 32 : 0;
    }
}

size_t wvds_mlkem_ciphertext_size(wvds_algorithm alg)
{
    switch (alg) {
    case WVDS_ALG_ML_KEM_512:
        return WVDS_MLKEM512_CIPHERTEXT_SIZE;
    case WVDS_ALG_ML_KEM_768:
        return WVDS_MLKEM768_CIPHERTEXT_SIZE;
    case WVDS_ALG_ML_KEM_1024:
        return WVDS_MLKEM1024_CIPHERTEXT_SIZE;
    default:
        return 0;
    }
}

bool wvds_key_ref_ok(const wvds_key_ref *ref, bool (*in_family)(wvds_algorithm))
{
    if (!ref->is_inline)
        return ref->key_id != 0;
    return in_family(ref->algorithm) && ref->public_key != NULL &&
           ref->public_key_len == wvds_public_key_size(ref->algorithm);
}

size_t wvds_key_ref_size(const wvds_key_ref *ref)
{
    return ref->is_inline ? 1 + 1 + 2 + ref->public_key_len : 1 + 4;
}

void wvds_put_key_ref(wvds_call *call, const wvds_key_ref *ref)
{
    if (!ref->is_inline) {
        wvds_put_u8(call, WVDS_KEYREF_KEY_ID);
        wvds_put_u32(call, ref->key_id);
        return;
    }
    wvds_put_u8(call, WVDS_KEYREF_INLINE);
    wvds_put_u8(call, (uint8_t)ref->algorithm);
    wvds_put_u16(call, (uint16_t)ref->public_key_len);
    wvds_put(call, ref->public_key, ref->public_key_len);
}
