/* The parent process of transport_test: a small service built on the wvds_srv_*
 * functions, a real listening SOCK_SEQPACKET socket, memfd and eventfd. For each
 * scenario it accepts one connection and answers the handshake the way the scenario
 * says; serving sessions run in their own thread (one per client, as crypto_service
 * does) and answer each request from a worker thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "wvds_srv.h"

typedef struct session {
    enum scenario scenario;
    int sock;
    int doorbell;
    void *shm;
    uint16_t slots;
    uint32_t shm_size;
    int canned_fd;
    pthread_mutex_t canned_lock;
    atomic_int workers;
    atomic_int in_flight, max_in_flight;
    atomic_bool hung_up;
    int end; /* what wvds_srv_next returned last */
} session;

typedef struct job {
    session *s;
    int slot;
    uint32_t len;
    uint8_t frame[];
} job;

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void respond(session *s, int slot, uint8_t status, const uint8_t *payload, uint32_t n)
{
    uint8_t *frame = malloc(WVDS_HEADER_SIZE + n);
    frame[0] = WVDS_RESPONSE_MAGIC, frame[1] = WVDS_PROTOCOL_VERSION, frame[2] = status, frame[3] = 0;
    put32(frame + 4, n);
    if (n)
        memcpy(frame + WVDS_HEADER_SIZE, payload, n);
    CHECK(wvds_srv_complete(s->shm, s->slots, slot, frame, WVDS_HEADER_SIZE + n) == 0, "complete slot %d", slot);
    free(frame);
}

/* Publishes a canned frame with any length word, bypassing wvds_srv_complete's checks. */
static void respond_raw(session *s, int slot, const uint8_t *frame, uint32_t n, uint32_t len_word)
{
    wvds_slot_header *h = wvds_slot_at(s->shm, (unsigned)slot);
    memcpy(wvds_slot_response(s->shm, (unsigned)slot), frame, n);
    atomic_store_explicit(&h->resp_len, len_word, memory_order_relaxed);
    atomic_store_explicit(&h->state, WVDS_SLOT_DONE, memory_order_release);
    syscall(SYS_futex, (void *)&h->state, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
}

/* A canned response queued by the client for this request, if any. */
static int take_canned(session *s, uint8_t *frame, canned_header *ch)
{
    pthread_mutex_lock(&s->canned_lock);
    ssize_t n = read(s->canned_fd, ch, sizeof *ch);
    int got = n == (ssize_t)sizeof *ch && ch->frame_len <= CANNED_MAX &&
              read(s->canned_fd, frame, ch->frame_len) == (ssize_t)ch->frame_len;
    pthread_mutex_unlock(&s->canned_lock);
    return got;
}

static void toy_encrypt(session *s, int slot, const uint8_t *p, uint32_t n)
{
    static atomic_uint nonce_counter;
    uint32_t key_id = get32(p);
    uint32_t aad_len = p[4] | p[5] << 8;
    if (n < 6 + aad_len) {
        respond(s, slot, WVDS_INVALID_PAYLOAD, NULL, 0);
        return;
    }
    if ((key_id & 0xFFFF0000u) == KEY_DELAY_BASE)
        usleep((key_id & 0xFFFF) * 1000);
    const uint8_t *aad = p + 6, *pt = aad + aad_len;
    uint32_t pt_len = n - 6 - aad_len;
    uint8_t *out = malloc(pt_len + 28);
    memset(out, 0, 12);
    put32(out, atomic_fetch_add(&nonce_counter, 1));
    memcpy(out + 12, pt, pt_len);
    toy_keystream(key_id, out, out + 12, pt_len);
    toy_tag(key_id, aad, aad_len, out, out + 12, pt_len, out + 12 + pt_len);
    respond(s, slot, WVDS_SUCCESS, out, pt_len + 28);
    free(out);
}

static void toy_decrypt(session *s, int slot, const uint8_t *p, uint32_t n)
{
    uint32_t key_id = get32(p);
    uint32_t aad_len = p[4] | p[5] << 8;
    if (n < 6 + aad_len + 28) {
        respond(s, slot, WVDS_INVALID_PAYLOAD, NULL, 0);
        return;
    }
    const uint8_t *aad = p + 6, *nonce = aad + aad_len, *ct = nonce + 12;
    uint32_t ct_len = n - 6 - aad_len - 28;
    uint8_t tag[16];
    toy_tag(key_id, aad, aad_len, nonce, ct, ct_len, tag);
    if (memcmp(tag, ct + ct_len, 16) != 0) {
        respond(s, slot, WVDS_DECRYPTION_FAILED, NULL, 0);
        return;
    }
    uint8_t *pt = malloc(ct_len + 1);
    memcpy(pt, ct, ct_len);
    toy_keystream(key_id, nonce, pt, ct_len);
    respond(s, slot, WVDS_SUCCESS, pt, ct_len);
    free(pt);
}

/* RANDOM answers a pattern the client can check: byte i = i * 31 + n. */
static void fake_random(session *s, int slot, const uint8_t *p, uint32_t n)
{
    if (n != 4) {
        respond(s, slot, WVDS_INVALID_PAYLOAD, NULL, 0);
        return;
    }
    uint32_t want = get32(p);
    uint8_t *out = malloc(want + 1);
    for (uint32_t i = 0; i < want; i++)
        out[i] = (uint8_t)(i * 31 + want);
    usleep(200); /* long enough for other slots to be in flight at the same time */
    respond(s, slot, WVDS_SUCCESS, out, want);
    free(out);
}

static void *worker(void *arg)
{
    job *j = arg;
    session *s = j->s;
    int now = atomic_fetch_add(&s->in_flight, 1) + 1;
    for (int m = atomic_load(&s->max_in_flight); now > m && !atomic_compare_exchange_weak(&s->max_in_flight, &m, now);)
        ;
    uint8_t canned[CANNED_MAX];
    canned_header ch;
    const uint8_t *f = j->frame;
    if (take_canned(s, canned, &ch)) {
        respond_raw(s, j->slot, canned, ch.frame_len, ch.resp_len_override ? ch.resp_len_override : ch.frame_len);
    } else if (j->len < WVDS_HEADER_SIZE || f[0] != WVDS_REQUEST_MAGIC || f[1] != WVDS_PROTOCOL_VERSION ||
               get32(f + 4) != j->len - WVDS_HEADER_SIZE) {
        uint8_t seen[4]; /* tells the client how many bytes arrived */
        put32(seen, j->len);
        respond(s, j->slot, WVDS_INVALID_HEADER, seen, 4);
    } else {
        const uint8_t *p = f + WVDS_HEADER_SIZE;
        uint32_t n = j->len - WVDS_HEADER_SIZE;
        switch (f[2]) {
        case WVDS_REQ_RANDOM:
            fake_random(s, j->slot, p, n);
            break;
        case WVDS_REQ_STATUS:
            respond(s, j->slot, WVDS_SUCCESS, (const uint8_t *)"{\"fake\":true}", 13);
            break;
        case WVDS_REQ_AES_ENCRYPT:
            if (n >= 4 && get32(p) == KEY_DIE) {
                atomic_store(&s->hung_up, true);
                shutdown(s->sock, SHUT_RDWR); /* the client sees the hangup; this slot is never answered */
                break;
            }
            toy_encrypt(s, j->slot, p, n);
            break;
        case WVDS_REQ_AES_DECRYPT:
            toy_decrypt(s, j->slot, p, n);
            break;
        default:
            respond(s, j->slot, WVDS_INVALID_TYPE, NULL, 0);
        }
    }
    atomic_fetch_sub(&s->in_flight, 1);
    free(j);
    atomic_fetch_sub(&s->workers, 1);
    return NULL;
}

static void *serve(void *arg)
{
    session *s = arg;
    uint8_t *buf = malloc(WVDS_SLOT_REQ_AREA);
    for (;;) {
        uint32_t len = 0;
        int slot = wvds_srv_next(s->shm, s->slots, s->doorbell, s->sock, 20, 100, buf, WVDS_SLOT_REQ_AREA, &len);
        if (slot == -1)
            continue;
        if (slot < 0) {
            s->end = slot;
            break;
        }
        CHECK(len <= WVDS_SLOT_REQ_AREA, "request of %u bytes", len);
        job *j = malloc(sizeof *j + len);
        j->s = s, j->slot = slot, j->len = len;
        memcpy(j->frame, buf, len);
        atomic_fetch_add(&s->workers, 1);
        pthread_t t;
        pthread_create(&t, NULL, worker, j);
        pthread_detach(t);
    }
    while (atomic_load(&s->workers))
        usleep(1000);
    free(buf);
    return NULL;
}

static int make_memfd(uint32_t size, int seal)
{
    int fd = memfd_create("wvds-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0 && ftruncate(fd, size) == 0, "memfd of %u bytes", size);
    if (seal)
        CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0, "seal: %d", errno);
    return fd;
}

static void send_welcome(int sock, uint16_t status, uint16_t slots, uint32_t shm_size, uint32_t client_id,
                         uint32_t magic, const int *fds, int nfds)
{
    uint8_t w[WVDS_WELCOME_SIZE] = {0};
    put32(w, magic);
    w[4] = WVDS_TRANSPORT_VERSION;
    w[6] = (uint8_t)status, w[7] = (uint8_t)(status >> 8);
    w[8] = (uint8_t)slots, w[9] = (uint8_t)(slots >> 8);
    put32(w + 12, shm_size);
    put32(w + 16, WVDS_SLOT_SIZE);
    put32(w + 20, client_id);
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * 2)];
    } control;
    struct iovec iov = {.iov_base = w, .iov_len = sizeof w};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        msg.msg_control = control.space;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    CHECK(sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)sizeof w, "send WELCOME: %d", errno);
}

/* Reads and checks HELLO; returns the requested slot count. */
static int read_hello(int sock)
{
    uint8_t h[WVDS_HELLO_SIZE + 1];
    ssize_t n = recv(sock, h, sizeof h, 0);
    CHECK(n == WVDS_HELLO_SIZE, "HELLO of %zd bytes", n);
    if (n != WVDS_HELLO_SIZE)
        return -1;
    CHECK(get32(h) == WVDS_TRANSPORT_MAGIC && h[4] == 1 && h[5] == 0, "HELLO magic/version");
    for (int i = 8; i < 16; i++)
        CHECK(h[i] == 0, "HELLO reserved byte %d", i);
    return h[6] | h[7] << 8;
}

/* Sets up shared memory and sends an accepted WELCOME; the session starts serving. */
static session *start_session(enum scenario sc, int sock, uint16_t slots, int canned_fd)
{
    session *s = calloc(1, sizeof *s);
    s->scenario = sc, s->sock = sock, s->slots = slots, s->canned_fd = canned_fd;
    pthread_mutex_init(&s->canned_lock, NULL);
    s->shm_size = wvds_srv_shm_size(slots);
    int memfd = make_memfd(s->shm_size, 1);
    s->shm = mmap(NULL, s->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    CHECK(s->shm != MAP_FAILED && wvds_srv_init_control(s->shm, slots, 1000 + sc) == 0, "map + init");
    s->doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int fds[2] = {memfd, s->doorbell};
    send_welcome(sock, 0, slots, s->shm_size, 1000 + sc, WVDS_TRANSPORT_MAGIC, fds, 2);
    close(memfd);
    return s;
}

static void end_session(session *s)
{
    munmap(s->shm, s->shm_size);
    close(s->doorbell);
    close(s->sock);
    pthread_mutex_destroy(&s->canned_lock);
    free(s);
}

/* A handshake that goes wrong on purpose. */
static void bad_handshake(enum scenario sc, int sock)
{
    uint32_t size = wvds_srv_shm_size(1);
    int memfd = -1;
    switch (sc) {
    case SC_REFUSED:
        send_welcome(sock, WVDS_PERMISSION_DENIED, 0, 0, 0, WVDS_TRANSPORT_MAGIC, NULL, 0);
        break;
    case SC_BAD_MAGIC:
        send_welcome(sock, 0, 1, size, 1, 0x12345678, NULL, 0);
        break;
    case SC_SHORT_MEMFD:
    case SC_UNSEALED:
    case SC_BAD_CONTROL: {
        memfd = make_memfd(sc == SC_SHORT_MEMFD ? size - 4096 : size, sc != SC_UNSEALED);
        void *shm = mmap(NULL, sc == SC_SHORT_MEMFD ? size - 4096 : size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (sc != SC_SHORT_MEMFD)
            wvds_srv_init_control(shm, 1, sc == SC_BAD_CONTROL ? 999 : 1);
        munmap(shm, sc == SC_SHORT_MEMFD ? size - 4096 : size);
        int db = eventfd(0, EFD_NONBLOCK);
        int fds[2] = {memfd, db};
        send_welcome(sock, 0, 1, size, 1, WVDS_TRANSPORT_MAGIC, fds, 2);
        close(db);
        close(memfd);
        break;
    }
    case SC_HANGUP:
        break;
    case SC_SILENT: { /* stay silent until the client gives up and hangs up */
        char b;
        while (recv(sock, &b, 1, 0) > 0) {
        }
        break;
    }
    default:
        break;
    }
    close(sock);
}

int run_service(int listen_fd, int canned_fd, pid_t child)
{
    session *sessions[SC_COUNT] = {0};
    pthread_t threads[SC_COUNT];
    for (int sc = 0; sc < SC_COUNT; sc++) {
        int sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        CHECK(sock >= 0, "accept scenario %d: %d", sc, errno);
        if (sock < 0)
            return 1;
        struct ucred cred;
        socklen_t cl = sizeof cred;
        CHECK(getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.pid == child,
              "peer credentials name the child");
        if (sc == SC_REFUSED_UNREAD) { /* wait until HELLO is queued, then refuse without reading it */
            struct pollfd p = {.fd = sock, .events = POLLIN};
            CHECK(poll(&p, 1, 5000) == 1, "HELLO arrives");
            send_welcome(sock, WVDS_QUOTA_EXCEEDED, 0, 0, 0, WVDS_TRANSPORT_MAGIC, NULL, 0);
            close(sock);
            continue;
        }
        int requested = read_hello(sock);
        if (sc < SC_MAIN) {
            bad_handshake(sc, sock);
            continue;
        }
        uint16_t want = sc == SC_MAIN ? 4 : sc == SC_ONE_SLOT ? 1 : 2;
        CHECK(requested == want, "scenario %d requested %d slots", sc, requested);
        sessions[sc] = start_session(sc, sock, (uint16_t)requested, canned_fd);
        pthread_create(&threads[sc], NULL, serve, sessions[sc]);
    }
    for (int sc = SC_MAIN; sc < SC_COUNT; sc++) {
        pthread_join(threads[sc], NULL);
        session *s = sessions[sc];
        /* Every session ends with the client gone: closed (main), process exit (one slot) or
         * after our own hangup (service dies). */
        CHECK(s->end == -2, "scenario %d ended with %d, want -2 (peer gone)", sc, s->end);
        if (sc == SC_MAIN)
            CHECK(atomic_load(&s->max_in_flight) >= 2, "requests ran concurrently (max %d)",
                  atomic_load(&s->max_in_flight));
        if (sc == SC_SERVICE_DIES)
            CHECK(atomic_load(&s->hung_up), "the client asked the service to die");
        end_session(s);
    }
    return 0;
}
