/* keyref.h — the key reference file: which key in which crypto_service, never the key itself.
 *
 * A reference is a small DER structure, usually PEM-armoured with its own label:
 *
 *   -----BEGIN WVDS KEY REFERENCE-----
 *   base64 of
 *     WvdsKeyReference ::= SEQUENCE {
 *         format     UTF8String,           -- "WVDS-KEYREF-1"
 *         keyId      INTEGER,              -- 1..2^32-1, the id crypto_service gave the key
 *         algorithm  UTF8String,           -- "ML-DSA-44" | "ML-DSA-65" | "ML-DSA-87" | "ECDSA-P256" | "ECDSA-P384"
 *         socket     UTF8String OPTIONAL } -- the service's socket; absent = $WVDS_SOCKET or the default
 *   -----END WVDS KEY REFERENCE-----
 *
 * Text before the BEGIN line is a comment (RFC 7468 explanatory text). The file holds no secret:
 * crypto_service decides who may use the key (peer uid at connect, key ownership per request).
 * This file needs only libc: the wvds-keyref tool writes references, the provider reads them.
 */
#ifndef WVDS_KEYREF_H
#define WVDS_KEYREF_H

#include <stddef.h>
#include <stdint.h>

#include "wvds_crypto.h"

#define WVDS_KEYREF_PEM_LABEL "WVDS KEY REFERENCE"
#define WVDS_KEYREF_FORMAT "WVDS-KEYREF-1"
#define WVDS_KEYREF_MAX_SOCKET 107 /* sun_path holds 108 bytes with the NUL */
#define WVDS_KEYREF_MAX_DER 256
#define WVDS_KEYREF_MAX_PEM 1024

typedef struct wvds_keyref {
    uint32_t key_id;
    wvds_algorithm algorithm;
    char socket[WVDS_KEYREF_MAX_SOCKET + 1]; /* "" when the reference names no socket */
} wvds_keyref;

/* "ML-DSA-65", "ECDSA-P256", ... for the signature algorithms a reference may name; NULL otherwise. */
const char *wvds_keyref_alg_name(wvds_algorithm algorithm);
/* The inverse; 0 when the name is not one of them. */
int wvds_keyref_alg_from_name(const char *name, size_t len, wvds_algorithm *algorithm);

/* All return 1 on success, 0 on malformed input or too small a buffer. */
int wvds_keyref_to_der(const wvds_keyref *ref, unsigned char *der, size_t cap, size_t *len);
/* Strict DER: exact lengths, minimal encodings, nothing trailing. */
int wvds_keyref_from_der(const unsigned char *der, size_t len, wvds_keyref *ref);
/* PEM with a one-line comment before it; NUL-terminated, *len excludes the NUL. */
int wvds_keyref_to_pem(const wvds_keyref *ref, char *pem, size_t cap, size_t *len);

#endif /* WVDS_KEYREF_H */
