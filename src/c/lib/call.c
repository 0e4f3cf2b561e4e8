/* One request/response exchange in a shared-memory slot, the raw wvds_transact, and
 * the bounds-checked readers every response parser uses. */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"

static wvds_status slot_error(int err)
{
    switch (err) {
    case WVDS_SLOT_ERR_TIMEOUT:
        return WVDS_ERR_TIMEOUT;
    case WVDS_SLOT_ERR_DISCONNECTED:
        return WVDS_ERR_DISCONNECTED;
    default:
        return WVDS_ERR_SYSTEM;
    }
}

static wvds_status begin(wvds_conn *conn, wvds_call *call, bool wait_for_slot)
{
    memset(call, 0, sizeof *call);
    call->slot = -1;
    if (!conn)
        return WVDS_ERR_ARGUMENT;
    call->conn = conn;
    call->deadline = wvds_deadline_after_ms(conn->timeout_ms);
    int slot = wvds_slot_claim(&conn->slots, wait_for_slot ? call->deadline : 0);
    if (slot < 0)
        return slot_error(slot);
    call->slot = slot;
    call->frame = wvds_slot_request(conn->shm, (unsigned)slot);
    return WVDS_SUCCESS;
}

wvds_status wvds_call_begin(wvds_conn *conn, wvds_call *call)
{
    return begin(conn, call, true);
}

wvds_status wvds_call_try_begin(wvds_conn *conn, wvds_call *call)
{
    return begin(conn, call, false);
}

void wvds_put(wvds_call *call, const void *data, size_t n)
{
    if (call->slot < 0 || call->overflow)
        return;
    if (n > WVDS_MAX_PAYLOAD - call->len) {
        call->overflow = true;
        return;
    }
    if (n)
        memcpy(call->frame + WVDS_HEADER_SIZE + call->len, data, n);
    call->len += n;
}

void wvds_put_u8(wvds_call *call, uint8_t v)
{
    wvds_put(call, &v, 1);
}

void wvds_put_u16(wvds_call *call, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    wvds_put(call, b, sizeof b);
}

void wvds_put_u32(wvds_call *call, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wvds_put(call, b, sizeof b);
}

void wvds_put_u64(wvds_call *call, uint64_t v)
{
    wvds_put_u32(call, (uint32_t)v);
    wvds_put_u32(call, (uint32_t)(v >> 32));
}

wvds_status wvds_call_submit(wvds_call *call, uint8_t type)
{
    if (call->slot < 0 || call->submitted)
        return WVDS_ERR_ARGUMENT;
    if (call->overflow)
        return WVDS_PAYLOAD_TOO_LARGE;
    uint8_t *h = call->frame;
    h[0] = WVDS_REQUEST_MAGIC;
    h[1] = WVDS_PROTOCOL_VERSION;
    h[2] = type;
    h[3] = 0;
    uint32_t n = (uint32_t)call->len;
    h[4] = (uint8_t)n, h[5] = (uint8_t)(n >> 8), h[6] = (uint8_t)(n >> 16), h[7] = (uint8_t)(n >> 24);
    call->submitted = true;
    if (WVDS_HEADER_SIZE + n > call->req_high)
        call->req_high = WVDS_HEADER_SIZE + n;
    if (wvds_slot_submit(&call->conn->slots, call->slot, WVDS_HEADER_SIZE + n) < 0) {
        wvds_slot_abandon(&call->conn->slots, call->slot); /* the service may pick it up regardless */
        call->slot = -1;
        return WVDS_ERR_SYSTEM;
    }
    return WVDS_SUCCESS;
}

/* The response header: magic, version, a known status and a length that matches the frame.
 * The flags byte is reserved and not checked, like the Python parser. */
static wvds_status parse_response(wvds_call *call, const uint8_t *f, uint32_t flen)
{
    if (flen < WVDS_HEADER_SIZE || f[0] != WVDS_RESPONSE_MAGIC || f[1] != WVDS_PROTOCOL_VERSION)
        return WVDS_ERR_PROTOCOL;
    uint32_t plen = (uint32_t)f[4] | (uint32_t)f[5] << 8 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 24;
    uint8_t status = f[2];
    if (plen != flen - WVDS_HEADER_SIZE || !wvds_is_wire_status(status))
        return WVDS_ERR_PROTOCOL;
    call->resp = f + WVDS_HEADER_SIZE;
    call->resp_len = plen;
    return (wvds_status)status;
}

wvds_status wvds_call_wait(wvds_call *call)
{
    if (call->slot < 0 || !call->submitted || call->completed)
        return WVDS_ERR_ARGUMENT;
    wvds_slot_client *sc = &call->conn->slots;
    int r = wvds_slot_wait(sc, call->slot, call->deadline);
    if (r < 0) {
        wvds_slot_abandon(sc, call->slot);
        call->slot = -1;
        return slot_error(r);
    }
    call->completed = true;
    uint32_t flen;
    const uint8_t *f = wvds_slot_response_frame(sc, call->slot, &flen);
    if (!f)
        return WVDS_ERR_PROTOCOL;
    call->resp_frame_len = flen;
    if (!call->keep_response && flen > call->resp_high)
        call->resp_high = flen;
    return parse_response(call, f, flen);
}

wvds_status wvds_call_run(wvds_call *call, uint8_t type)
{
    wvds_status st = wvds_call_submit(call, type);
    return st != WVDS_SUCCESS ? st : wvds_call_wait(call);
}

void wvds_call_end(wvds_call *call)
{
    if (call->slot < 0)
        return;
    wvds_slot_client *sc = &call->conn->slots;
    if (call->submitted && !call->completed) {
        wvds_slot_abandon(sc, call->slot); /* still the service's: reused once it answers */
    } else {
        /* Requests and responses may hold plaintext, secrets or key material. */
        size_t req = WVDS_HEADER_SIZE + call->len > call->req_high ? WVDS_HEADER_SIZE + call->len : call->req_high;
        explicit_bzero(call->frame, req);
        if (call->resp_high)
            explicit_bzero(wvds_slot_response(call->conn->shm, (unsigned)call->slot), call->resp_high);
        wvds_slot_release(sc, call->slot);
    }
    call->slot = -1;
}

wvds_status wvds_call_recycle(wvds_call *call)
{
    if (call->slot < 0 || !call->completed)
        return WVDS_ERR_ARGUMENT;
    call->deadline = wvds_deadline_after_ms(call->conn->timeout_ms);
    call->len = 0;
    call->overflow = call->submitted = call->completed = false;
    call->resp = NULL;
    call->resp_len = call->resp_frame_len = 0;
    return WVDS_SUCCESS;
}

wvds_status wvds_copy_out(const void *src, size_t n, void *dst, size_t cap, size_t *len_out)
{
    *len_out = n;
    if (n > cap)
        return WVDS_ERR_BUFFER_TOO_SMALL;
    if (n)
        memcpy(dst, src, n);
    return WVDS_SUCCESS;
}

wvds_status wvds_transact(wvds_conn *conn, uint8_t type, const void *payload, size_t len, void *resp, size_t resp_cap,
                          size_t *resp_len)
{
    if (!conn || !wvds_in_ok(payload, len) || !wvds_out_ok(resp, resp_cap, resp_len))
        return WVDS_ERR_ARGUMENT;
    if (len > WVDS_MAX_PAYLOAD)
        return WVDS_PAYLOAD_TOO_LARGE;
    wvds_call call;
    wvds_status st = wvds_call_begin(conn, &call);
    if (st != WVDS_SUCCESS)
        return st;
    wvds_put(&call, payload, len);
    st = wvds_call_run(&call, type);
    if (st <= 0xFF) { /* a wire status: its payload goes to the caller whatever it is */
        wvds_status copied = wvds_copy_out(call.resp, call.resp_len, resp, resp_cap, resp_len);
        if (copied != WVDS_SUCCESS)
            st = copied;
    }
    wvds_call_end(&call);
    return st;
}

/* --- readers --------------------------------------------------------------------------- */

const uint8_t *wvds_rd_bytes(wvds_reader *r, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t wvds_rd_u8(wvds_reader *r)
{
    const uint8_t *p = wvds_rd_bytes(r, 1);
    return p ? p[0] : 0;
}

uint16_t wvds_rd_u16(wvds_reader *r)
{
    const uint8_t *p = wvds_rd_bytes(r, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t wvds_rd_u32(wvds_reader *r)
{
    const uint8_t *p = wvds_rd_bytes(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}

uint64_t wvds_rd_u64(wvds_reader *r)
{
    uint64_t lo = wvds_rd_u32(r);
    uint64_t hi = wvds_rd_u32(r);
    return lo | hi << 32;
}
