/* The chunked stream API against the fake service's toy AEAD: round trips at the chunk
 * boundaries, every kind of stream tampering, and two streams sharing one connection. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CHUNK WVDS_STREAM_CHUNK_SIZE
#define BIG (3 * CHUNK + 5)
#define SEALED_CAP (BIG + 16 + 8 * WVDS_STREAM_FRAME_OVERHEAD + 2 * CHUNK)

static uint8_t pt[BIG], sealed[SEALED_CAP], other[SEALED_CAP], forged[SEALED_CAP], back[SEALED_CAP];

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

/* Offsets of the frames of a stream (4 frames for BIG). */
static size_t frames_of(const uint8_t *s, size_t len, size_t *off, size_t max)
{
    size_t n = 0;
    for (size_t o = WVDS_STREAM_ID_SIZE; o + 4 <= len && n < max;) {
        off[n++] = o;
        o += 4 + (s[o] | s[o + 1] << 8 | (size_t)s[o + 2] << 16 | (size_t)s[o + 3] << 24);
    }
    off[n] = len;
    return n;
}

/* Builds forged = stream id || the listed frames of `src`; returns its length. */
static size_t assemble(const uint8_t *src, const size_t *off, const int *order, int count)
{
    memcpy(forged, src, WVDS_STREAM_ID_SIZE);
    size_t n = WVDS_STREAM_ID_SIZE;
    for (int i = 0; i < count; i++) {
        size_t len = off[order[i] + 1] - off[order[i]];
        memcpy(forged + n, src + off[order[i]], len);
        n += len;
    }
    return n;
}

static void expect_rejected(wvds_conn *conn, const uint8_t *s, size_t len, const char *aad, const char *what)
{
    size_t n = 12345;
    memset(back, 0xAA, sizeof back);
    wvds_status st = wvds_stream_decrypt(conn, KEY_AEAD, aad, strlen(aad), s, len, back, sizeof back, &n);
    CHECK(st == WVDS_DECRYPTION_FAILED, "%s: got %s", what, wvds_status_name(st));
    CHECK(n == 0, "%s: no length", what);
    CHECK(memcmp(back, pt, 64) != 0, "%s: no plaintext left in the output", what);
}

static void check_round_trips(wvds_conn *conn)
{
    static const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, BIG};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len = sizes[i], sealed_len, back_len;
        CHECK_ST(wvds_stream_encrypt(conn, KEY_AEAD, "meta", 4, pt, len, sealed, sizeof sealed, &sealed_len),
                 WVDS_SUCCESS);
        CHECK(sealed_len == wvds_stream_sealed_size(len), "stream of %zu bytes is %zu bytes", len, sealed_len);
        CHECK_ST(wvds_stream_decrypt(conn, KEY_AEAD, "meta", 4, sealed, sealed_len, back, len, &back_len),
                 WVDS_SUCCESS);
        CHECK(back_len == len && memcmp(back, pt, len) == 0, "stream round trip of %zu bytes", len);
    }
    size_t sealed_len, n;
    CHECK_ST(wvds_stream_encrypt(conn, KEY_AEAD, NULL, 0, pt, 10, sealed, sizeof sealed, &sealed_len), WVDS_SUCCESS);
    CHECK_ST(wvds_stream_decrypt(conn, KEY_AEAD, NULL, 0, sealed, sealed_len, back, 9, &n),
             WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 10, "plaintext size reported (%zu)", n);
}

static void check_tampering(wvds_conn *conn)
{
    size_t len, other_len, off[8];
    CHECK_ST(wvds_stream_encrypt(conn, KEY_AEAD, "meta", 4, pt, BIG, sealed, sizeof sealed, &len), WVDS_SUCCESS);
    CHECK_ST(wvds_stream_encrypt(conn, KEY_AEAD, "meta", 4, pt, BIG, other, sizeof other, &other_len), WVDS_SUCCESS);
    size_t frames = frames_of(sealed, len, off, 7);
    CHECK(frames == 4, "4 frames (%zu)", frames);
    if (frames != 4)
        return;

    static const struct {
        int order[5];
        int count;
        const char *what;
    } forgeries[] = {
        {{1, 0, 2, 3}, 4, "reordered"}, {{0, 0, 1, 2, 3}, 5, "duplicated"}, {{0, 1, 2}, 3, "truncated"},
        {{0, 2, 3}, 3, "chunk dropped"}, {{0, 1, 2, 3, 3}, 5, "extended"},
    };
    for (size_t i = 0; i < sizeof forgeries / sizeof forgeries[0]; i++) {
        size_t n = assemble(sealed, off, forgeries[i].order, forgeries[i].count);
        expect_rejected(conn, forged, n, "meta", forgeries[i].what);
    }
    /* A chunk spliced in from another stream (same key, same plaintext, other id). */
    memcpy(forged, sealed, len);
    memcpy(forged + off[1], other + off[1], off[2] - off[1]);
    expect_rejected(conn, forged, len, "meta", "spliced");
    memcpy(forged, sealed, len);
    forged[3] ^= 1;
    expect_rejected(conn, forged, len, "meta", "stream id changed");
    memcpy(forged, sealed, len);
    forged[off[2] + 40] ^= 1;
    expect_rejected(conn, forged, len, "meta", "ciphertext changed");
    expect_rejected(conn, sealed, len, "metb", "other AAD");
    memcpy(forged, sealed, len);
    memcpy(forged + len, "xyz", 3);
    expect_rejected(conn, forged, len + 3, "meta", "trailing bytes");
    expect_rejected(conn, sealed, len - 1, "meta", "cut inside a frame");
    expect_rejected(conn, sealed, WVDS_STREAM_ID_SIZE, "meta", "no frames");
    forged[off[0]] = 27; /* frame shorter than nonce + tag */
    expect_rejected(conn, forged, len, "meta", "frame length below 28");
}

static void *stream_worker(void *arg)
{
    wvds_conn *conn = arg;
    size_t len = 2 * CHUNK + 100, cap = wvds_stream_sealed_size(len), n, m;
    uint8_t *in = malloc(len), *s = malloc(cap), *out = malloc(len);
    fill(in, len, (unsigned)(uintptr_t)&len);
    for (int round = 0; round < 5; round++) {
        CHECK_ST(wvds_stream_encrypt(conn, KEY_AEAD, NULL, 0, in, len, s, cap, &n), WVDS_SUCCESS);
        CHECK_ST(wvds_stream_decrypt(conn, KEY_AEAD, NULL, 0, s, n, out, len, &m), WVDS_SUCCESS);
        CHECK(m == len && memcmp(in, out, len) == 0, "concurrent stream round trip");
    }
    free(in);
    free(s);
    free(out);
    return NULL;
}

void check_streams(wvds_conn *conn)
{
    fill(pt, sizeof pt, 1);
    check_round_trips(conn);
    check_tampering(conn);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, stream_worker, conn);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
}
