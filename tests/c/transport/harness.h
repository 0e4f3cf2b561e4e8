/* Shared by both processes of transport_test: check macros, the scenario list both
 * sides walk through in the same order, the side channel for canned responses and the
 * fake service's toy AEAD. */
#ifndef WVDS_TEST_HARNESS_H
#define WVDS_TEST_HARNESS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "internal.h"

extern atomic_int g_checks, g_failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        atomic_fetch_add(&g_checks, 1);                                    \
        if (!(cond)) {                                                     \
            atomic_fetch_add(&g_failures, 1);                              \
            fprintf(stderr, "[%s] %s:%d: CHECK(%s) failed: ", g_role, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

#define CHECK_ST(got, want)                                                                          \
    do {                                                                                             \
        wvds_status got_ = (got), want_ = (want);                                                    \
        CHECK(got_ == want_, "got %s, want %s", wvds_status_name(got_), wvds_status_name(want_));    \
    } while (0)

extern const char *g_role; /* "service" or "client", for messages */

/* Connections the child opens, in order; the parent answers each the way its scenario says. */
enum scenario {
    SC_REFUSED,         /* WELCOME with PERMISSION_DENIED, no descriptors */
    SC_REFUSED_UNREAD,  /* the same, sent and closed with HELLO still unread (as crypto_service does) */
    SC_BAD_MAGIC,       /* WELCOME with a wrong magic */
    SC_SHORT_MEMFD,     /* memfd smaller than WELCOME says */
    SC_UNSEALED,        /* memfd without seals */
    SC_BAD_CONTROL,     /* control block names another client id */
    SC_HANGUP,          /* service closes without answering */
    SC_SILENT,          /* service never answers HELLO */
    SC_MAIN,            /* full service, 4 slots: the functional tests */
    SC_ONE_SLOT,        /* 1 slot, short client timeout: timeouts and slot reclaim */
    SC_SERVICE_DIES,    /* service hangs up in the middle of a request */
    SC_COUNT
};

#define SLOW_CLIENT_TIMEOUT_MS 200

/* Request key ids with special meaning to the fake service (AES_ENCRYPT). */
#define KEY_AEAD 1u              /* the toy AEAD below */
#define KEY_DELAY_BASE 0xDE1A0000u /* | milliseconds to sleep before answering */
#define KEY_DIE 0xD1E00000u      /* service hangs up instead of answering */

/* Side channel: before a call, the child may queue one canned response frame in a pipe;
 * the service answers the next request with it. resp_len_override != 0 makes the service
 * publish that length instead of the frame's (to test lengths outside the response area). */
typedef struct canned_header {
    uint32_t frame_len;
    uint32_t resp_len_override;
} canned_header;
#define CANNED_MAX 3000 /* header + frame stay under PIPE_BUF: one atomic write */

/* The toy AEAD of the fake service: not cryptography, only enough structure to check that
 * the library frames, binds and reorders nothing (the tag covers AAD, nonce and ciphertext). */
static inline void toy_keystream(uint32_t key_id, const uint8_t *nonce, uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++)
        data[i] ^= (uint8_t)(nonce[i % 12] * 131u + i * 7u + key_id);
}

static inline uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static inline void toy_tag(uint32_t key_id, const uint8_t *aad, size_t aad_len, const uint8_t *nonce,
                           const uint8_t *ct, size_t ct_len, uint8_t tag[16])
{
    uint8_t k[4] = {(uint8_t)key_id, (uint8_t)(key_id >> 8), (uint8_t)(key_id >> 16), (uint8_t)(key_id >> 24)};
    uint8_t lens[8];
    for (int i = 0; i < 4; i++)
        lens[i] = (uint8_t)(aad_len >> (8 * i)), lens[4 + i] = (uint8_t)(ct_len >> (8 * i));
    for (int half = 0; half < 2; half++) {
        uint64_t h = 0xcbf29ce484222325ull + (uint64_t)half;
        h = fnv1a(h, k, 4);
        h = fnv1a(h, lens, 8);
        h = fnv1a(h, aad, aad_len);
        h = fnv1a(h, nonce, 12);
        h = fnv1a(h, ct, ct_len);
        for (int i = 0; i < 8; i++)
            tag[half * 8 + i] = (uint8_t)(h >> (8 * i));
    }
}

/* Both sides of the fork. */
int run_service(int listen_fd, int canned_fd, pid_t child);
int run_service_unit_tests(void);
int run_client(const char *socket_path, int canned_fd);

/* Client-side groups of checks, run on the SC_MAIN connection (client_*.c). */
void check_arguments(wvds_conn *conn);
void check_basic_calls(wvds_conn *conn);
void check_oversized_req_len(wvds_conn *conn);
void check_malformed_responses(wvds_conn *conn, int canned_fd);
void check_concurrency(wvds_conn *conn);
void check_streams(wvds_conn *conn);

#endif
