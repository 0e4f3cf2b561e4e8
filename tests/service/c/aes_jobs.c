/* Zero-copy AES jobs (wvds_aes_job_*) against the real crypto_service: run by
 * tests/service/test_aes_jobs.py for each architecture.
 *
 *   aes_jobs SOCKET   prints one JSON object ({"sealed": hex, "aad": hex, "plaintext": hex}) for an
 *                     independent check, then PASS; exits 1 with a message on the first failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wvds_crypto.h"

static wvds_conn *conn;
static uint32_t key_id;

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed);
}

static void hex(const char *name, const uint8_t *p, size_t n, const char *end)
{
    printf("\"%s\": \"", name);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\"%s", end);
}

/* Encrypts n pattern bytes with a job; checks the result with the copying API. */
static void round_trip(size_t n, const char *aad)
{
    wvds_aes_job *job;
    uint8_t *in;
    size_t cap, out_len, back_len;
    const uint8_t *out;
    size_t aad_len = aad ? strlen(aad) : 0;
    wvds_status st = wvds_aes_job_begin(conn, WVDS_REQ_AES_ENCRYPT, key_id, aad, aad_len, &job, &in, &cap);
    CHECK(st == WVDS_SUCCESS && cap == WVDS_AES_MAX_DATA - aad_len, "begin %s cap %zu", wvds_status_name(st), cap);
    if (st)
        return;
    fill(in, n, (unsigned)n);
    CHECK(wvds_aes_job_submit(job, n) == WVDS_SUCCESS, "submit %zu", n);
    st = wvds_aes_job_wait(job, &out, &out_len);
    CHECK(st == WVDS_SUCCESS && out_len == n + WVDS_AES_SEALED_OVERHEAD, "wait %s", wvds_status_name(st));
    uint8_t *expect = malloc(n + 1), *back = malloc(n + 1);
    fill(expect, n, (unsigned)n);
    if (st == WVDS_SUCCESS) {
        st = wvds_aes_decrypt(conn, key_id, aad, aad_len, out, out_len, back, n + 1, &back_len);
        CHECK(st == WVDS_SUCCESS && back_len == n && memcmp(back, expect, n) == 0, "decrypt of %zu: %s", n,
              wvds_status_name(st));
        /* and back through a decrypt job */
        wvds_aes_job *dj;
        uint8_t *din;
        size_t dcap;
        const uint8_t *pt;
        size_t pt_len;
        st = wvds_aes_job_begin(conn, WVDS_REQ_AES_DECRYPT, key_id, aad, aad_len, &dj, &din, &dcap);
        CHECK(st == WVDS_SUCCESS && dcap >= out_len, "decrypt begin %s", wvds_status_name(st));
        if (st == WVDS_SUCCESS) {
            memcpy(din, out, out_len);
            CHECK(wvds_aes_job_submit(dj, out_len) == WVDS_SUCCESS, "decrypt submit");
            st = wvds_aes_job_wait(dj, &pt, &pt_len);
            CHECK(st == WVDS_SUCCESS && pt_len == n && memcmp(pt, expect, n) == 0, "decrypt job of %zu: %s", n,
                  wvds_status_name(st));
            wvds_aes_job_end(dj);
        }
        if (n == 100) {
            printf("{");
            hex("sealed", out, out_len, ", ");
            hex("aad", (const uint8_t *)aad, aad_len, ", ");
            hex("plaintext", expect, n, "}\n");
        }
    }
    free(expect);
    free(back);
    wvds_aes_job_end(job);
}

static void several_in_flight(void)
{
    enum { N = 4 };
    wvds_aes_job *jobs[N];
    uint8_t *in;
    size_t cap;
    for (int i = 0; i < N; i++) {
        CHECK(wvds_aes_job_begin(conn, WVDS_REQ_AES_ENCRYPT, key_id, NULL, 0, &jobs[i], &in, &cap) == WVDS_SUCCESS,
              "begin %d", i);
        fill(in, 5000, (unsigned)i);
        CHECK(wvds_aes_job_submit(jobs[i], 5000) == WVDS_SUCCESS, "submit %d", i);
    }
    /* every slot is held: one more waits for the (short) timeout */
    wvds_aes_job *extra;
    CHECK(wvds_aes_job_begin(conn, WVDS_REQ_AES_ENCRYPT, key_id, NULL, 0, &extra, &in, &cap) == WVDS_ERR_TIMEOUT &&
              extra == NULL,
          "a fifth job while four are held");
    uint8_t expect[5000], back[5000], sealed[5000 + WVDS_AES_SEALED_OVERHEAD];
    for (int i = N - 1; i >= 0; i--) { /* in any order */
        const uint8_t *out;
        size_t out_len = 0, back_len;
        CHECK(wvds_aes_job_wait(jobs[i], &out, &out_len) == WVDS_SUCCESS && out_len == sizeof sealed, "wait %d", i);
        memcpy(sealed, out, sizeof sealed);
        wvds_aes_job_end(jobs[i]); /* frees a slot for the check */
        fill(expect, sizeof expect, (unsigned)i);
        CHECK(wvds_aes_decrypt(conn, key_id, NULL, 0, sealed, sizeof sealed, back, sizeof back, &back_len) ==
                      WVDS_SUCCESS &&
                  memcmp(back, expect, sizeof back) == 0,
              "job %d decrypts", i);
    }
}

static void misuse_and_failures(void)
{
    wvds_aes_job *job;
    uint8_t *in;
    size_t cap;
    const uint8_t *out;
    size_t out_len;
    CHECK(wvds_aes_job_begin(conn, WVDS_REQ_RANDOM, key_id, NULL, 0, &job, &in, &cap) == WVDS_ERR_ARGUMENT,
          "not an AES type");
    CHECK(wvds_aes_job_begin(conn, WVDS_REQ_AES_ENCRYPT, 0, NULL, 0, &job, &in, &cap) == WVDS_ERR_ARGUMENT,
          "key id 0");
    CHECK(wvds_aes_job_begin(conn, WVDS_REQ_AES_ENCRYPT, key_id, "x", WVDS_MAX_PAYLOAD, &job, &in, &cap) ==
              WVDS_PAYLOAD_TOO_LARGE,
          "AAD too large");
    /* over capacity, and begun but never submitted: the slot comes back */
    CHECK(wvds_aes_job_begin(conn, WVDS_REQ_AES_ENCRYPT, key_id, NULL, 0, &job, &in, &cap) == WVDS_SUCCESS, "begin");
    memset(in, 0xAA, cap);
    CHECK(wvds_aes_job_submit(job, cap + 1) == WVDS_ERR_ARGUMENT, "over capacity");
    wvds_aes_job_end(job);
    /* a tampered tag: the service's status, no output */
    CHECK(wvds_aes_job_begin(conn, WVDS_REQ_AES_DECRYPT, key_id, NULL, 0, &job, &in, &cap) == WVDS_SUCCESS, "begin");
    memset(in, 0x55, 40);
    CHECK(wvds_aes_job_submit(job, 27) == WVDS_ERR_ARGUMENT, "shorter than nonce + tag");
    CHECK(wvds_aes_job_submit(job, 40) == WVDS_SUCCESS, "submit");
    CHECK(wvds_aes_job_submit(job, 40) == WVDS_ERR_ARGUMENT, "submitted twice");
    CHECK(wvds_aes_job_wait(job, &out, &out_len) == WVDS_DECRYPTION_FAILED && out == NULL && out_len == 0,
          "forged input");
    wvds_aes_job_end(job);
    /* ended without waiting: the slot is reused once the service has answered */
    CHECK(wvds_aes_job_begin(conn, WVDS_REQ_AES_ENCRYPT, key_id, NULL, 0, &job, &in, &cap) == WVDS_SUCCESS, "begin");
    CHECK(wvds_aes_job_submit(job, 10) == WVDS_SUCCESS, "submit");
    wvds_aes_job_end(job);
    wvds_aes_job_end(NULL);
    CHECK(wvds_aes_job_wait(NULL, &out, &out_len) == WVDS_ERR_ARGUMENT, "wait(NULL)");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    wvds_options o = {.timeout_ms = 300, .requested_slots = 4};
    wvds_status st = wvds_connect_ex(argv[1], &o, &conn);
    if (st) {
        fprintf(stderr, "connect: %s\n", wvds_status_name(st));
        return 1;
    }
    uint8_t key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    /* A key for data at rest: every sealed message is decrypted twice (a call, then a job). */
    st = wvds_key_import(conn, WVDS_ALG_AES_256_GCM, WVDS_USAGE_REPLAYABLE, WVDS_KEY_FORMAT_RAW, "jobs", key,
                         sizeof key, &key_id);
    if (st) {
        fprintf(stderr, "import: %s\n", wvds_status_name(st));
        return 1;
    }
    size_t sizes[] = {0, 1, 100, 4096, WVDS_AES_MAX_DATA - 3};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        round_trip(sizes[i], i % 2 ? "aad" : NULL);
    round_trip(100, "header");
    several_in_flight();
    misuse_and_failures();
    several_in_flight(); /* everything is usable again */
    wvds_close(conn);
    if (failures)
        return 1;
    printf("PASS\n");
    return 0;
}
