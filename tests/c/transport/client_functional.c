/* Client checks on a working connection: argument validation (nothing reaches the
 * service), plain calls against the fake service, an oversized req_len, and many
 * threads sharing one connection. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static bool random_pattern_ok(const uint8_t *buf, size_t len)
{
    for (size_t done = 0; done < len;) { /* the library splits requests at WVDS_MAX_PAYLOAD */
        size_t n = len - done < WVDS_MAX_PAYLOAD ? len - done : WVDS_MAX_PAYLOAD;
        for (size_t i = 0; i < n; i++)
            if (buf[done + i] != (uint8_t)(i * 31 + n))
                return false;
        done += n;
    }
    return true;
}

void check_arguments(wvds_conn *conn)
{
    static uint8_t big[WVDS_MAX_PAYLOAD + 16];
    uint8_t out[256], pk[WVDS_MLDSA65_PUBLIC_KEY_SIZE] = {0}, secret[32];
    size_t n = 99;
    uint32_t id;

    CHECK(strcmp(wvds_status_name(WVDS_DECRYPTION_FAILED), "WVDS_DECRYPTION_FAILED") == 0 &&
              strcmp(wvds_status_name(WVDS_ERR_PROTOCOL), "WVDS_ERR_PROTOCOL") == 0 &&
              strcmp(wvds_status_name((wvds_status)0x77), "WVDS_UNKNOWN_STATUS") == 0,
          "status names");
    CHECK(strcmp(wvds_library_version(), WVDS_PRODUCT_VERSION) == 0, "library version");

    /* Raw request. */
    CHECK_ST(wvds_transact(NULL, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, &n), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 5, out, sizeof out, &n), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, NULL), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, big, WVDS_MAX_PAYLOAD + 1, out, sizeof out, &n),
             WVDS_PAYLOAD_TOO_LARGE);

    /* AES: sizes are checked before anything is sent, and the needed size is reported. */
    CHECK_ST(wvds_aes_encrypt(conn, 0, NULL, 0, "x", 1, out, sizeof out, &n), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_aes_encrypt(conn, KEY_AEAD, NULL, 3, "x", 1, out, sizeof out, &n), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_aes_encrypt(conn, KEY_AEAD, big, 10, big, WVDS_AES_MAX_DATA - 9, big, sizeof big, &n),
             WVDS_PAYLOAD_TOO_LARGE);
    CHECK_ST(wvds_aes_encrypt(conn, KEY_AEAD, NULL, 0, big, 100, out, 127, &n), WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 128, "needed size %zu", n);
    CHECK_ST(wvds_aes_encrypt(conn, KEY_AEAD, NULL, 0, big, 100, NULL, 0, &n), WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK_ST(wvds_aes_decrypt(conn, KEY_AEAD, NULL, 0, big, 27, out, sizeof out, &n), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_aes_decrypt(conn, KEY_AEAD, NULL, 0, big, 60, out, 31, &n), WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 32, "needed size %zu", n);

    /* Labels, usage bits, algorithms, formats. */
    char label65[66];
    memset(label65, 'a', 65);
    label65[65] = '\0';
    CHECK_ST(wvds_key_generate(conn, WVDS_ALG_AES_256_GCM, 0, label65, &id, NULL, 0, NULL), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_generate(conn, WVDS_ALG_AES_256_GCM, 0, "bad \xC3\x28 utf8", &id, NULL, 0, NULL),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_generate(conn, WVDS_ALG_AES_256_GCM, 0, "surrogate \xED\xA0\x80", &id, NULL, 0, NULL),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_generate(conn, WVDS_ALG_AES_256_GCM, 0, "overlong \xC0\xAF", &id, NULL, 0, NULL),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_generate(conn, WVDS_ALG_AES_256_GCM, 0x8000, NULL, &id, NULL, 0, NULL), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_generate(conn, (wvds_algorithm)0x77, 0, NULL, &id, NULL, 0, NULL), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_generate(conn, WVDS_ALG_AES_256_GCM, 0, NULL, NULL, NULL, 0, NULL), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_generate(conn, WVDS_ALG_ML_DSA_65, 0, NULL, &id, pk, sizeof pk, NULL), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_mlkem_keygen(conn, WVDS_ALG_ML_DSA_65, 0, NULL, &id, NULL, 0, NULL), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_import(conn, WVDS_ALG_AES_256_GCM, 0, (wvds_key_format)9, NULL, big, 32, &id),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_import(conn, WVDS_ALG_AES_256_GCM, 0, WVDS_KEY_FORMAT_RAW, NULL, big, 0, &id),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_export(conn, 5, (wvds_key_format)4, out, sizeof out, &n), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_delete(conn, 0), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_describe(conn, 5, NULL), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_key_list(conn, 0, NULL, 5, &n, (int *)out), WVDS_ERR_ARGUMENT);

    /* Signatures: inline keys must fit their algorithm; ECDSA hash and flags are known values. */
    CHECK_ST(wvds_mldsa_verify_inline(conn, WVDS_ALG_ML_KEM_768, pk, sizeof pk, NULL, 0, "m", 1, "s", 1),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_mldsa_verify_inline(conn, WVDS_ALG_ML_DSA_65, pk, sizeof pk - 1, NULL, 0, "m", 1, "s", 1),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_mldsa_verify(conn, 7, NULL, 0, "m", 1, NULL, 0), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_mldsa_sign(conn, 7, big, 256, "m", 1, out, sizeof out, &n), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_mldsa_sign(conn, 7, NULL, 0, big, WVDS_MAX_PAYLOAD, out, sizeof out, &n), WVDS_PAYLOAD_TOO_LARGE);
    CHECK_ST(wvds_ecdsa_sign(conn, 7, (wvds_hash_alg)9, 0, "d", 1, out, sizeof out, &n), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_ecdsa_sign(conn, 7, WVDS_HASH_SHA256, 0x2, "d", 1, out, sizeof out, &n), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_ecdsa_sign(conn, 7, WVDS_HASH_SHA384, WVDS_ECDSA_PREHASHED, big, 32, out, sizeof out, &n),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_ecdsa_verify_inline(conn, WVDS_ALG_ECDSA_P256, pk, 64, WVDS_HASH_DEFAULT, 0, "d", 1, "s", 1),
             WVDS_ERR_ARGUMENT);

    /* ML-KEM: the outputs the flags ask for must be there. */
    CHECK_ST(wvds_mlkem_encaps(conn, 7, WVDS_KEM_RETURN_SECRET, out, sizeof out, &n, &id, NULL), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_mlkem_encaps(conn, 7, 0, out, sizeof out, &n, NULL, secret), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_mlkem_encaps(conn, 7, 0x80, out, sizeof out, &n, &id, secret), WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_mlkem_encaps_inline(conn, WVDS_ALG_ML_KEM_768, pk, 100, 0, out, sizeof out, &n, &id, NULL),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_mlkem_decaps(conn, 7, 0, NULL, 0, &id, NULL), WVDS_ERR_ARGUMENT);

    /* Streams. */
    CHECK_ST(wvds_stream_encrypt(conn, KEY_AEAD, big, WVDS_STREAM_MAX_AAD + 1, "x", 1, big, sizeof big, &n),
             WVDS_ERR_ARGUMENT);
    CHECK_ST(wvds_stream_encrypt(conn, KEY_AEAD, NULL, 0, "x", 1, out, 10, &n), WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == wvds_stream_sealed_size(1), "stream needed size %zu", n);
    CHECK(wvds_stream_sealed_size(0) == 16 + 32 && wvds_stream_sealed_size(WVDS_STREAM_CHUNK_SIZE) ==
                                                       16 + 32 + WVDS_STREAM_CHUNK_SIZE &&
              wvds_stream_sealed_size(WVDS_STREAM_CHUNK_SIZE + 1) == 16 + 64 + WVDS_STREAM_CHUNK_SIZE + 1 &&
              wvds_stream_sealed_size(SIZE_MAX) == SIZE_MAX,
          "stream sizes");
}

void check_basic_calls(wvds_conn *conn)
{
    static uint8_t buf[150000];
    CHECK_ST(wvds_random(conn, buf, 100), WVDS_SUCCESS);
    CHECK(random_pattern_ok(buf, 100), "random bytes as served");
    CHECK_ST(wvds_random(conn, buf, sizeof buf), WVDS_SUCCESS);
    CHECK(random_pattern_ok(buf, sizeof buf), "150000 random bytes in three requests");
    CHECK_ST(wvds_random(conn, NULL, 0), WVDS_SUCCESS);

    char json[64];
    size_t n;
    CHECK_ST(wvds_service_status(conn, json, sizeof json, &n), WVDS_SUCCESS);
    CHECK(n == 13 && strcmp(json, "{\"fake\":true}") == 0, "status JSON '%s'", json);
    CHECK_ST(wvds_service_status(conn, json, 13, &n), WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 14, "room for the NUL is asked for (%zu)", n);

    uint8_t req[4] = {16, 0, 0, 0}, resp[32];
    CHECK_ST(wvds_transact(conn, WVDS_REQ_RANDOM, req, 4, resp, sizeof resp, &n), WVDS_SUCCESS);
    CHECK(n == 16 && random_pattern_ok(resp, 16), "raw RANDOM");
    CHECK_ST(wvds_transact(conn, WVDS_REQ_RANDOM, req, 4, resp, 15, &n), WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 16, "raw needed size");
    CHECK_ST(wvds_transact(conn, 0x7E, NULL, 0, resp, sizeof resp, &n), WVDS_INVALID_TYPE);

    const char msg[] = "sensor 42: 21.5 C", aad[] = "batch 7";
    uint8_t sealed[64], plain[64];
    size_t sealed_len, plain_len;
    CHECK_ST(wvds_aes_encrypt(conn, KEY_AEAD, aad, 7, msg, sizeof msg, sealed, sizeof sealed, &sealed_len),
             WVDS_SUCCESS);
    CHECK(sealed_len == sizeof msg + 28, "sealed length");
    CHECK_ST(wvds_aes_decrypt(conn, KEY_AEAD, aad, 7, sealed, sealed_len, plain, sizeof plain, &plain_len),
             WVDS_SUCCESS);
    CHECK(plain_len == sizeof msg && memcmp(plain, msg, sizeof msg) == 0, "AES round trip");
    CHECK_ST(wvds_aes_decrypt(conn, KEY_AEAD, "batch 8", 7, sealed, sealed_len, plain, sizeof plain, &plain_len),
             WVDS_DECRYPTION_FAILED);
    CHECK(plain_len == 0, "no length reported on failure");
    CHECK_ST(wvds_aes_encrypt(conn, KEY_AEAD, NULL, 0, NULL, 0, sealed, sizeof sealed, &sealed_len), WVDS_SUCCESS);
    CHECK(sealed_len == 28, "empty plaintext seals to nonce + tag");
}

/* Frames whose req_len lies: the service copies at most REQ_AREA bytes, and no fewer than
 * req_len says, and reports how many it saw (the fake service answers INVALID_HEADER). */
void check_oversized_req_len(wvds_conn *conn)
{
    static const uint32_t lies[] = {0xFFFFFFFFu, WVDS_SLOT_REQ_AREA + 1, 3};
    static const uint32_t seen[] = {WVDS_SLOT_REQ_AREA, WVDS_SLOT_REQ_AREA, 3};
    for (size_t i = 0; i < 3; i++) {
        wvds_call call;
        CHECK_ST(wvds_call_begin(conn, &call), WVDS_SUCCESS);
        wvds_put_u32(&call, 16);
        uint8_t *f = call.frame;
        f[0] = WVDS_REQUEST_MAGIC, f[1] = WVDS_PROTOCOL_VERSION, f[2] = WVDS_REQ_RANDOM, f[3] = 0;
        f[4] = 4, f[5] = f[6] = f[7] = 0;
        CHECK(wvds_slot_submit(&conn->slots, call.slot, lies[i]) == 0, "submit");
        call.submitted = true;
        wvds_status st = wvds_call_wait(&call);
        CHECK_ST(st, WVDS_INVALID_HEADER);
        wvds_reader r = wvds_call_reader(&call);
        uint32_t got = wvds_rd_u32(&r);
        CHECK(wvds_rd_end(&r) && got == seen[i], "req_len %u: service saw %u bytes, want %u", lies[i], got, seen[i]);
        wvds_call_end(&call);
    }
}

/* --- many threads, one connection ---------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 150

static void *hammer(void *arg)
{
    wvds_conn *conn = arg;
    uint8_t buf[3000], sealed[3100], plain[3000];
    for (int i = 0; i < ROUNDS; i++) {
        size_t len = (size_t)(i * 37 % 2990) + 1, n;
        if (i % 2 == 0) {
            CHECK_ST(wvds_random(conn, buf, len), WVDS_SUCCESS);
            CHECK(random_pattern_ok(buf, len), "concurrent RANDOM answer belongs to this request");
            continue;
        }
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)(k ^ (size_t)pthread_self() ^ (size_t)i);
        size_t sealed_len;
        CHECK_ST(wvds_aes_encrypt(conn, KEY_AEAD, &i, sizeof i, buf, len, sealed, sizeof sealed, &sealed_len),
                 WVDS_SUCCESS);
        CHECK_ST(wvds_aes_decrypt(conn, KEY_AEAD, &i, sizeof i, sealed, sealed_len, plain, sizeof plain, &n),
                 WVDS_SUCCESS);
        CHECK(n == len && memcmp(plain, buf, len) == 0, "concurrent AES round trip");
    }
    return NULL;
}

void check_concurrency(wvds_conn *conn)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer, conn);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}
