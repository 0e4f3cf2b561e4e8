/* The service half of the slot protocol, inside the service library (internal; the exported
 * wvds_srv_* functions are declared in wvds_srv.h). */
#ifndef WVDS_SLOTS_SERVICE_H
#define WVDS_SLOTS_SERVICE_H

#include <stdint.h>

#include "slots.h"

/* What the serve loop asks of whoever answers requests without the caller (the C fast path):
 * answer() a BUSY request in `slot` (req_len read once) and publish it: 1, or 0 and the slot is
 * untouched; held() says the service still works on a slot, hold() marks one it returns. */
typedef struct wvds_serve_hooks {
    void *ctx;
    int (*answer)(void *ctx, void *shm, unsigned slot, uint32_t req_len);
    int (*held)(void *ctx, unsigned slot);
    void (*hold)(void *ctx, unsigned slot);
} wvds_serve_hooks;

/* wvds_srv_next with hooks (NULL: none). */
int wvds_slots_serve(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us, int timeout_ms,
                     const wvds_serve_hooks *hooks, uint8_t *out, uint32_t out_cap, uint32_t *out_len);

/* Stores resp_len, then DONE with release semantics, and wakes the client (the response frame
 * is already in the slot's response area). */
void wvds_slot_publish(void *shm, unsigned slot, uint32_t resp_len);

#endif
