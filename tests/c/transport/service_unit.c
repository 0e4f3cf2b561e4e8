/* The service side on its own, in one process: sizes, control block, argument checks,
 * timeouts, doorbell wake-up, peer hangup, round-robin order, the one read of req_len,
 * and wvds_srv_complete's refusals. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "wvds_srv.h"

static uint8_t out[WVDS_SLOT_REQ_AREA];

/* Plays a client: frame in the request area, req_len, store-release SUBMITTED. */
static void submit(void *shm, unsigned slot, uint32_t req_len, uint8_t marker)
{
    wvds_slot_header *h = wvds_slot_at(shm, slot);
    memset(wvds_slot_request(shm, slot), marker, 16);
    atomic_store_explicit(&h->req_len, req_len, memory_order_relaxed);
    atomic_store_explicit(&h->state, WVDS_SLOT_SUBMITTED, memory_order_release);
}

typedef struct late_submit {
    void *shm;
    int doorbell;
} late_submit;

static void *submit_later(void *arg)
{
    late_submit *ls = arg;
    usleep(30 * 1000);
    submit(ls->shm, 2, 16, 0x5A);
    uint64_t one = 1;
    CHECK(write(ls->doorbell, &one, 8) == 8, "ring");
    return NULL;
}

int run_service_unit_tests(void)
{
    CHECK(wvds_srv_shm_size(0) == 0, "0 slots");
    CHECK(wvds_srv_shm_size(1) == 4096 + 135168, "1 slot");
    CHECK(wvds_srv_shm_size(1024) == 4096 + 1024u * 135168, "1024 slots");
    CHECK(wvds_srv_shm_size(1025) == 0, "1025 slots");

    uint16_t slots = 3;
    uint32_t size = wvds_srv_shm_size(slots);
    void *shm = malloc(size);
    memset(shm, 0xEE, size);
    CHECK(wvds_srv_init_control(NULL, slots, 7) == -1, "NULL shm");
    CHECK(wvds_srv_init_control(shm, 0, 7) == -1, "0 slots");
    CHECK(wvds_srv_init_control(shm, slots, 7) == 0, "init");
    CHECK(wvds_shm_check_control(shm, slots, 7) == 0, "control block as documented");
    CHECK(wvds_shm_check_control(shm, slots, 8) != 0, "client id is checked");
    const uint8_t *c = shm;
    CHECK(c[0] == 'W' && c[1] == 'V' && c[2] == 'D' && c[3] == 'S', "magic spells WVDS");
    CHECK(atomic_load(&wvds_slot_at(shm, 2)->state) == WVDS_SLOT_FREE && ((uint8_t *)shm)[size - 1] == 0,
          "slots zeroed");

    uint32_t len;
    errno = 0;
    CHECK(wvds_srv_next(shm, slots, -1, -1, 0, 0, out, WVDS_SLOT_REQ_AREA - 1, &len) == -3 && errno == EINVAL,
          "out_cap below REQ_AREA");
    CHECK(wvds_srv_next(shm, 0, -1, -1, 0, 0, out, sizeof out, &len) == -3, "0 slots");

    int64_t t0 = wvds_now_ns();
    CHECK(wvds_srv_next(shm, slots, -1, -1, 5, 30, out, sizeof out, &len) == -1, "idle: timeout");
    CHECK(wvds_now_ns() - t0 >= 25 * 1000000, "timeout waited");

    /* req_len is honoured up to the area, read once, and clamped beyond it. */
    submit(shm, 1, 0xFFFFFFFFu, 0x11);
    CHECK(wvds_srv_next(shm, slots, -1, -1, 0, 0, out, sizeof out, &len) == 1 && len == WVDS_SLOT_REQ_AREA,
          "oversized req_len clamped to %u (got %u)", WVDS_SLOT_REQ_AREA, len);
    CHECK(atomic_load(&wvds_slot_at(shm, 1)->state) == WVDS_SLOT_BUSY, "taken slot is BUSY");

    /* Completion: refusals, then the real thing. */
    uint8_t resp[16] = {WVDS_RESPONSE_MAGIC, 1};
    CHECK(wvds_srv_complete(shm, slots, 3, resp, 8) == -1, "slot out of range");
    CHECK(wvds_srv_complete(shm, slots, -1, resp, 8) == -1, "negative slot");
    CHECK(wvds_srv_complete(shm, slots, 1, resp, WVDS_SLOT_RESP_AREA + 1) == -1, "response too long");
    CHECK(wvds_srv_complete(shm, slots, 0, resp, 8) == -1, "slot 0 is not BUSY");
    CHECK(wvds_srv_complete(shm, slots, 1, resp, 8) == 0, "complete");
    CHECK(atomic_load(&wvds_slot_at(shm, 1)->state) == WVDS_SLOT_DONE &&
              atomic_load(&wvds_slot_at(shm, 1)->resp_len) == 8,
          "DONE with resp_len");
    CHECK(wvds_srv_complete(shm, slots, 1, resp, 8) == -1, "a second completion is refused");
    atomic_store(&wvds_slot_at(shm, 1)->state, WVDS_SLOT_FREE);

    /* Round robin: a slot resubmitted right after being served waits behind the others. */
    CHECK(wvds_srv_pending(shm, slots) == 0 && wvds_srv_pending(NULL, slots) == -1 &&
              wvds_srv_pending(shm, 0) == -1,
          "nothing pending; argument checks");
    submit(shm, 0, 16, 0x30);
    submit(shm, 1, 16, 0x31);
    CHECK(wvds_srv_pending(shm, slots) == 2, "two submitted slots pending");
    int first = wvds_srv_next(shm, slots, -1, -1, 0, 0, out, sizeof out, &len);
    CHECK(wvds_srv_pending(shm, slots) == 1, "a taken slot is no longer pending");
    CHECK(first == 0 || first == 1, "a submitted slot is served (%d)", first);
    if (first < 0)
        return 1;
    submit(shm, (unsigned)first, 16, 0x32); /* resubmit what was just served */
    int second = wvds_srv_next(shm, slots, -1, -1, 0, 0, out, sizeof out, &len);
    CHECK(first >= 0 && second >= 0 && second != first, "served %d then %d: round robin", first, second);
    int third = wvds_srv_next(shm, slots, -1, -1, 0, 0, out, sizeof out, &len);
    CHECK(third == first, "the resubmitted slot comes next (%d)", third);
    for (unsigned i = 0; i < slots; i++)
        atomic_store(&wvds_slot_at(shm, i)->state, WVDS_SLOT_FREE);

    /* The doorbell wakes a service asleep in poll(). */
    int doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    late_submit ls = {shm, doorbell};
    pthread_t t;
    pthread_create(&t, NULL, submit_later, &ls);
    t0 = wvds_now_ns();
    int slot = wvds_srv_next(shm, slots, doorbell, -1, 0, 5000, out, sizeof out, &len);
    int64_t waited = wvds_now_ns() - t0;
    pthread_join(t, NULL);
    CHECK(slot == 2 && len == 16 && out[0] == 0x5A, "woken for slot 2 (got %d)", slot);
    CHECK(waited < 2000 * 1000000LL, "woken by the doorbell, not the timeout (%lld ms)", (long long)(waited / 1000000));
    uint64_t count;
    CHECK(read(doorbell, &count, 8) == -1 && errno == EAGAIN, "doorbell drained");
    atomic_store(&wvds_slot_at(shm, 2)->state, WVDS_SLOT_FREE);

    /* Stray bytes on the socket are discarded (no busy loop, no error); a hangup is -2. */
    int sp[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0, "socketpair");
    CHECK(send(sp[1], "x", 1, 0) == 1, "stray byte");
    CHECK(wvds_srv_next(shm, slots, doorbell, sp[0], 0, 50, out, sizeof out, &len) == -1, "stray data: timeout");
    close(sp[1]);
    CHECK(wvds_srv_next(shm, slots, doorbell, sp[0], 0, 5000, out, sizeof out, &len) == -2, "hangup: -2");
    close(sp[0]);
    close(doorbell);
    free(shm);
    return 0;
}
