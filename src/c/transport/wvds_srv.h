/* Service side of the shared-memory slot protocol (docs/transport.md).
 *
 * Exported from libl4re_crypto_service.so for crypto_service, which calls these
 * through ctypes (plain integers, pointers and sizes only). Not part of the OEM
 * header. The service creates the memfd, maps it, calls wvds_srv_init_control,
 * seals it and passes it with the doorbell eventfd to the client; then one thread
 * per client calls wvds_srv_next in a loop while any thread may call
 * wvds_srv_complete for the slots it was given.
 *
 * ctypes signatures:
 *   wvds_srv_shm_size:     [c_uint16] -> c_uint32
 *   wvds_srv_init_control: [c_void_p, c_uint16, c_uint32] -> c_int
 *   wvds_srv_next:         [c_void_p, c_uint16, c_int, c_int, c_uint32, c_int, c_void_p, c_uint32,
 *                           POINTER(c_uint32)] -> c_int
 *   wvds_srv_pending:      [c_void_p, c_uint16] -> c_int
 *   wvds_srv_complete:     [c_void_p, c_uint16, c_int, c_char_p, c_uint32] -> c_int
 *
 * The service passes a session (wvds_srv_fast.h) to wvds_srv_serve, which then also holds every
 * slot it returns until wvds_srv_fast_release: without one (wvds_srv_next) nothing is held.
 */
#ifndef WVDS_SRV_H
#define WVDS_SRV_H

#include <stdint.h>

#include "wvds_crypto.h" /* WVDS_API */

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of shared memory for slot_count slots (4096 + slot_count * 135168); 0 if slot_count
 * is 0 or above 1024. */
WVDS_API uint32_t wvds_srv_shm_size(uint16_t slot_count);

/* Zeroes the whole mapping (wvds_srv_shm_size bytes) and writes the control block.
 * 0, or -1 for a NULL pointer or a bad slot count. */
WVDS_API int wvds_srv_init_control(void *shm, uint16_t slot_count, uint32_t client_id);

/* Waits for the next submitted request and takes it (SUBMITTED -> BUSY).
 *
 * Scans the slots; if none is submitted, spins for spin_us, then polls the doorbell
 * (drained when it fires) and the client socket for up to timeout_ms (< 0: no limit).
 * On success copies min(req_len, REQ_AREA) bytes of the request frame into `out`
 * (out_cap must be >= 65544), reading req_len exactly once, sets *out_len and returns
 * the slot index (>= 0); the caller must parse only that copy. A frame whose req_len
 * exceeded the area arrives truncated, which its header then contradicts.
 * Returns -1 on timeout, -2 when the socket reports hangup/error (the client is gone),
 * -3 on any other error (errno kept; EINVAL for bad arguments). A negative doorbell_fd
 * or sock_fd is not watched. Uses a per-thread cursor so slots are served round-robin. */
WVDS_API int wvds_srv_next(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us,
                           int timeout_ms, uint8_t *out, uint32_t out_cap, uint32_t *out_len);

/* How many slots are submitted and not yet taken (a snapshot: only a hint, the client may
 * submit more at any moment). -1 for a NULL pointer or a bad slot count. */
WVDS_API int wvds_srv_pending(void *shm, uint16_t slot_count);

/* Writes the response frame into the slot, then resp_len, stores DONE with release
 * semantics and wakes the client's futex. Safe from any thread, concurrently with
 * wvds_srv_next and other completions (for other slots). Returns 0, or -1 when the
 * slot index is out of range, resp_len exceeds the response area (65800) or the slot
 * is not BUSY (never taken by wvds_srv_next, already completed, or tampered with). */
WVDS_API int wvds_srv_complete(void *shm, uint16_t slot_count, int slot, const uint8_t *resp, uint32_t resp_len);

#ifdef __cplusplus
}
#endif

#endif
