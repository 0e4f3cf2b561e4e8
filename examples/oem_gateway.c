/* oem_gateway.c — what an OEM gateway does with the WvdS Crypto Service.
 *
 * Simulated sensor readings are encrypted with AES-256-GCM and signed with ML-DSA-65;
 * the receiving side verifies and decrypts them. Then an ML-KEM-768 round trip agrees
 * on a fresh AES key on both sides without the shared secret ever leaving the service,
 * a batch of readings is produced straight into shared memory and encrypted there (the
 * zero-copy job API, the fastest way for bulk data), and a 200 KB log goes through the
 * chunked stream API. Every key the program creates is deleted at the end.
 *
 *   ./oem_gateway [socket-path]      (default: $WVDS_SOCKET, then /run/wvds/crypto.sock)
 *
 * Exit status: 0 when every step succeeded, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wvds_crypto.h"

#define MAX_KEYS 8

static uint32_t created[MAX_KEYS];
static int n_created;

/* Reports a failed step; returns non-zero so callers can write `if (failed(...)) goto out;`. */
static int failed(const char *step, wvds_status st)
{
    if (st == WVDS_SUCCESS)
        return 0;
    fprintf(stderr, "FAILED: %s: %s (0x%x)\n", step, wvds_status_name(st), (unsigned)st);
    return 1;
}

static void remember(uint32_t key_id)
{
    if (key_id && n_created < MAX_KEYS)
        created[n_created++] = key_id;
}

/* Ten readings of a simulated sensor as text, e.g. "t=0 temp=21.50C rh=40.0% p=1013.2hPa\n". */
static size_t sensor_readings(char *buf, size_t cap)
{
    size_t n = 0;
    for (int t = 0; t < 10 && n < cap; t++) {
        int w = snprintf(buf + n, cap - n, "t=%d temp=%.2fC rh=%.1f%% p=%.1fhPa\n", t, 21.5 + 0.25 * t,
                         40.0 + t, 1013.2 - 0.1 * t);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
    return n;
}

static int encrypt_sign_verify_decrypt(wvds_conn *conn)
{
    char readings[1024];
    size_t readings_len = sensor_readings(readings, sizeof readings);
    const char aad[] = "gateway-17/batch-0001";
    uint32_t aes_key, dsa_key;
    uint8_t dsa_pub[WVDS_MLDSA65_PUBLIC_KEY_SIZE];
    size_t dsa_pub_len;

    if (failed("generate AES-256-GCM key", wvds_key_generate(conn, WVDS_ALG_AES_256_GCM, 0, "oem-gateway data", &aes_key,
                                                             NULL, 0, NULL)))
        return 1;
    remember(aes_key);
    if (failed("generate ML-DSA-65 key", wvds_key_generate(conn, WVDS_ALG_ML_DSA_65, 0, "oem-gateway signing",
                                                           &dsa_key, dsa_pub, sizeof dsa_pub, &dsa_pub_len)))
        return 1;
    remember(dsa_key);
    printf("keys: AES 0x%08x, ML-DSA-65 0x%08x (public key %zu bytes)\n", aes_key, dsa_key, dsa_pub_len);

    /* Gateway side: encrypt, then sign what is sent (the sealed bytes). */
    uint8_t sealed[sizeof readings + WVDS_AES_SEALED_OVERHEAD];
    size_t sealed_len;
    if (failed("AES-256-GCM encrypt", wvds_aes_encrypt(conn, aes_key, aad, strlen(aad), readings, readings_len, sealed,
                                                       sizeof sealed, &sealed_len)))
        return 1;
    uint8_t sig[WVDS_MLDSA65_SIGNATURE_SIZE];
    size_t sig_len;
    if (failed("ML-DSA-65 sign", wvds_mldsa_sign(conn, dsa_key, NULL, 0, sealed, sealed_len, sig, sizeof sig, &sig_len)))
        return 1;
    printf("encrypted %zu bytes of readings -> %zu sealed bytes, signature %zu bytes\n", readings_len, sealed_len,
           sig_len);

    /* Receiving side: verify with the public key alone, then decrypt. */
    if (failed("ML-DSA-65 verify", wvds_mldsa_verify_inline(conn, WVDS_ALG_ML_DSA_65, dsa_pub, dsa_pub_len, NULL, 0,
                                                            sealed, sealed_len, sig, sig_len)))
        return 1;
    sealed[WVDS_GCM_NONCE_SIZE] ^= 1; /* a tampered message must not verify */
    wvds_status st = wvds_mldsa_verify(conn, dsa_key, NULL, 0, sealed, sealed_len, sig, sig_len);
    sealed[WVDS_GCM_NONCE_SIZE] ^= 1;
    if (st != WVDS_SIGNATURE_INVALID) {
        fprintf(stderr, "FAILED: tampered message gave %s, expected WVDS_SIGNATURE_INVALID\n", wvds_status_name(st));
        return 1;
    }
    char plain[sizeof readings];
    size_t plain_len;
    if (failed("AES-256-GCM decrypt", wvds_aes_decrypt(conn, aes_key, aad, strlen(aad), sealed, sealed_len, plain,
                                                       sizeof plain, &plain_len)))
        return 1;
    if (plain_len != readings_len || memcmp(plain, readings, readings_len) != 0) {
        fprintf(stderr, "FAILED: decrypted readings differ from the originals\n");
        return 1;
    }
    printf("signature verified (tampered copy rejected), readings decrypted intact:\n%.*s", (int)plain_len, plain);
    return 0;
}

/* ML-KEM-768: each side ends up with an AES key id; the keys are equal, the secret stayed inside. */
static int kem_round_trip(wvds_conn *conn)
{
    uint32_t kem_key, sender_aes, receiver_aes;
    uint8_t ct[WVDS_MLKEM768_CIPHERTEXT_SIZE];
    size_t ct_len;
    if (failed("ML-KEM-768 keygen", wvds_mlkem_keygen(conn, WVDS_ALG_ML_KEM_768, 0, "oem-gateway kem", &kem_key, NULL,
                                                      0, NULL)))
        return 1;
    remember(kem_key);
    if (failed("ML-KEM-768 encaps", wvds_mlkem_encaps(conn, kem_key, 0, ct, sizeof ct, &ct_len, &sender_aes, NULL)))
        return 1;
    remember(sender_aes);
    if (failed("ML-KEM-768 decaps", wvds_mlkem_decaps(conn, kem_key, 0, ct, ct_len, &receiver_aes, NULL)))
        return 1;
    remember(receiver_aes);

    const char msg[] = "firmware manifest v42";
    uint8_t sealed[sizeof msg + WVDS_AES_SEALED_OVERHEAD];
    char back[sizeof msg];
    size_t sealed_len, back_len;
    if (failed("encrypt with the encapsulated key", wvds_aes_encrypt(conn, sender_aes, NULL, 0, msg, sizeof msg, sealed,
                                                                     sizeof sealed, &sealed_len)) ||
        failed("decrypt with the decapsulated key", wvds_aes_decrypt(conn, receiver_aes, NULL, 0, sealed, sealed_len,
                                                                     back, sizeof back, &back_len)))
        return 1;
    if (back_len != sizeof msg || memcmp(back, msg, sizeof msg) != 0) {
        fprintf(stderr, "FAILED: ML-KEM round trip: message differs\n");
        return 1;
    }
    printf("ML-KEM-768: ciphertext %zu bytes; AES keys 0x%08x (encaps) and 0x%08x (decaps) agree\n", ct_len,
           sender_aes, receiver_aes);
    return 0;
}

/* Zero-copy: the readings are written straight into the shared memory the service reads,
 * and the sealed batch is used where the service wrote it (here: decrypted again to check). */
static int zero_copy_batch(wvds_conn *conn)
{
    uint32_t key = created[0]; /* the AES data key */
    const char aad[] = "gateway-17/batch-0002";
    wvds_aes_job *job;
    uint8_t *in;
    size_t cap, sealed_len, back_len;
    const uint8_t *sealed;
    char back[1024];
    if (failed("zero-copy begin", wvds_aes_job_begin(conn, WVDS_REQ_AES_ENCRYPT, key, aad, sizeof aad - 1, &job, &in,
                                                     &cap)))
        return 1;
    size_t n = sensor_readings((char *)in, cap < sizeof back ? cap : sizeof back); /* produced in place */
    int rc = failed("zero-copy submit", wvds_aes_job_submit(job, n)) ||
             failed("zero-copy wait", wvds_aes_job_wait(job, &sealed, &sealed_len)) ||
             failed("zero-copy check", wvds_aes_decrypt(conn, key, aad, sizeof aad - 1, sealed, sealed_len, back,
                                                        sizeof back, &back_len));
    wvds_aes_job_end(job); /* always: wipes the plaintext, frees the slot */
    if (!rc)
        printf("zero-copy: %zu bytes of readings sealed in shared memory (%zu bytes), decrypted back\n", back_len,
               sealed_len);
    return rc;
}

/* Larger data than one request carries: the stream API chunks and binds it. */
static int stream_round_trip(wvds_conn *conn)
{
    uint32_t key = created[0]; /* the AES data key */
    size_t len = 200 * 1000;
    size_t sealed_cap = wvds_stream_sealed_size(len);
    char *log = malloc(len), *back = malloc(len);
    uint8_t *sealed = malloc(sealed_cap);
    int rc = 1;
    size_t sealed_len, back_len;
    if (!log || !back || !sealed) {
        fprintf(stderr, "FAILED: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < len; i++)
        log[i] = (char)('a' + i % 26);
    if (failed("stream encrypt", wvds_stream_encrypt(conn, key, "log", 3, log, len, sealed, sealed_cap, &sealed_len)) ||
        failed("stream decrypt", wvds_stream_decrypt(conn, key, "log", 3, sealed, sealed_len, back, len, &back_len)))
        goto out;
    if (back_len != len || memcmp(back, log, len) != 0) {
        fprintf(stderr, "FAILED: stream round trip: data differs\n");
        goto out;
    }
    printf("stream: %zu bytes -> %zu sealed bytes and back\n", len, sealed_len);
    rc = 0;
out:
    free(log);
    free(back);
    free(sealed);
    return rc;
}

int main(int argc, char **argv)
{
    const char *socket_path = argc > 1 ? argv[1] : NULL; /* NULL: $WVDS_SOCKET or the default */
    wvds_conn *conn;
    wvds_status st = wvds_connect(socket_path, &conn);
    if (failed("connect", st))
        return 1;
    printf("connected: library %s, client id %u, %u slots\n", wvds_library_version(), wvds_conn_client_id(conn),
           wvds_conn_slots(conn));

    int rc = encrypt_sign_verify_decrypt(conn) || kem_round_trip(conn) || zero_copy_batch(conn) ||
             stream_round_trip(conn);

    for (int i = n_created - 1; i >= 0; i--)
        if (failed("delete key", wvds_key_delete(conn, created[i])))
            rc = 1;
    wvds_close(conn);
    printf("%s\n", rc ? "oem_gateway: FAILED" : "oem_gateway: all steps succeeded");
    return rc ? 1 : 0;
}
