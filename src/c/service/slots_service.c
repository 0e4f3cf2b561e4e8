/* The service half of the slot protocol (docs/transport.md): take a submitted request, copy it
 * out, complete it. Knows nothing of what answers requests: the fast path plugs in through
 * wvds_serve_hooks (slots_service.h). */
#define _GNU_SOURCE
#include "slots_service.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wvds_srv.h"

uint32_t wvds_srv_shm_size(uint16_t slot_count)
{
    return wvds_shm_size(slot_count);
}

int wvds_srv_init_control(void *shm, uint16_t slot_count, uint32_t client_id)
{
    if (!shm || !wvds_shm_valid_slot_count(slot_count))
        return -1;
    memset(shm, 0, wvds_srv_shm_size(slot_count));
    wvds_shm_control c = wvds_shm_expected_control(slot_count, client_id);
    memcpy(shm, &c, sizeof c);
    return 0;
}

/* Where this service thread starts its next scan, so that busy low slots cannot starve high ones. */
static _Thread_local unsigned scan_cursor;
/* Requests this thread's hooks answered: while it keeps answering, the thread keeps spinning. */
static _Thread_local unsigned long hooks_answered;

/* One pass over the slots: take the first SUBMITTED one and copy its frame out; requests the
 * hooks answer themselves are skipped over (the pass goes on after them), and so are slots
 * the service still holds (taken earlier, not yet answered), whatever their state word says. */
static int take_submitted(void *shm, uint16_t slot_count, const wvds_serve_hooks *hooks, uint8_t *out,
                          uint32_t *out_len)
{
    for (unsigned k = 0; k < slot_count; k++) {
        unsigned i = (scan_cursor + k) % slot_count;
        wvds_slot_header *h = wvds_slot_at(shm, i);
        uint32_t expected = WVDS_SLOT_SUBMITTED;
        if ((hooks && hooks->held(hooks->ctx, i)) ||
            atomic_load_explicit(&h->state, memory_order_relaxed) != WVDS_SLOT_SUBMITTED ||
            !atomic_compare_exchange_strong_explicit(&h->state, &expected, WVDS_SLOT_BUSY, memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        uint32_t len = atomic_load_explicit(&h->req_len, memory_order_relaxed); /* read once */
        if (hooks && hooks->answer(hooks->ctx, shm, i, len)) {
            hooks_answered++;
            continue;
        }
        if (len > WVDS_SLOT_REQ_AREA)
            len = WVDS_SLOT_REQ_AREA;
        memcpy(out, wvds_slot_request(shm, i), len);
        *out_len = len;
        if (hooks)
            hooks->hold(hooks->ctx, i);
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
    return wvds_slots_serve(shm, slot_count, doorbell_fd, sock_fd, spin_us, timeout_ms, NULL, out, out_cap, out_len);
}

int wvds_slots_serve(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us, int timeout_ms,
                     const wvds_serve_hooks *hooks, uint8_t *out, uint32_t out_cap, uint32_t *out_len)
{
    if (!shm || !wvds_shm_valid_slot_count(slot_count) || !out || !out_len || out_cap < WVDS_SLOT_REQ_AREA) {
        errno = EINVAL;
        return -3;
    }
    int64_t deadline = timeout_ms < 0 ? WVDS_FOREVER : wvds_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int slot = take_submitted(shm, slot_count, hooks, out, out_len);
        if (slot >= 0)
            return slot;
        if (spin_us) {
            int64_t spin_end = wvds_now_ns() + (int64_t)spin_us * 1000;
            unsigned long answered = hooks_answered;
            for (unsigned i = 1;; i++) {
                wvds_cpu_relax();
                slot = take_submitted(shm, slot_count, hooks, out, out_len);
                if (slot >= 0)
                    return slot;
                if (answered != hooks_answered) {
                    answered = hooks_answered;
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
            slot = take_submitted(shm, slot_count, hooks, out, out_len);
            return slot >= 0 ? slot : -1;
        }
    }
}

int wvds_srv_pending(void *shm, uint16_t slot_count)
{
    if (!shm || !wvds_shm_valid_slot_count(slot_count))
        return -1;
    int n = 0;
    for (unsigned i = 0; i < slot_count; i++)
        n += atomic_load_explicit(&wvds_slot_at(shm, i)->state, memory_order_relaxed) == WVDS_SLOT_SUBMITTED;
    return n;
}

int wvds_srv_complete(void *shm, uint16_t slot_count, int slot, const uint8_t *resp, uint32_t resp_len)
{
    if (!shm || !wvds_shm_valid_slot_count(slot_count) || slot < 0 || slot >= slot_count || resp_len > WVDS_SLOT_RESP_AREA ||
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
    wvds_futex_wake_all(&h->state);
}
