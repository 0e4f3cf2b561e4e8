/* Zero-copy AES-256-GCM jobs (wvds_crypto.h): the AES requests of aes.c, with the data
 * written and read by the caller in the slot itself instead of copied by the library. */
#include <stdlib.h>

#include "internal.h"

/* Bytes of an AES request payload besides AAD and data: key id + AAD length (as aes.c). */
#define AES_FIXED 6u

struct wvds_aes_job {
    wvds_call call;
    uint8_t type;
    size_t cap;       /* input bytes the request area still takes */
    size_t input_len; /* as submitted */
};

wvds_status wvds_aes_job_begin(wvds_conn *conn, uint8_t type, uint32_t key_id, const void *aad, size_t aad_len,
                               wvds_aes_job **job, uint8_t **input, size_t *input_cap)
{
    if (job)
        *job = NULL;
    bool enc = type == WVDS_REQ_AES_ENCRYPT;
    if (!conn || key_id == 0 || (!enc && type != WVDS_REQ_AES_DECRYPT) || !wvds_in_ok(aad, aad_len) || !job ||
        !input || !input_cap)
        return WVDS_ERR_ARGUMENT;
    size_t limit = enc ? WVDS_AES_MAX_DATA : WVDS_MAX_PAYLOAD - AES_FIXED;
    if (aad_len > limit || (!enc && limit - aad_len < WVDS_AES_SEALED_OVERHEAD))
        return WVDS_PAYLOAD_TOO_LARGE;
    wvds_aes_job *j = calloc(1, sizeof *j);
    if (!j)
        return WVDS_ERR_SYSTEM;
    wvds_status st = wvds_call_begin(conn, &j->call);
    if (st != WVDS_SUCCESS) {
        free(j);
        return st;
    }
    j->type = type;
    j->cap = limit - aad_len;
    j->call.keep_response = enc; /* nonce || ciphertext || tag: nothing to wipe */
    wvds_put_u32(&j->call, key_id);
    wvds_put_u16(&j->call, (uint16_t)aad_len);
    wvds_put(&j->call, aad, aad_len);
    *input = j->call.frame + WVDS_HEADER_SIZE + j->call.len;
    *input_cap = j->cap;
    *job = j;
    return WVDS_SUCCESS;
}

wvds_status wvds_aes_job_submit(wvds_aes_job *job, size_t input_len)
{
    if (!job || job->call.submitted || input_len > job->cap ||
        (job->type == WVDS_REQ_AES_DECRYPT && input_len < WVDS_AES_SEALED_OVERHEAD))
        return WVDS_ERR_ARGUMENT;
    job->call.len += input_len; /* already in place: the caller wrote it */
    job->input_len = input_len;
    return wvds_call_submit(&job->call, job->type);
}

wvds_status wvds_aes_job_wait(wvds_aes_job *job, const uint8_t **output, size_t *output_len)
{
    if (!job || !output || !output_len)
        return WVDS_ERR_ARGUMENT;
    *output = NULL;
    *output_len = 0;
    wvds_status st = wvds_call_wait(&job->call);
    if (st != WVDS_SUCCESS)
        return st;
    size_t expect = job->type == WVDS_REQ_AES_ENCRYPT ? job->input_len + WVDS_AES_SEALED_OVERHEAD
                                                       : job->input_len - WVDS_AES_SEALED_OVERHEAD;
    if (job->call.resp_len != expect)
        return WVDS_ERR_PROTOCOL;
    *output = job->call.resp;
    *output_len = expect;
    return WVDS_SUCCESS;
}

void wvds_aes_job_end(wvds_aes_job *job)
{
    if (!job)
        return;
    if (!job->call.submitted)
        job->call.len = job->call.len + job->cap; /* whatever the caller wrote into the area: wipe it all */
    wvds_call_end(&job->call);
    free(job);
}
