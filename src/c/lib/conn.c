/* Connection set-up and tear-down, exactly as docs/transport.md describes:
 * SOCK_SEQPACKET connect, HELLO, WELCOME with the memfd and the doorbell eventfd
 * (SCM_RIGHTS), size and seal checks on the memfd, mmap, control block check. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define MAX_FDS 8 /* room to receive (and close) more descriptors than expected */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

typedef struct welcome {
    uint16_t status;
    uint16_t slot_count;
    uint32_t shm_size;
    uint32_t slot_size;
    uint32_t client_id;
} welcome;

static wvds_status send_hello(int sock, uint16_t requested_slots)
{
    uint8_t hello[WVDS_HELLO_SIZE] = {0};
    put_le(hello, WVDS_TRANSPORT_MAGIC, 4);
    put_le(hello + 4, WVDS_TRANSPORT_VERSION, 2);
    put_le(hello + 6, requested_slots, 2);
    ssize_t n = send(sock, hello, sizeof hello, MSG_NOSIGNAL);
    if (n == (ssize_t)sizeof hello)
        return WVDS_SUCCESS;
    /* A refused peer may have been answered and hung up before the HELLO arrived:
     * the answer is still waiting to be read. */
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
        return WVDS_SUCCESS;
    return WVDS_ERR_SYSTEM;
}

static void close_fds(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* Receives WELCOME and its descriptors. On success *nfds descriptors are in fds (the caller owns them). */
static wvds_status recv_welcome(int sock, int64_t deadline, welcome *w, int *fds, int *nfds)
{
    *nfds = 0;
    for (;;) {
        int wait_ms = -1;
        if (deadline != WVDS_FOREVER) {
            int64_t left = deadline - wvds_now_ns();
            if (left <= 0)
                return WVDS_ERR_TIMEOUT;
            wait_ms = (int)((left + 999999) / 1000000);
        }
        struct pollfd p = {.fd = sock, .events = POLLIN};
        int r = poll(&p, 1, wait_ms);
        if (r > 0)
            break;
        if (r < 0 && errno != EINTR)
            return WVDS_ERR_SYSTEM;
    }
    uint8_t buf[WVDS_WELCOME_SIZE];
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    } control;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr msg;
    ssize_t n;
    bool reset_seen = false;
    for (;;) {
        msg = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                              .msg_controllen = sizeof control.space};
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n >= 0)
            break;
        if (errno == EINTR)
            continue;
        /* A service that refuses us before reading HELLO closes with our HELLO unread: the
         * kernel then reports ECONNRESET once, ahead of the refusal still queued for us. */
        if (errno == ECONNRESET && !reset_seen) {
            reset_seen = true;
            continue;
        }
        break;
    }
    if (n == 0 || (n < 0 && errno == ECONNRESET))
        return WVDS_ERR_DISCONNECTED;
    if (n < 0)
        return WVDS_ERR_SYSTEM;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < count && *nfds < MAX_FDS; i++)
            memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    if (n != (ssize_t)sizeof buf || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
        get_le(buf, 4) != WVDS_TRANSPORT_MAGIC || get_le(buf + 4, 2) != WVDS_TRANSPORT_VERSION) {
        close_fds(fds, *nfds);
        *nfds = 0;
        return WVDS_ERR_PROTOCOL;
    }
    w->status = (uint16_t)get_le(buf + 6, 2);
    w->slot_count = (uint16_t)get_le(buf + 8, 2);
    w->shm_size = (uint32_t)get_le(buf + 12, 4);
    w->slot_size = (uint32_t)get_le(buf + 16, 4);
    w->client_id = (uint32_t)get_le(buf + 20, 4);
    return WVDS_SUCCESS;
}

/* Checks the memfd against WELCOME (size, seals) and maps it. */
static wvds_status map_shared_memory(wvds_conn *conn, int memfd, const welcome *w)
{
    if (w->slot_count == 0 || w->slot_count > WVDS_SHM_MAX_SLOTS || w->slot_size != WVDS_SLOT_SIZE ||
        w->shm_size != wvds_shm_size(w->slot_count))
        return WVDS_ERR_PROTOCOL;
    struct stat st;
    if (fstat(memfd, &st) != 0)
        return WVDS_ERR_SYSTEM;
    /* The seals guarantee the size cannot change under us (a shrink would turn our reads into SIGBUS). */
    int seals = fcntl(memfd, F_GET_SEALS);
    if (!S_ISREG(st.st_mode) || st.st_size != (off_t)w->shm_size || seals < 0 ||
        (seals & REQUIRED_SEALS) != REQUIRED_SEALS)
        return WVDS_ERR_PROTOCOL;
    void *shm = mmap(NULL, w->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (shm == MAP_FAILED)
        return WVDS_ERR_SYSTEM;
    conn->shm = shm;
    conn->shm_size = w->shm_size;
    if (wvds_shm_check_control(shm, w->slot_count, w->client_id) != 0)
        return WVDS_ERR_PROTOCOL;
    conn->slot_count = w->slot_count;
    conn->client_id = w->client_id;
    return WVDS_SUCCESS;
}

static wvds_status handshake(wvds_conn *conn, uint16_t requested_slots, int64_t deadline)
{
    wvds_status st = send_hello(conn->sock_fd, requested_slots);
    if (st != WVDS_SUCCESS)
        return st;
    welcome w;
    int fds[MAX_FDS], nfds;
    st = recv_welcome(conn->sock_fd, deadline, &w, fds, &nfds);
    if (st != WVDS_SUCCESS)
        return st;
    if (w.status != 0 || nfds != 2) {
        close_fds(fds, nfds);
        return w.status != 0 ? WVDS_ERR_REFUSED : WVDS_ERR_PROTOCOL;
    }
    conn->doorbell_fd = fds[1];
    st = map_shared_memory(conn, fds[0], &w);
    close(fds[0]); /* the mapping keeps the memory */
    return st;
}

static const char *resolve_path(const char *socket_path)
{
    if (socket_path)
        return socket_path;
    const char *env = secure_getenv(WVDS_SOCKET_ENV);
    return env && *env ? env : WVDS_DEFAULT_SOCKET;
}

static bool options_ok(const wvds_options *o)
{
    if (o->reserved0 || o->requested_slots > WVDS_SHM_MAX_SLOTS)
        return false;
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++)
        if (o->reserved[i])
            return false;
    return true;
}

wvds_status wvds_connect(const char *socket_path, wvds_conn **out)
{
    return wvds_connect_ex(socket_path, NULL, out);
}

/* Spinning waits for an answer being computed on another CPU. With one CPU online the service cannot run
 * while this thread spins, so the default then is to sleep at once (measured: docs/performance.md). */
static uint32_t default_spin_us(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN) > 1 ? WVDS_DEFAULT_SPIN_US : 0;
}

wvds_status wvds_connect_ex(const char *socket_path, const wvds_options *opts, wvds_conn **out)
{
    if (!out)
        return WVDS_ERR_ARGUMENT;
    *out = NULL;
    wvds_options o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    const char *path = resolve_path(socket_path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t path_len = strlen(path);
    if (!options_ok(&o) || path_len == 0 || path_len >= sizeof addr.sun_path)
        return WVDS_ERR_ARGUMENT;
    memcpy(addr.sun_path, path, path_len + 1);

    wvds_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return WVDS_ERR_SYSTEM;
    conn->sock_fd = conn->doorbell_fd = -1;
    conn->timeout_ms = o.timeout_ms == 0 ? WVDS_DEFAULT_TIMEOUT_MS : o.timeout_ms;
    uint32_t spin_us = o.spin_us == 0 ? default_spin_us() : o.spin_us == WVDS_NO_SPIN ? 0 : o.spin_us;
    int64_t deadline = wvds_deadline_after_ms(conn->timeout_ms);

    wvds_status st = WVDS_SUCCESS;
    conn->sock_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (conn->sock_fd < 0)
        st = WVDS_ERR_SYSTEM;
    else if (connect(conn->sock_fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        st = WVDS_ERR_CONNECT;
    if (st == WVDS_SUCCESS)
        st = handshake(conn, o.requested_slots, deadline);
    if (st == WVDS_SUCCESS && wvds_slot_client_init(&conn->slots, conn->shm, conn->slot_count, conn->doorbell_fd,
                                                    conn->sock_fd, spin_us) != 0)
        st = WVDS_ERR_SYSTEM;
    if (st != WVDS_SUCCESS) {
        int saved = errno; /* callers may look at errno after WVDS_ERR_CONNECT / _SYSTEM */
        wvds_close(conn);
        errno = saved;
        return st;
    }
    *out = conn;
    return WVDS_SUCCESS;
}

void wvds_close(wvds_conn *conn)
{
    if (!conn)
        return;
    wvds_slot_client_destroy(&conn->slots);
    if (conn->shm)
        munmap(conn->shm, conn->shm_size);
    if (conn->doorbell_fd >= 0)
        close(conn->doorbell_fd);
    if (conn->sock_fd >= 0)
        close(conn->sock_fd); /* the service sees the hangup and ends the session */
    free(conn);
}

uint16_t wvds_conn_slots(const wvds_conn *conn)
{
    return conn ? conn->slot_count : 0;
}

uint32_t wvds_conn_client_id(const wvds_conn *conn)
{
    return conn ? conn->client_id : 0;
}
