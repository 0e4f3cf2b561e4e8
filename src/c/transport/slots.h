/* The shared-memory slot layout of docs/transport.md, which both libraries use: the client
 * half lives in the OEM library (src/c/lib/slots_client.c), the service half in the service
 * library (src/c/service/slots_service.c). Internal: nothing here is exported.
 *
 * Memory ordering: the writer of a frame stores the frame and its length first, then the
 * slot state with release semantics; the reader loads the state with acquire semantics
 * before it touches the frame. The state word is also the futex word the client sleeps on
 * (a shared, not process-private, futex).
 */
#ifndef WVDS_SLOTS_H
#define WVDS_SLOTS_H

#include <stdatomic.h>
#include <stdint.h>

#include "wvds_crypto.h"

/* BEGIN GENERATED: python -m wvds.native.cheader */
/* The transport layout of docs/transport.md, from src/wvds/native/spec.py. Do not edit by hand. */
#define WVDS_TRANSPORT_MAGIC 1396987479u    /* "WVDS" little-endian, first word of HELLO, WELCOME and the control block */
#define WVDS_TRANSPORT_VERSION 1u
#define WVDS_HELLO_SIZE 16u
#define WVDS_WELCOME_SIZE 32u
#define WVDS_SHM_LAYOUT_VERSION 1u
#define WVDS_SHM_CONTROL_SIZE 64u
#define WVDS_SHM_SLOTS_OFFSET 4096u         /* the first slot starts on the second page */
#define WVDS_SHM_MAX_SLOTS 1024u            /* keeps the mapping size far inside a u32 */
#define WVDS_SLOT_HEADER_SIZE 64u
#define WVDS_SLOT_REQ_OFFSET 64u
#define WVDS_SLOT_REQ_AREA 65544u           /* a request frame: header + largest payload */
#define WVDS_SLOT_RESP_OFFSET 65608u
#define WVDS_SLOT_RESP_AREA 65800u          /* a response frame: header + largest response payload */
#define WVDS_SLOT_SIZE 135168u              /* request + response areas rounded up to pages */
enum wvds_slot_state { WVDS_SLOT_FREE = 0, WVDS_SLOT_SUBMITTED = 1, WVDS_SLOT_BUSY = 2, WVDS_SLOT_DONE = 3 };

/* Control block at offset 0 (written once by the service; the service never reads it back). */
typedef struct wvds_shm_control {
    uint32_t magic;
    uint16_t layout_version;
    uint16_t slot_count;
    uint32_t slot_size;
    uint32_t req_offset;
    uint32_t req_area;
    uint32_t resp_offset;
    uint32_t resp_area;
    uint32_t client_id;
    uint8_t reserved[32];               /* for later layout versions */
} wvds_shm_control;

/* First 64 bytes of each slot. */
typedef struct wvds_slot_header {
    _Atomic uint32_t state;             /* enum wvds_slot_state; futex word */
    _Atomic uint32_t req_len;           /* bytes of the request frame */
    _Atomic uint32_t resp_len;          /* bytes of the response frame */
    _Atomic uint32_t seq;               /* client cookie, echoed unchanged */
    uint8_t reserved[48];
} wvds_slot_header;
/* END GENERATED */

static inline wvds_slot_header *wvds_slot_at(void *shm, unsigned slot)
{
    return (wvds_slot_header *)((uint8_t *)shm + WVDS_SHM_SLOTS_OFFSET + (size_t)slot * WVDS_SLOT_SIZE);
}

static inline uint8_t *wvds_slot_request(void *shm, unsigned slot)
{
    return (uint8_t *)wvds_slot_at(shm, slot) + WVDS_SLOT_REQ_OFFSET;
}

static inline uint8_t *wvds_slot_response(void *shm, unsigned slot)
{
    return (uint8_t *)wvds_slot_at(shm, slot) + WVDS_SLOT_RESP_OFFSET;
}

static inline int wvds_shm_valid_slot_count(uint16_t slot_count)
{
    return slot_count > 0 && slot_count <= WVDS_SHM_MAX_SLOTS;
}

/* Bytes of the mapping for slot_count slots; 0 for a bad count. */
static inline uint32_t wvds_shm_size(uint16_t slot_count)
{
    return wvds_shm_valid_slot_count(slot_count) ? WVDS_SHM_SLOTS_OFFSET + (uint32_t)slot_count * WVDS_SLOT_SIZE : 0;
}

static inline void wvds_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* The control block a service writes for this layout. */
wvds_shm_control wvds_shm_expected_control(uint16_t slot_count, uint32_t client_id);
/* Checks the control block a service wrote: 0 if it describes exactly this layout. */
int wvds_shm_check_control(const void *shm, uint16_t slot_count, uint32_t client_id);

/* Shared futexes on a slot's state word (no FUTEX_PRIVATE_FLAG: two processes map it). */
int wvds_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
void wvds_futex_wake_all(_Atomic uint32_t *word);

/* Monotonic clock in nanoseconds; WVDS_FOREVER is a deadline that never passes. */
#define WVDS_FOREVER INT64_MAX
int64_t wvds_now_ns(void);
int64_t wvds_deadline_after_ms(int32_t timeout_ms); /* negative: WVDS_FOREVER */

#endif
