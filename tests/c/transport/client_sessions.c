/* The child process of transport_test: one connection per scenario, in the order the
 * fake service expects them. Handshake failures, then the functional checks, then
 * timeouts with slot reclaim, then a service that dies in the middle of a request. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int64_t ms_since(int64_t t0)
{
    return (wvds_now_ns() - t0) / 1000000;
}

static wvds_status connect_with(const char *path, uint16_t slots, int32_t timeout_ms, wvds_conn **conn)
{
    wvds_options o;
    memset(&o, 0, sizeof o);
    o.requested_slots = slots;
    o.timeout_ms = timeout_ms;
    return wvds_connect_ex(path, &o, conn);
}

/* Before any connection reaches the service: argument errors and a missing socket. */
static void check_connect_arguments(const char *path)
{
    wvds_conn *conn = (wvds_conn *)1;
    wvds_options o;
    memset(&o, 0, sizeof o);
    CHECK_ST(wvds_connect_ex(path, &o, NULL), WVDS_ERR_ARGUMENT);
    o.reserved[2] = 1;
    CHECK_ST(wvds_connect_ex(path, &o, &conn), WVDS_ERR_ARGUMENT);
    CHECK(conn == NULL, "*out cleared on failure");
    memset(&o, 0, sizeof o);
    o.requested_slots = 2000;
    CHECK_ST(wvds_connect_ex(path, &o, &conn), WVDS_ERR_ARGUMENT);
    char long_path[200];
    memset(long_path, 'x', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    CHECK_ST(wvds_connect(long_path, &conn), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_connect("", &conn), WVDS_ERR_ARGUMENT);
    errno = 0;
    CHECK_ST(wvds_connect("/nonexistent/wvds.sock", &conn), WVDS_ERR_CONNECT);
    CHECK(errno == ENOENT, "errno kept after WVDS_ERR_CONNECT (%d)", errno);
    wvds_close(NULL);
    CHECK(wvds_conn_slots(NULL) == 0 && wvds_conn_client_id(NULL) == 0, "accessors accept NULL");
}

static void check_bad_handshakes(const char *path)
{
    static const struct {
        enum scenario sc;
        wvds_status want;
    } cases[] = {
        {SC_REFUSED, WVDS_ERR_REFUSED},     {SC_REFUSED_UNREAD, WVDS_ERR_REFUSED}, {SC_BAD_MAGIC, WVDS_ERR_PROTOCOL}, {SC_SHORT_MEMFD, WVDS_ERR_PROTOCOL},
        {SC_UNSEALED, WVDS_ERR_PROTOCOL},   {SC_BAD_CONTROL, WVDS_ERR_PROTOCOL}, {SC_HANGUP, WVDS_ERR_DISCONNECTED},
        {SC_SILENT, WVDS_ERR_TIMEOUT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wvds_conn *conn = NULL;
        int64_t t0 = wvds_now_ns();
        wvds_status st = connect_with(path, 1, SLOW_CLIENT_TIMEOUT_MS, &conn);
        CHECK(st == cases[i].want, "scenario %d: got %s, want %s", cases[i].sc, wvds_status_name(st),
              wvds_status_name(cases[i].want));
        CHECK(conn == NULL, "no connection after a failed handshake");
        if (cases[i].sc == SC_SILENT)
            CHECK(ms_since(t0) >= SLOW_CLIENT_TIMEOUT_MS - 5, "the handshake waited for its timeout");
    }
}

static void check_main_session(const char *path, int canned_fd)
{
    wvds_conn *conn = NULL;
    CHECK_ST(connect_with(path, 4, 10000, &conn), WVDS_SUCCESS);
    if (!conn)
        return;
    CHECK(wvds_conn_slots(conn) == 4 && wvds_conn_client_id(conn) == 1000 + SC_MAIN, "slots and client id");
    check_arguments(conn);
    check_basic_calls(conn);
    check_oversized_req_len(conn);
    check_malformed_responses(conn, canned_fd);
    check_concurrency(conn);
    check_streams(conn);
    wvds_close(conn); /* the service must see this hangup (-2) */
}

/* One slot, 200 ms timeout: a slow request times out, its slot stays the service's
 * until the late answer arrives, and is then reused. */
static wvds_conn *check_timeouts(const char *path)
{
    wvds_conn *conn = NULL;
    CHECK_ST(connect_with(path, 1, SLOW_CLIENT_TIMEOUT_MS, &conn), WVDS_SUCCESS);
    if (!conn)
        return NULL;
    CHECK(wvds_conn_slots(conn) == 1, "one slot");
    uint8_t pt[8] = "slowpoke", sealed[64], rnd[16];
    size_t n;
    int64_t t0 = wvds_now_ns();
    CHECK_ST(wvds_aes_encrypt(conn, KEY_DELAY_BASE | 700, NULL, 0, pt, sizeof pt, sealed, sizeof sealed, &n),
             WVDS_ERR_TIMEOUT);
    int64_t took = ms_since(t0);
    CHECK(took >= SLOW_CLIENT_TIMEOUT_MS - 5 && took < 600, "timed out after %lld ms", (long long)took);
    t0 = wvds_now_ns();
    CHECK_ST(wvds_random(conn, rnd, sizeof rnd), WVDS_ERR_TIMEOUT); /* the only slot is still abandoned */
    CHECK(ms_since(t0) >= SLOW_CLIENT_TIMEOUT_MS - 5, "waited for a slot");
    usleep(600 * 1000); /* the late answer arrives (700 ms after the request) */
    CHECK_ST(wvds_random(conn, rnd, sizeof rnd), WVDS_SUCCESS);
    CHECK(rnd[1] == (uint8_t)(31 + 16), "the reclaimed slot carries the new answer");

    /* A stream over a single slot: one chunk in flight at a time. */
    size_t len = WVDS_STREAM_CHUNK_SIZE + 1, cap = wvds_stream_sealed_size(len), m;
    uint8_t *in = calloc(1, len), *s = malloc(cap), *out = malloc(len);
    CHECK_ST(wvds_stream_encrypt(conn, KEY_AEAD, NULL, 0, in, len, s, cap, &n), WVDS_SUCCESS);
    CHECK_ST(wvds_stream_decrypt(conn, KEY_AEAD, NULL, 0, s, n, out, len, &m), WVDS_SUCCESS);
    CHECK(m == len && memcmp(in, out, len) == 0, "one-slot stream round trip");
    free(in), free(s), free(out);
    return conn; /* left open: the process exit must end this session */
}

static void check_service_dies(const char *path)
{
    wvds_conn *conn = NULL;
    CHECK_ST(connect_with(path, 2, 10000, &conn), WVDS_SUCCESS);
    if (!conn)
        return;
    uint8_t pt[4] = "bye", sealed[64], rnd[8];
    size_t n;
    int64_t t0 = wvds_now_ns();
    CHECK_ST(wvds_aes_encrypt(conn, KEY_DIE, NULL, 0, pt, sizeof pt, sealed, sizeof sealed, &n),
             WVDS_ERR_DISCONNECTED);
    CHECK(ms_since(t0) < 2000, "noticed the dead service after %lld ms, long before the 10 s timeout",
          (long long)ms_since(t0));
    t0 = wvds_now_ns();
    CHECK_ST(wvds_random(conn, rnd, sizeof rnd), WVDS_ERR_DISCONNECTED);
    CHECK(ms_since(t0) < 50, "later calls fail at once");
    wvds_close(conn);
}

int run_client(const char *path, int canned_fd)
{
    check_connect_arguments(path);
    check_bad_handshakes(path);
    check_main_session(path, canned_fd);
    wvds_conn *left_open = check_timeouts(path);
    check_service_dies(path);
    (void)left_open;
    return 0;
}
