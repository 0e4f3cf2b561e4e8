/* Chunked AES-256-GCM for data of any size; the format is documented in wvds_crypto.h.
 *
 * Each chunk is one AES_ENCRYPT / AES_DECRYPT request whose AAD binds the stream id,
 * the chunk index and the final flag. Up to WINDOW chunks are in flight at once (the
 * service processes slots concurrently); they complete in order into precomputed
 * offsets of the output. A stream keeps the slots it has claimed until it ends and
 * wipes them once then, instead of after every chunk (64 KiB of writes per chunk). */
#define _GNU_SOURCE
#include <string.h>
#include <sys/random.h>

#include "internal.h"

#define WINDOW 4
#define CHUNK_AAD_FIXED (WVDS_STREAM_LABEL_LEN + WVDS_STREAM_ID_SIZE + 8 + 1)
_Static_assert(6 + CHUNK_AAD_FIXED + WVDS_STREAM_MAX_AAD + WVDS_STREAM_FRAME_OVERHEAD - 4 + WVDS_STREAM_CHUNK_SIZE <=
                   WVDS_MAX_PAYLOAD,
               "a full chunk with the largest AAD fits one request");

typedef struct chunk_job {
    wvds_call call;
    uint8_t *dst;       /* where the response goes */
    size_t expect_len;  /* response length it must have */
    bool frame_header;  /* encrypt: prefix the output with the u32 frame length */
} chunk_job;

/* The chunks in flight, oldest first, and the slots held between chunks. */
typedef struct pipeline {
    wvds_conn *conn;
    chunk_job jobs[WINDOW];
    unsigned head, count, window;
    wvds_call idle[WINDOW]; /* completed calls whose slots the next chunks reuse */
    unsigned idle_count;
    wvds_status status; /* first failure */
} pipeline;

static void pipeline_init(pipeline *p, wvds_conn *conn)
{
    memset(p, 0, sizeof *p);
    p->conn = conn;
    p->window = conn->slot_count < WINDOW ? conn->slot_count : WINDOW;
    p->status = WVDS_SUCCESS;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* Waits for the oldest chunk and stores its result. */
static void finish_oldest(pipeline *p)
{
    chunk_job *j = &p->jobs[p->head];
    wvds_status st = wvds_call_wait(&j->call);
    if (st == WVDS_SUCCESS && j->call.resp_len != j->expect_len)
        st = WVDS_ERR_PROTOCOL;
    if (st == WVDS_SUCCESS && p->status == WVDS_SUCCESS) {
        uint8_t *dst = j->dst;
        if (j->frame_header) {
            put_le32(dst, (uint32_t)j->expect_len);
            dst += 4;
        }
        memcpy(dst, j->call.resp, j->expect_len);
    }
    if (st != WVDS_SUCCESS && p->status == WVDS_SUCCESS)
        p->status = st;
    if (j->call.slot >= 0 && j->call.completed)
        p->idle[p->idle_count++] = j->call; /* keep the slot for a later chunk */
    else
        wvds_call_end(&j->call); /* abandoned (or nothing held): nothing to keep */
    p->head = (p->head + 1) % WINDOW;
    p->count--;
}

/* A call for the next chunk (not yet counted as in flight), or NULL after a failure.
 * Never blocks on a slot while holding slots of its own: finishing our oldest chunk
 * gives one back to reuse (otherwise two streams could starve each other). */
static chunk_job *next_job(pipeline *p)
{
    if (p->count == p->window)
        finish_oldest(p);
    chunk_job *j = &p->jobs[(p->head + p->count) % WINDOW];
    while (p->status == WVDS_SUCCESS) {
        if (p->idle_count) {
            j->call = p->idle[--p->idle_count];
            wvds_call_recycle(&j->call);
            return j;
        }
        bool holding = p->count > 0;
        wvds_status st = holding ? wvds_call_try_begin(p->conn, &j->call) : wvds_call_begin(p->conn, &j->call);
        if (st == WVDS_SUCCESS)
            return j;
        if (st != WVDS_ERR_TIMEOUT || !holding)
            p->status = st;
        else
            finish_oldest(p); /* keeps j's position: head and count move together */
    }
    return NULL;
}

static void put_chunk_aad(wvds_call *call, const uint8_t *stream_id, uint64_t index, bool final, const void *aad,
                          size_t aad_len)
{
    wvds_put_u16(call, (uint16_t)(CHUNK_AAD_FIXED + aad_len));
    wvds_put(call, WVDS_STREAM_LABEL, WVDS_STREAM_LABEL_LEN);
    wvds_put(call, stream_id, WVDS_STREAM_ID_SIZE);
    wvds_put_u64(call, index);
    wvds_put_u8(call, final ? 1 : 0);
    wvds_put(call, aad, aad_len);
}

/* Submits one chunk (request already fully described by the arguments). */
static void submit_chunk(pipeline *p, uint8_t type, uint32_t key_id, const uint8_t *stream_id, uint64_t index,
                         bool final, const void *aad, size_t aad_len, const uint8_t *data, size_t data_len,
                         uint8_t *dst, size_t expect_len, bool frame_header)
{
    chunk_job *j = next_job(p);
    if (!j)
        return;
    j->dst = dst;
    j->expect_len = expect_len;
    j->frame_header = frame_header;
    wvds_put_u32(&j->call, key_id);
    put_chunk_aad(&j->call, stream_id, index, final, aad, aad_len);
    wvds_put(&j->call, data, data_len);
    j->call.keep_response = type == WVDS_REQ_AES_ENCRYPT; /* a sealed chunk: nothing to wipe */
    wvds_status st = wvds_call_submit(&j->call, type);
    if (st != WVDS_SUCCESS) {
        p->status = st;
        wvds_call_end(&j->call);
        return;
    }
    p->count++;
}

/* Waits for what is still in flight (after a failure too, so no slot is left behind
 * needlessly); returns the first failure. */
static wvds_status pipeline_drain(pipeline *p)
{
    while (p->count)
        finish_oldest(p);
    while (p->idle_count)
        wvds_call_end(&p->idle[--p->idle_count]); /* wipes all the slot ever held, releases it */
    return p->status;
}

static size_t chunk_count(size_t plaintext_len)
{
    return plaintext_len == 0 ? 1 : (plaintext_len - 1) / WVDS_STREAM_CHUNK_SIZE + 1;
}

size_t wvds_stream_sealed_size(size_t plaintext_len)
{
    size_t n = chunk_count(plaintext_len);
    if (plaintext_len > SIZE_MAX - WVDS_STREAM_ID_SIZE ||
        n > (SIZE_MAX - WVDS_STREAM_ID_SIZE - plaintext_len) / WVDS_STREAM_FRAME_OVERHEAD)
        return SIZE_MAX;
    return WVDS_STREAM_ID_SIZE + n * WVDS_STREAM_FRAME_OVERHEAD + plaintext_len;
}

wvds_status wvds_stream_encrypt(wvds_conn *conn, uint32_t key_id, const void *aad, size_t aad_len,
                                const void *plaintext, size_t plaintext_len, void *stream, size_t stream_cap,
                                size_t *stream_len)
{
    if (!conn || key_id == 0 || !wvds_in_ok(aad, aad_len) || aad_len > WVDS_STREAM_MAX_AAD ||
        !wvds_in_ok(plaintext, plaintext_len) || !wvds_out_ok(stream, stream_cap, stream_len))
        return WVDS_ERR_ARGUMENT;
    size_t need = wvds_stream_sealed_size(plaintext_len);
    if (need == SIZE_MAX)
        return WVDS_ERR_ARGUMENT;
    if (stream_cap < need) {
        *stream_len = need;
        return WVDS_ERR_BUFFER_TOO_SMALL;
    }
    uint8_t *out = stream;
    if (getrandom(out, WVDS_STREAM_ID_SIZE, 0) != WVDS_STREAM_ID_SIZE)
        return WVDS_ERR_SYSTEM;

    pipeline p;
    pipeline_init(&p, conn);
    const uint8_t *in = plaintext;
    size_t n = chunk_count(plaintext_len);
    uint8_t *dst = out + WVDS_STREAM_ID_SIZE;
    for (size_t i = 0; i < n && p.status == WVDS_SUCCESS; i++) {
        size_t off = i * WVDS_STREAM_CHUNK_SIZE;
        size_t len = plaintext_len - off < WVDS_STREAM_CHUNK_SIZE ? plaintext_len - off : WVDS_STREAM_CHUNK_SIZE;
        size_t sealed = len + WVDS_AES_SEALED_OVERHEAD;
        submit_chunk(&p, WVDS_REQ_AES_ENCRYPT, key_id, out, i, i == n - 1, aad, aad_len, in + off, len, dst, sealed,
                     true);
        dst += 4 + sealed;
    }
    wvds_status st = pipeline_drain(&p);
    if (st == WVDS_SUCCESS)
        *stream_len = need;
    return st;
}

/* First pass over a stream: checks the framing and sums the plaintext length. */
static bool parse_frames(const uint8_t *in, size_t in_len, size_t *frames, size_t *plaintext_len)
{
    *frames = *plaintext_len = 0;
    if (in_len < WVDS_STREAM_ID_SIZE)
        return false;
    for (size_t off = WVDS_STREAM_ID_SIZE; off < in_len;) {
        if (in_len - off < 4)
            return false;
        size_t len = (size_t)in[off] | (size_t)in[off + 1] << 8 | (size_t)in[off + 2] << 16 |
                     (size_t)in[off + 3] << 24;
        if (len < WVDS_AES_SEALED_OVERHEAD || len > WVDS_AES_SEALED_OVERHEAD + WVDS_STREAM_CHUNK_SIZE ||
            in_len - off - 4 < len)
            return false;
        *plaintext_len += len - WVDS_AES_SEALED_OVERHEAD;
        (*frames)++;
        off += 4 + len;
    }
    return *frames > 0;
}

wvds_status wvds_stream_decrypt(wvds_conn *conn, uint32_t key_id, const void *aad, size_t aad_len, const void *stream,
                                size_t stream_len, void *plaintext, size_t plaintext_cap, size_t *plaintext_len)
{
    if (!conn || key_id == 0 || !wvds_in_ok(aad, aad_len) || aad_len > WVDS_STREAM_MAX_AAD ||
        !wvds_in_ok(stream, stream_len) || !wvds_out_ok(plaintext, plaintext_cap, plaintext_len))
        return WVDS_ERR_ARGUMENT;
    const uint8_t *in = stream;
    size_t frames, total;
    if (!parse_frames(in, stream_len, &frames, &total))
        return WVDS_DECRYPTION_FAILED;
    if (plaintext_cap < total) {
        *plaintext_len = total;
        return WVDS_ERR_BUFFER_TOO_SMALL;
    }

    pipeline p;
    pipeline_init(&p, conn);
    uint8_t *dst = plaintext;
    size_t off = WVDS_STREAM_ID_SIZE;
    for (size_t i = 0; i < frames && p.status == WVDS_SUCCESS; i++) {
        size_t len = (size_t)in[off] | (size_t)in[off + 1] << 8 | (size_t)in[off + 2] << 16 |
                     (size_t)in[off + 3] << 24;
        size_t chunk = len - WVDS_AES_SEALED_OVERHEAD;
        /* The last frame present is decrypted as the final one: if the real final chunk was cut
         * off, or frames were added after it, the tag check fails. */
        submit_chunk(&p, WVDS_REQ_AES_DECRYPT, key_id, in, i, i == frames - 1, aad, aad_len, in + off + 4, len, dst,
                     chunk, false);
        dst += chunk;
        off += 4 + len;
    }
    wvds_status st = pipeline_drain(&p);
    if (st != WVDS_SUCCESS) {
        if (total)
            explicit_bzero(plaintext, total); /* no unauthenticated plaintext survives a failure */
        return st;
    }
    *plaintext_len = total;
    return WVDS_SUCCESS;
}
