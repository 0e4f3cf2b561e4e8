/* What the library's source files share: the connection, one request ("call")
 * built directly in its shared-memory slot, and bounds-checked wire readers. */
#ifndef WVDS_LIB_INTERNAL_H
#define WVDS_LIB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slots_client.h"
#include "wvds_crypto.h"

struct wvds_conn {
    int sock_fd;
    int doorbell_fd;
    void *shm;
    size_t shm_size;
    uint16_t slot_count;
    uint32_t client_id;
    int32_t timeout_ms; /* < 0: no limit */
    wvds_slot_client slots;
};

/* --- one request/response exchange ---------------------------------------------------
 *
 *   wvds_call call;
 *   st = wvds_call_begin(conn, &call);            claims a slot
 *   wvds_put_u32(&call, key_id); ...              payload straight into shared memory
 *   st = wvds_call_run(&call, WVDS_REQ_...);      wire status or library error
 *   if (st == WVDS_SUCCESS) parse wvds_call_reader(&call)
 *   wvds_call_end(&call);                         wipes and frees the slot (always call it)
 */
typedef struct wvds_call {
    wvds_conn *conn;
    int slot;        /* -1: none held */
    int64_t deadline;
    uint8_t *frame;  /* the slot's request area */
    size_t len;      /* payload bytes written */
    bool overflow;   /* a put went past WVDS_MAX_PAYLOAD (a bug: sizes are checked first) */
    bool keep_response; /* the response holds nothing secret (a ciphertext): not wiped at the end */
    bool submitted;  /* the slot is the service's until completed */
    bool completed;
    const uint8_t *resp; /* response payload, in shared memory, valid until wvds_call_end */
    size_t resp_len;
    size_t resp_frame_len;
    size_t req_high, resp_high; /* most bytes any request/response of this slot held: wiped at the end */
} wvds_call;

wvds_status wvds_call_begin(wvds_conn *conn, wvds_call *call);
/* Like wvds_call_begin but never waits for a slot: WVDS_ERR_TIMEOUT if none is free now. */
wvds_status wvds_call_try_begin(wvds_conn *conn, wvds_call *call);
void wvds_put(wvds_call *call, const void *data, size_t n);
void wvds_put_u8(wvds_call *call, uint8_t v);
void wvds_put_u16(wvds_call *call, uint16_t v);
void wvds_put_u32(wvds_call *call, uint32_t v);
void wvds_put_u64(wvds_call *call, uint64_t v);
wvds_status wvds_call_submit(wvds_call *call, uint8_t type);
wvds_status wvds_call_wait(wvds_call *call);
wvds_status wvds_call_run(wvds_call *call, uint8_t type);
void wvds_call_end(wvds_call *call);
/* After a completed call: the same slot, ready for the next request, without releasing or
 * wiping it (wvds_call_end wipes everything it ever held). For a series of requests from one
 * thread, like a stream's chunks. WVDS_ERR_ARGUMENT if the call is not completed. */
wvds_status wvds_call_recycle(wvds_call *call);

/* --- reading a response payload ------------------------------------------------------
 * Each field is read once; reading past the end sets `bad` and yields zeros/NULL, so a
 * parser checks `bad` (or wvds_rd_end) once before using what it read. */
typedef struct wvds_reader {
    const uint8_t *p;
    size_t left;
    bool bad;
} wvds_reader;

static inline wvds_reader wvds_call_reader(const wvds_call *call)
{
    return (wvds_reader){.p = call->resp, .left = call->resp_len, .bad = false};
}

const uint8_t *wvds_rd_bytes(wvds_reader *r, size_t n); /* NULL if fewer than n bytes are left */
uint8_t wvds_rd_u8(wvds_reader *r);
uint16_t wvds_rd_u16(wvds_reader *r);
uint32_t wvds_rd_u32(wvds_reader *r);
uint64_t wvds_rd_u64(wvds_reader *r);
/* True if every read succeeded and nothing is left over. */
static inline bool wvds_rd_end(const wvds_reader *r)
{
    return !r->bad && r->left == 0;
}

/* --- argument checks shared by the operations ------------------------------------------ */

/* An input buffer: NULL only with length 0. */
static inline bool wvds_in_ok(const void *p, size_t n)
{
    return p != NULL || n == 0;
}

/* Output buffer with capacity: on success sets *len_out to 0 so early returns report 0. */
static inline bool wvds_out_ok(const void *p, size_t cap, size_t *len_out)
{
    if (!len_out || (p == NULL && cap != 0))
        return false;
    *len_out = 0;
    return true;
}

/* Validates a label (NULL = ""): UTF-8, at most WVDS_MAX_LABEL_SIZE bytes. */
bool wvds_label_ok(const char *label, size_t *len);
bool wvds_utf8_ok(const uint8_t *s, size_t n);

bool wvds_is_mldsa(wvds_algorithm alg);
bool wvds_is_slhdsa(wvds_algorithm alg);
bool wvds_is_mlkem(wvds_algorithm alg);
bool wvds_is_ecdsa(wvds_algorithm alg);
bool wvds_is_algorithm(wvds_algorithm alg);
/* Size of the raw public key of an asymmetric algorithm; 0 for others. */
size_t wvds_public_key_size(wvds_algorithm alg);
size_t wvds_mlkem_ciphertext_size(wvds_algorithm alg);

/* A public key named by a stored key id or sent inline (KeyRef in payloads.py). */
typedef struct wvds_key_ref {
    bool is_inline;
    uint32_t key_id;
    wvds_algorithm algorithm;
    const void *public_key;
    size_t public_key_len;
} wvds_key_ref;

/* Inline keys must belong to `family` and have exactly the algorithm's public key size. */
bool wvds_key_ref_ok(const wvds_key_ref *ref, bool (*family)(wvds_algorithm));
size_t wvds_key_ref_size(const wvds_key_ref *ref);
void wvds_put_key_ref(wvds_call *call, const wvds_key_ref *ref);

/* KEY_GENERATE and MLKEM_KEYGEN share a layout (KeyGenerateRequest -> KeyCreatedResponse). */
wvds_status wvds_key_create(wvds_conn *conn, uint8_t type, wvds_algorithm algorithm, uint32_t usage,
                            const char *label, uint32_t *key_id, void *public_key, size_t public_key_cap,
                            size_t *public_key_len);

/* True for the statuses the service may answer (the wire part of wvds_status). */
bool wvds_is_wire_status(uint8_t code);

/* Copies src to the caller's buffer: WVDS_ERR_BUFFER_TOO_SMALL (and the needed size) if it does not fit. */
wvds_status wvds_copy_out(const void *src, size_t n, void *dst, size_t cap, size_t *len_out);

#endif
