/* The shared-memory slot protocol of docs/transport.md, both sides.
 *
 * Client side (this header, used inside libl4re_crypto_service.so): a slot table
 * that hands each calling thread its own slot, submits a request frame, waits for
 * the answer (spin, then futex) and releases the slot. Service side: wvds_srv.h.
 *
 * Memory ordering: the writer of a frame stores the frame and its length first,
 * then the slot state with release semantics; the reader loads the state with
 * acquire semantics before it touches the frame. The state word is also the futex
 * word the client sleeps on (a shared, not process-private, futex).
 */
#ifndef WVDS_SHM_SLOTS_H
#define WVDS_SHM_SLOTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "wvds_crypto.h"

/* --- Connection handshake (Unix socket, SOCK_SEQPACKET) --------------------- */
#define WVDS_TRANSPORT_MAGIC 0x53445657u /* "WVDS" little-endian */
#define WVDS_TRANSPORT_VERSION 1u
#define WVDS_HELLO_SIZE 16u
#define WVDS_WELCOME_SIZE 32u

/* --- Shared memory layout ---------------------------------------------------- */
#define WVDS_SHM_LAYOUT_VERSION 1u
#define WVDS_SHM_CONTROL_SIZE 64u
#define WVDS_SHM_SLOTS_OFFSET 4096u
#define WVDS_SHM_MAX_SLOTS 1024u /* keeps the mapping size far inside a u32 */

#define WVDS_SLOT_HEADER_SIZE 64u
#define WVDS_SLOT_REQ_OFFSET WVDS_SLOT_HEADER_SIZE
#define WVDS_SLOT_REQ_AREA (WVDS_HEADER_SIZE + WVDS_MAX_PAYLOAD)
#define WVDS_SLOT_RESP_OFFSET (WVDS_SLOT_REQ_OFFSET + WVDS_SLOT_REQ_AREA)
#define WVDS_SLOT_RESP_AREA (WVDS_HEADER_SIZE + WVDS_MAX_RESPONSE_PAYLOAD)
#define WVDS_SLOT_SIZE 135168u /* request + response areas rounded up to pages */

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
    uint8_t reserved[32];
} wvds_shm_control;

/* First 64 bytes of each slot. */
typedef struct wvds_slot_header {
    _Atomic uint32_t state;    /* enum wvds_slot_state; futex word */
    _Atomic uint32_t req_len;  /* bytes of the request frame */
    _Atomic uint32_t resp_len; /* bytes of the response frame */
    _Atomic uint32_t seq;      /* client cookie, echoed unchanged */
    uint8_t reserved[48];
} wvds_slot_header;

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

/* Service side: stores resp_len, then DONE with release semantics, and wakes the client
 * (the response frame is already in the slot's response area). */
void wvds_slot_publish(void *shm, unsigned slot, uint32_t resp_len);

/* Service side (src/c/service/aes_fast.c): answers and publishes the BUSY request in `slot`
 * (req_len read once) if the AES fast path can: 1; else 0 and the slot is untouched. */
struct wvds_srv_fast;
int wvds_srv_fast_answer(struct wvds_srv_fast *f, void *shm, unsigned slot, uint32_t req_len);

/* Checks the control block a service wrote: 0 if it describes exactly this layout. */
int wvds_shm_check_control(const void *shm, uint16_t slot_count, uint32_t client_id);

/* Monotonic clock in nanoseconds; WVDS_FOREVER is a deadline that never passes. */
#define WVDS_FOREVER INT64_MAX
int64_t wvds_now_ns(void);
int64_t wvds_deadline_after_ms(int32_t timeout_ms); /* negative: WVDS_FOREVER */

/* --- Client side --------------------------------------------------------------- */

/* Results of the client slot functions (slot numbers are >= 0). */
enum {
    WVDS_SLOT_ERR_TIMEOUT = -1,
    WVDS_SLOT_ERR_DISCONNECTED = -2,
    WVDS_SLOT_ERR_SYSTEM = -3, /* errno tells why */
};

typedef struct wvds_slot_client {
    uint8_t *shm;
    uint16_t slot_count;
    int doorbell_fd;
    int sock_fd;              /* watched while waiting, to notice a dead service */
    uint32_t spin_us;         /* busy-wait before sleeping on the futex */
    pthread_mutex_t lock;     /* guards owner[] and abandoned */
    pthread_cond_t released;  /* a slot went back to the pool */
    uint8_t *owner;           /* per slot: local ownership, see shm_slots.c */
    unsigned abandoned;       /* how many slots wait for a late DONE */
    atomic_bool disconnected; /* the service hung up: every call fails fast */
    atomic_uint next_seq;
} wvds_slot_client;

int wvds_slot_client_init(wvds_slot_client *sc, void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd,
                          uint32_t spin_us);
void wvds_slot_client_destroy(wvds_slot_client *sc);

/* Takes a slot for the calling thread; waits until `deadline_ns` for one to become free
 * (a deadline in the past tries exactly once). Returns the slot or WVDS_SLOT_ERR_*. */
int wvds_slot_claim(wvds_slot_client *sc, int64_t deadline_ns);

/* Publishes the req_len bytes already written to the slot's request area and rings the doorbell. */
int wvds_slot_submit(wvds_slot_client *sc, int slot, uint32_t req_len);

/* Waits for DONE. 0, or WVDS_SLOT_ERR_TIMEOUT / _DISCONNECTED; after an error the caller must
 * wvds_slot_abandon() the slot (it is still the service's until the service sets DONE). */
int wvds_slot_wait(wvds_slot_client *sc, int slot, int64_t deadline_ns);

/* After a successful wait: the response frame, its length read once. NULL if the service
 * wrote a length larger than the response area. */
const uint8_t *wvds_slot_response_frame(wvds_slot_client *sc, int slot, uint32_t *len);

/* Gives a slot whose request completed back to the pool (state FREE). */
void wvds_slot_release(wvds_slot_client *sc, int slot);

/* Gives up on a slot whose request has not completed; it is reused only once the service sets DONE. */
void wvds_slot_abandon(wvds_slot_client *sc, int slot);

#endif
