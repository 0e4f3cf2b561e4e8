/* keyref.c — encode and decode key reference files (see keyref.h). libc only. */
#include "keyref.h"

#include <stdio.h>
#include <string.h>

enum { TAG_INTEGER = 0x02, TAG_UTF8STRING = 0x0C, TAG_SEQUENCE = 0x30 };

/* The reference's algorithm names, from the algorithm registry (src/wvds/algorithms.py). */
static const struct {
    wvds_algorithm algorithm;
    const char *name;
} ALGS[] = {
/* BEGIN GENERATED: python -m wvds.algorithms_c */
    {WVDS_ALG_ML_DSA_44, "ML-DSA-44"},
    {WVDS_ALG_ML_DSA_65, "ML-DSA-65"},
    {WVDS_ALG_ML_DSA_87, "ML-DSA-87"},
    {WVDS_ALG_ECDSA_P256, "ECDSA-P256"},
    {WVDS_ALG_ECDSA_P384, "ECDSA-P384"},
    {WVDS_ALG_SLH_DSA_SHA2_128S, "SLH-DSA-SHA2-128s"},
    {WVDS_ALG_SLH_DSA_SHA2_128F, "SLH-DSA-SHA2-128f"},
    {WVDS_ALG_SLH_DSA_SHA2_192S, "SLH-DSA-SHA2-192s"},
    {WVDS_ALG_SLH_DSA_SHA2_192F, "SLH-DSA-SHA2-192f"},
    {WVDS_ALG_SLH_DSA_SHA2_256S, "SLH-DSA-SHA2-256s"},
    {WVDS_ALG_SLH_DSA_SHA2_256F, "SLH-DSA-SHA2-256f"},
    {WVDS_ALG_SLH_DSA_SHAKE_128S, "SLH-DSA-SHAKE-128s"},
    {WVDS_ALG_SLH_DSA_SHAKE_128F, "SLH-DSA-SHAKE-128f"},
    {WVDS_ALG_SLH_DSA_SHAKE_192S, "SLH-DSA-SHAKE-192s"},
    {WVDS_ALG_SLH_DSA_SHAKE_192F, "SLH-DSA-SHAKE-192f"},
    {WVDS_ALG_SLH_DSA_SHAKE_256S, "SLH-DSA-SHAKE-256s"},
    {WVDS_ALG_SLH_DSA_SHAKE_256F, "SLH-DSA-SHAKE-256f"},
/* END GENERATED */
};

const char *wvds_keyref_alg_name(wvds_algorithm algorithm)
{
    for (size_t i = 0; i < sizeof(ALGS) / sizeof(ALGS[0]); i++)
        if (ALGS[i].algorithm == algorithm)
            return ALGS[i].name;
    return NULL;
}

int wvds_keyref_alg_from_name(const char *name, size_t len, wvds_algorithm *algorithm)
{
    for (size_t i = 0; i < sizeof(ALGS) / sizeof(ALGS[0]); i++)
        if (strlen(ALGS[i].name) == len && memcmp(ALGS[i].name, name, len) == 0) {
            *algorithm = ALGS[i].algorithm;
            return 1;
        }
    return 0;
}

/* --- DER writing: the structure is tiny, so lengths stay below 65536 ------------------ */

typedef struct {
    unsigned char *p;
    size_t cap, len;
    int ok;
} writer;

static void put(writer *w, const void *data, size_t n)
{
    if (!w->ok || n > w->cap - w->len) {
        w->ok = 0;
        return;
    }
    memcpy(w->p + w->len, data, n);
    w->len += n;
}

static void put_header(writer *w, unsigned char tag, size_t n)
{
    unsigned char h[4] = {tag};
    size_t hl;
    if (n < 0x80) {
        h[1] = (unsigned char)n, hl = 2;
    } else if (n < 0x100) {
        h[1] = 0x81, h[2] = (unsigned char)n, hl = 3;
    } else if (n < 0x10000) {
        h[1] = 0x82, h[2] = (unsigned char)(n >> 8), h[3] = (unsigned char)n, hl = 4;
    } else {
        w->ok = 0;
        return;
    }
    put(w, h, hl);
}

static void put_string(writer *w, const char *s)
{
    put_header(w, TAG_UTF8STRING, strlen(s));
    put(w, s, strlen(s));
}

static void put_u32(writer *w, uint32_t v)
{
    unsigned char b[5] = {0, (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    size_t i = 0;
    while (i < 4 && b[i] == 0 && !(b[i + 1] & 0x80)) /* minimal, and positive */
        i++;
    put_header(w, TAG_INTEGER, 5 - i);
    put(w, b + i, 5 - i);
}

int wvds_keyref_to_der(const wvds_keyref *ref, unsigned char *der, size_t cap, size_t *len)
{
    unsigned char body[WVDS_KEYREF_MAX_DER];
    writer b = {body, sizeof(body), 0, 1}, out = {der, cap, 0, 1};
    const char *alg = wvds_keyref_alg_name(ref->algorithm);

    if (!alg || ref->key_id == 0 || memchr(ref->socket, 0, sizeof(ref->socket)) == NULL)
        return 0;
    put_string(&b, WVDS_KEYREF_FORMAT);
    put_u32(&b, ref->key_id);
    put_string(&b, alg);
    if (ref->socket[0])
        put_string(&b, ref->socket);
    put_header(&out, TAG_SEQUENCE, b.len);
    put(&out, body, b.len);
    if (!b.ok || !out.ok)
        return 0;
    *len = out.len;
    return 1;
}

/* --- DER reading, strictly ---------------------------------------------------------------- */

/* Reads one element with the expected tag at *p; its content is [*content, *content + *n). */
static int get_tlv(const unsigned char **p, const unsigned char *end, unsigned char tag,
                   const unsigned char **content, size_t *n)
{
    const unsigned char *q = *p;
    size_t len;

    if (end - q < 2 || q[0] != tag)
        return 0;
    len = q[1], q += 2;
    if (len == 0x81) {
        if (end - q < 1 || q[0] < 0x80) /* the short form would have done */
            return 0;
        len = q[0], q += 1;
    } else if (len == 0x82) {
        if (end - q < 2 || q[0] == 0)
            return 0;
        len = ((size_t)q[0] << 8) | q[1], q += 2;
    } else if (len > 0x80) {
        return 0;
    } else if (len == 0x80) { /* indefinite length is BER, not DER */
        return 0;
    }
    if ((size_t)(end - q) < len)
        return 0;
    *content = q, *n = len, *p = q + len;
    return 1;
}

static int get_string(const unsigned char **p, const unsigned char *end, const unsigned char **s, size_t *n)
{
    return get_tlv(p, end, TAG_UTF8STRING, s, n) && memchr(*s, 0, *n) == NULL;
}

static int get_u32(const unsigned char **p, const unsigned char *end, uint32_t *v)
{
    const unsigned char *c;
    size_t n;

    if (!get_tlv(p, end, TAG_INTEGER, &c, &n) || n == 0 || n > 5 || (c[0] & 0x80))
        return 0; /* empty, too large or negative */
    if (n > 1 && c[0] == 0 && !(c[1] & 0x80))
        return 0; /* not minimal */
    if (n == 5 && c[0] != 0)
        return 0;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = (*v << 8) | c[i];
    return 1;
}

int wvds_keyref_from_der(const unsigned char *der, size_t len, wvds_keyref *ref)
{
    const unsigned char *p = der, *end = der + len, *seq, *s;
    size_t n;

    memset(ref, 0, sizeof(*ref));
    if (!get_tlv(&p, end, TAG_SEQUENCE, &seq, &n) || p != end)
        return 0;
    p = seq, end = seq + n;
    if (!get_string(&p, end, &s, &n) || n != strlen(WVDS_KEYREF_FORMAT) || memcmp(s, WVDS_KEYREF_FORMAT, n) != 0)
        return 0;
    if (!get_u32(&p, end, &ref->key_id) || ref->key_id == 0)
        return 0;
    if (!get_string(&p, end, &s, &n) || !wvds_keyref_alg_from_name((const char *)s, n, &ref->algorithm))
        return 0;
    if (p != end) {
        if (!get_string(&p, end, &s, &n) || n == 0 || n > WVDS_KEYREF_MAX_SOCKET || p != end)
            return 0;
        memcpy(ref->socket, s, n);
    }
    return 1;
}

/* --- PEM armour ------------------------------------------------------------------------- */

int wvds_keyref_to_pem(const wvds_keyref *ref, char *pem, size_t cap, size_t *len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char der[WVDS_KEYREF_MAX_DER];
    size_t der_len, col = 0;
    writer w = {(unsigned char *)pem, cap ? cap - 1 : 0, 0, cap > 0};
    char line[200];

    if (!wvds_keyref_to_der(ref, der, sizeof(der), &der_len))
        return 0;
    snprintf(line, sizeof(line), "WvdS crypto_service key reference (no key material): key 0x%08x, %s, socket %s\n",
             (unsigned)ref->key_id, wvds_keyref_alg_name(ref->algorithm),
             ref->socket[0] ? ref->socket : "$" WVDS_SOCKET_ENV " or " WVDS_DEFAULT_SOCKET);
    put(&w, line, strlen(line));
    put(&w, "-----BEGIN " WVDS_KEYREF_PEM_LABEL "-----\n", strlen("-----BEGIN " WVDS_KEYREF_PEM_LABEL "-----\n"));
    for (size_t i = 0; i < der_len; i += 3) {
        uint32_t v = (uint32_t)der[i] << 16 | (i + 1 < der_len ? (uint32_t)der[i + 1] << 8 : 0) |
                     (i + 2 < der_len ? der[i + 2] : 0);
        char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < der_len ? b64[v >> 6 & 63] : '=',
                     i + 2 < der_len ? b64[v & 63] : '='};
        put(&w, q, 4);
        if ((col += 4) == 64 || i + 3 >= der_len) {
            put(&w, "\n", 1);
            col = 0;
        }
    }
    put(&w, "-----END " WVDS_KEYREF_PEM_LABEL "-----\n", strlen("-----END " WVDS_KEYREF_PEM_LABEL "-----\n"));
    if (!w.ok)
        return 0;
    pem[w.len] = '\0';
    *len = w.len;
    return 1;
}
