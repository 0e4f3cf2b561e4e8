/* The client half of the slot protocol: see slots_client.h. */
#define _GNU_SOURCE
#include "slots_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How often a sleeping client looks whether the service socket hung up. */
#define WATCH_INTERVAL_NS (50 * 1000 * 1000)
/* Abandoned slots turn DONE without anyone signalling the pool: look again this often. */
#define ABANDONED_RECHECK_NS (1 * 1000 * 1000)

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
            wvds_cpu_relax();
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
        if (wvds_futex_wait(state, seen, nap) == 0)
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
