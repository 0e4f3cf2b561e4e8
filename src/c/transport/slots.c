/* What both halves of the slot protocol share (slots.h): the control block, futexes, the clock. */
#define _GNU_SOURCE
#include "slots.h"

#include <limits.h>
#include <linux/futex.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the shared memory layout is little-endian; only little-endian targets are supported"
#endif

_Static_assert(sizeof(wvds_shm_control) == WVDS_SHM_CONTROL_SIZE, "control block is 64 bytes");
_Static_assert(sizeof(wvds_slot_header) == WVDS_SLOT_HEADER_SIZE, "slot header is 64 bytes");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "shared-memory atomics must be lock-free");
_Static_assert(WVDS_SLOT_REQ_AREA == WVDS_HEADER_SIZE + WVDS_MAX_PAYLOAD &&
                   WVDS_SLOT_RESP_AREA == WVDS_HEADER_SIZE + WVDS_MAX_RESPONSE_PAYLOAD &&
                   WVDS_SLOT_REQ_AREA == 65544 && WVDS_SLOT_RESP_OFFSET == 65608 && WVDS_SLOT_RESP_AREA == 65800,
               "layout of docs/transport.md");
_Static_assert(WVDS_SLOT_RESP_OFFSET + WVDS_SLOT_RESP_AREA <= WVDS_SLOT_SIZE && WVDS_SLOT_SIZE % 4096 == 0,
               "slot size");
_Static_assert(WVDS_SHM_SLOTS_OFFSET + (uint64_t)WVDS_SHM_MAX_SLOTS * WVDS_SLOT_SIZE <= UINT32_MAX,
               "mapping size fits a u32");

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

int wvds_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    return (int)syscall(SYS_futex, (void *)word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

void wvds_futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (void *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

wvds_shm_control wvds_shm_expected_control(uint16_t slot_count, uint32_t client_id)
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
    wvds_shm_control seen, want = wvds_shm_expected_control(slot_count, client_id);
    memcpy(&seen, shm, sizeof seen);
    /* Compare the defined fields only: the reserved bytes are for later layout versions. */
    return memcmp(&seen, &want, offsetof(wvds_shm_control, reserved)) == 0 ? 0 : -1;
}
