/* The slot protocol of docs/transport.md: client side (static to the library) and
 * service side (wvds_srv_*, exported for crypto_service). See shm_slots.h for the
 * memory-ordering rules both sides follow. */
#define _GNU_SOURCE
#include "shm_slots.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wvds_srv.h"
#include "wvds_srv_fast.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the shared memory layout is little-endian; only little-endian targets are supported"
#endif

_Static_assert(sizeof(wvds_shm_control) == WVDS_SHM_CONTROL_SIZE, "control block is 64 bytes");
_Static_assert(sizeof(wvds_slot_header) == WVDS_SLOT_HEADER_SIZE, "slot header is 64 bytes");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "shared-memory atomics must be lock-free");
_Static_assert(WVDS_SLOT_REQ_AREA == 65544 && WVDS_SLOT_RESP_OFFSET == 65608 && WVDS_SLOT_RESP_AREA == 65800,
               "layout of docs/transport.md");
_Static_assert(WVDS_SLOT_RESP_OFFSET + WVDS_SLOT_RESP_AREA <= WVDS_SLOT_SIZE && WVDS_SLOT_SIZE % 4096 == 0,
               "slot size");
_Static_assert(WVDS_SHM_SLOTS_OFFSET + (uint64_t)WVDS_SHM_MAX_SLOTS * WVDS_SLOT_SIZE <= UINT32_MAX,
               "mapping size fits a u32");

/* How often a sleeping client looks whether the service socket hung up. */
#define WATCH_INTERVAL_NS (50 * 1000 * 1000)
/* Abandoned slots turn DONE without anyone signalling the pool: look again this often. */
#define ABANDONED_RECHECK_NS (1 * 1000 * 1000)

/* --- shared helpers ------------------------------------------------------------- */

int64_t wvds_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t wvds_deadline_after_ms(int32_t timeout_ms)
{
    if (timeout_ms < 0)
        return WVDS_FOREVER;
    return wvds_now_ns() + (int64_t)timeout_ms * 1000000;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Shared futexes (no FUTEX_PRIVATE_FLAG): the word lives in memory mapped by two processes. */
static int futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    return (int)syscall(SYS_futex, (void *)word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (void *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static int valid_slot_count(uint16_t slot_count)
{
    return slot_count > 0 && slot_count <= WVDS_SHM_MAX_SLOTS;
}

static wvds_shm_control expected_control(uint16_t slot_count, uint32_t client_id)
{
    wvds_shm_control c;
    memset(&c, 0, sizeof c);
    c.magic = WVDS_TRANSPORT_MAGIC;
    c.layout_version = WVDS_SHM_LAYOUT_VERSION;
    c.slot_count = slot_count;
    c.slot_size = WVDS_SLOT_SIZE;
    c.req_offset = WVDS_SLOT_REQ_OFFSET;
    c.req_area = WVDS_SLOT_REQ_AREA;
    c.resp_offset = WVDS_SLOT_RESP_OFFSET;
    c.resp_area = WVDS_SLOT_RESP_AREA;
    c.client_id = client_id;
    return c;
}

int wvds_shm_check_control(const void *shm, uint16_t slot_count, uint32_t client_id)
{
    wvds_shm_control seen, want = expected_control(slot_count, client_id);
    memcpy(&seen, shm, sizeof seen);
    /* Compare the defined fields only: the reserved bytes are for later layout versions. */
    return memcmp(&seen, &want, offsetof(wvds_shm_control, reserved)) == 0 ? 0 : -1;
}

/* --- client side ---------------------------------------------------------------- */

/* Local ownership of each slot; the service never sees this. */
enum { OWNER_NONE = 0, OWNER_CLAIMED = 1, OWNER_ABANDONED = 2 };

int wvds_slot_client_init(wvds_slot_client *sc, void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd,
                          uint32_t spin_us)
{
    memset(sc, 0, sizeof *sc);
    sc->shm = shm;
    sc->slot_count = slot_count;
    sc->doorbell_fd = doorbell_fd;
    sc->sock_fd = sock_fd;
    sc->spin_us = spin_us;
    atomic_init(&sc->disconnected, false);
    atomic_init(&sc->next_seq, 1);
    sc->owner = calloc(slot_count, 1);
    if (!sc->owner)
        return -1;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int err = pthread_cond_init(&sc->released, &attr);
    pthread_condattr_destroy(&attr);
    if (err || pthread_mutex_init(&sc->lock, NULL)) {
        free(sc->owner);
        sc->owner = NULL;
        errno = err ? err : ENOMEM;
        return -1;
    }
    return 0;
}

void wvds_slot_client_destroy(wvds_slot_client *sc)
{
    if (!sc->owner)
        return;
    pthread_mutex_destroy(&sc->lock);
    pthread_cond_destroy(&sc->released);
    free(sc->owner);
    sc->owner = NULL;
}

static void mark_disconnected(wvds_slot_client *sc)
{
    atomic_store(&sc->disconnected, true);
    pthread_mutex_lock(&sc->lock);
    pthread_cond_broadcast(&sc->released); /* waiting claimers fail fast */
    pthread_mutex_unlock(&sc->lock);
}

/* With sc->lock held: a slot that is ours to use, or -1. */
static int take_local_slot(wvds_slot_client *sc)
{
    for (unsigned i = 0; i < sc->slot_count; i++) {
        if (sc->owner[i] == OWNER_NONE) {
            sc->owner[i] = OWNER_CLAIMED;
            return (int)i;
        }
    }
    if (!sc->abandoned)
        return -1;
    for (unsigned i = 0; i < sc->slot_count; i++) {
        wvds_slot_header *h = wvds_slot_at(sc->shm, i);
        if (sc->owner[i] == OWNER_ABANDONED && atomic_load_explicit(&h->state, memory_order_acquire) == WVDS_SLOT_DONE) {
            atomic_store_explicit(&h->state, WVDS_SLOT_FREE, memory_order_relaxed);
            sc->owner[i] = OWNER_CLAIMED;
            sc->abandoned--;
            return (int)i;
        }
    }
    return -1;
}

static struct timespec abs_timespec(int64_t ns)
{
    return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

int wvds_slot_claim(wvds_slot_client *sc, int64_t deadline_ns)
{
    int slot;
    pthread_mutex_lock(&sc->lock);
    for (;;) {
        if (atomic_load(&sc->disconnected)) {
            slot = WVDS_SLOT_ERR_DISCONNECTED;
            break;
        }
        slot = take_local_slot(sc);
        if (slot >= 0)
            break;
        int64_t now = wvds_now_ns();
        if (now >= deadline_ns) {
            slot = WVDS_SLOT_ERR_TIMEOUT;
            break;
        }
        int64_t wake = deadline_ns;
        if (sc->abandoned && deadline_ns - now > ABANDONED_RECHECK_NS)
            wake = now + ABANDONED_RECHECK_NS;
        if (wake == WVDS_FOREVER) {
            pthread_cond_wait(&sc->released, &sc->lock);
        } else {
            struct timespec ts = abs_timespec(wake);
            pthread_cond_timedwait(&sc->released, &sc->lock, &ts);
        }
    }
    pthread_mutex_unlock(&sc->lock);
    return slot;
}

int wvds_slot_submit(wvds_slot_client *sc, int slot, uint32_t req_len)
{
    wvds_slot_header *h = wvds_slot_at(sc->shm, (unsigned)slot);
    atomic_store_explicit(&h->req_len, req_len, memory_order_relaxed);
    atomic_store_explicit(&h->seq, atomic_fetch_add(&sc->next_seq, 1), memory_order_relaxed);
    atomic_store_explicit(&h->state, WVDS_SLOT_SUBMITTED, memory_order_release);
    /* Always ring: the service may be asleep in poll(). EAGAIN only means the counter is
     * saturated, i.e. the doorbell is already ringing. */
    uint64_t one = 1;
    if (write(sc->doorbell_fd, &one, sizeof one) != (ssize_t)sizeof one && errno != EAGAIN)
        return WVDS_SLOT_ERR_SYSTEM;
    return 0;
}

/* Non-blocking look at the socket: has the service hung up? */
static int service_gone(wvds_slot_client *sc)
{
    struct pollfd p = {.fd = sc->sock_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    return (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0;
}

int wvds_slot_wait(wvds_slot_client *sc, int slot, int64_t deadline_ns)
{
    _Atomic uint32_t *state = &wvds_slot_at(sc->shm, (unsigned)slot)->state;
    if (sc->spin_us) {
        int64_t spin_end = wvds_now_ns() + (int64_t)sc->spin_us * 1000;
        if (spin_end > deadline_ns)
            spin_end = deadline_ns;
        for (unsigned i = 1;; i++) {
            if (atomic_load_explicit(state, memory_order_acquire) == WVDS_SLOT_DONE)
                return 0;
            cpu_relax();
            if (i % 32 == 0 && wvds_now_ns() >= spin_end)
                break;
        }
    }
    for (;;) {
        uint32_t seen = atomic_load_explicit(state, memory_order_acquire);
        if (seen == WVDS_SLOT_DONE)
            return 0;
        if (atomic_load(&sc->disconnected))
            return WVDS_SLOT_ERR_DISCONNECTED;
        int64_t now = wvds_now_ns();
        if (now >= deadline_ns)
            return WVDS_SLOT_ERR_TIMEOUT;
        int64_t nap = deadline_ns - now < WATCH_INTERVAL_NS ? deadline_ns - now : WATCH_INTERVAL_NS;
        if (futex_wait(state, seen, nap) == 0)
            continue;
        if (errno == ETIMEDOUT) {
            if (service_gone(sc)) {
                mark_disconnected(sc);
                return WVDS_SLOT_ERR_DISCONNECTED;
            }
        } else if (errno != EAGAIN && errno != EINTR) {
            return WVDS_SLOT_ERR_SYSTEM;
        }
    }
}

const uint8_t *wvds_slot_response_frame(wvds_slot_client *sc, int slot, uint32_t *len)
{
    uint32_t n = atomic_load_explicit(&wvds_slot_at(sc->shm, (unsigned)slot)->resp_len, memory_order_relaxed);
    if (n > WVDS_SLOT_RESP_AREA)
        return NULL;
    *len = n;
    return wvds_slot_response(sc->shm, (unsigned)slot);
}

void wvds_slot_release(wvds_slot_client *sc, int slot)
{
    atomic_store_explicit(&wvds_slot_at(sc->shm, (unsigned)slot)->state, WVDS_SLOT_FREE, memory_order_release);
    pthread_mutex_lock(&sc->lock);
    sc->owner[slot] = OWNER_NONE;
    pthread_cond_signal(&sc->released);
    pthread_mutex_unlock(&sc->lock);
}

void wvds_slot_abandon(wvds_slot_client *sc, int slot)
{
    pthread_mutex_lock(&sc->lock);
    sc->owner[slot] = OWNER_ABANDONED;
    sc->abandoned++;
    pthread_mutex_unlock(&sc->lock);
}

/* --- service side --------------------------------------------------------------- */

uint32_t wvds_srv_shm_size(uint16_t slot_count)
{
    if (!valid_slot_count(slot_count))
        return 0;
    return WVDS_SHM_SLOTS_OFFSET + (uint32_t)slot_count * WVDS_SLOT_SIZE;
}

int wvds_srv_init_control(void *shm, uint16_t slot_count, uint32_t client_id)
{
    if (!shm || !valid_slot_count(slot_count))
        return -1;
    memset(shm, 0, wvds_srv_shm_size(slot_count));
    wvds_shm_control c = expected_control(slot_count, client_id);
    memcpy(shm, &c, sizeof c);
    return 0;
}

/* Where this service thread starts its next scan, so that busy low slots cannot starve high ones. */
static _Thread_local unsigned scan_cursor;
/* Requests this thread's fast path answered: while it keeps answering, the thread keeps spinning. */
static _Thread_local unsigned long fast_answered;

/* One pass over the slots: take the first SUBMITTED one and copy its frame out; requests the
 * fast path answers itself are skipped over (the pass goes on after them), and so are slots
 * the service still holds (taken earlier, not yet answered), whatever their state word says. */
static int take_submitted(void *shm, uint16_t slot_count, wvds_srv_fast *fast, uint8_t *out, uint32_t *out_len)
{
    for (unsigned k = 0; k < slot_count; k++) {
        unsigned i = (scan_cursor + k) % slot_count;
        wvds_slot_header *h = wvds_slot_at(shm, i);
        uint32_t expected = WVDS_SLOT_SUBMITTED;
        if ((fast && wvds_srv_fast_held(fast, i)) ||
            atomic_load_explicit(&h->state, memory_order_relaxed) != WVDS_SLOT_SUBMITTED ||
            !atomic_compare_exchange_strong_explicit(&h->state, &expected, WVDS_SLOT_BUSY, memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        uint32_t len = atomic_load_explicit(&h->req_len, memory_order_relaxed); /* read once */
        if (fast && wvds_srv_fast_answer(fast, shm, i, len)) {
            fast_answered++;
            continue;
        }
        if (len > WVDS_SLOT_REQ_AREA)
            len = WVDS_SLOT_REQ_AREA;
        memcpy(out, wvds_slot_request(shm, i), len);
        *out_len = len;
        if (fast)
            wvds_srv_fast_hold(fast, i);
        scan_cursor = i + 1;
        return (int)i;
    }
    return -1;
}

static void drain_doorbell(int fd)
{
    uint64_t count;
    while (read(fd, &count, sizeof count) == (ssize_t)sizeof count) {
    }
}

/* poll() saw the client socket readable or in error: -2 if the client is gone, 0 otherwise.
 * A client sends nothing after HELLO; stray bytes are discarded so poll() does not spin. */
static int check_client_socket(int fd, short revents)
{
    if (revents & (POLLHUP | POLLRDHUP | POLLERR))
        return -2;
    if (revents & POLLIN) {
        char junk[64];
        ssize_t n = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
        if (n == 0)
            return -2;
    }
    return 0;
}

int wvds_srv_next(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us, int timeout_ms,
                  uint8_t *out, uint32_t out_cap, uint32_t *out_len)
{
    return wvds_srv_serve(shm, slot_count, doorbell_fd, sock_fd, spin_us, timeout_ms, NULL, out, out_cap, out_len);
}

int wvds_srv_serve(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us, int timeout_ms,
                   wvds_srv_fast *fast, uint8_t *out, uint32_t out_cap, uint32_t *out_len)
{
    if (!shm || !valid_slot_count(slot_count) || !out || !out_len || out_cap < WVDS_SLOT_REQ_AREA) {
        errno = EINVAL;
        return -3;
    }
    int64_t deadline = timeout_ms < 0 ? WVDS_FOREVER : wvds_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int slot = take_submitted(shm, slot_count, fast, out, out_len);
        if (slot >= 0)
            return slot;
        if (spin_us) {
            int64_t spin_end = wvds_now_ns() + (int64_t)spin_us * 1000;
            unsigned long answered = fast_answered;
            for (unsigned i = 1;; i++) {
                cpu_relax();
                slot = take_submitted(shm, slot_count, fast, out, out_len);
                if (slot >= 0)
                    return slot;
                if (answered != fast_answered) {
                    answered = fast_answered;
                    spin_end = wvds_now_ns() + (int64_t)spin_us * 1000;
                } else if (i % 16 == 0 && wvds_now_ns() >= spin_end) {
                    break;
                }
            }
        }
        int wait_ms = -1;
        if (deadline != WVDS_FOREVER) {
            int64_t left = deadline - wvds_now_ns();
            if (left <= 0)
                return -1;
            wait_ms = (int)((left + 999999) / 1000000);
        }
        struct pollfd p[2] = {
            {.fd = doorbell_fd, .events = POLLIN},
            {.fd = sock_fd, .events = POLLIN | POLLRDHUP},
        };
        int r = poll(p, 2, wait_ms);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -3;
        }
        if ((p[0].revents | p[1].revents) & POLLNVAL) {
            errno = EBADF;
            return -3;
        }
        if (p[1].revents && check_client_socket(sock_fd, p[1].revents) == -2)
            return -2;
        if (p[0].revents & POLLIN)
            drain_doorbell(doorbell_fd); /* before the rescan, so a later ring is never lost */
        if (r == 0 && deadline != WVDS_FOREVER && wvds_now_ns() >= deadline) {
            slot = take_submitted(shm, slot_count, fast, out, out_len);
            return slot >= 0 ? slot : -1;
        }
    }
}

int wvds_srv_pending(void *shm, uint16_t slot_count)
{
    if (!shm || !valid_slot_count(slot_count))
        return -1;
    int n = 0;
    for (unsigned i = 0; i < slot_count; i++)
        n += atomic_load_explicit(&wvds_slot_at(shm, i)->state, memory_order_relaxed) == WVDS_SLOT_SUBMITTED;
    return n;
}

int wvds_srv_complete(void *shm, uint16_t slot_count, int slot, const uint8_t *resp, uint32_t resp_len)
{
    if (!shm || !valid_slot_count(slot_count) || slot < 0 || slot >= slot_count || resp_len > WVDS_SLOT_RESP_AREA ||
        (resp_len && !resp))
        return -1;
    wvds_slot_header *h = wvds_slot_at(shm, (unsigned)slot);
    if (atomic_load_explicit(&h->state, memory_order_relaxed) != WVDS_SLOT_BUSY)
        return -1;
    memcpy(wvds_slot_response(shm, (unsigned)slot), resp, resp_len);
    wvds_slot_publish(shm, (unsigned)slot, resp_len);
    return 0;
}

void wvds_slot_publish(void *shm, unsigned slot, uint32_t resp_len)
{
    wvds_slot_header *h = wvds_slot_at(shm, slot);
    atomic_store_explicit(&h->resp_len, resp_len, memory_order_relaxed);
    atomic_store_explicit(&h->state, WVDS_SLOT_DONE, memory_order_release);
    futex_wake_all(&h->state);
}
