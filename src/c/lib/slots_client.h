/* The client half of the slot protocol (docs/transport.md), inside the OEM library: a slot
 * table that hands each calling thread its own slot, submits a request frame, waits for the
 * answer (spin, then futex) and releases the slot. The layout and ordering rules: slots.h. */
#ifndef WVDS_SLOTS_CLIENT_H
#define WVDS_SLOTS_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "slots.h"

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
    uint8_t *owner;           /* per slot: local ownership, see slots_client.c */
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
