/* Drives every function of libl4re_crypto_service against a service that answers with
 * malformed, truncated, lying and random responses (tests/hostile/test_clib_hostile_service.py).
 *
 * Usage: clib_fuzz_client SOCKET ITERATIONS SEED
 *
 * Each iteration calls one library function with small or adequate output buffers. Every output
 * buffer is allocated with exactly its declared capacity, so under -fsanitize=address any write
 * past it aborts the program. Checked after every call: the status is a known one, and every
 * output length the library reports fits the buffer. Prints "PASS <calls> <statuses...>" at the end. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wvds_crypto.h"

static uint64_t rng;

static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static unsigned counts[0x110];

static void fail(const char *what, long a, long b)
{
    fprintf(stderr, "FAIL %s (%ld, %ld)\n", what, a, b);
    exit(1);
}

static void check(const char *fn, wvds_status st)
{
    int known = (st >= 0 && st <= 0x11) || (st >= WVDS_ERR_CONNECT && st <= WVDS_ERR_SYSTEM);
    if (!known)
        fail(fn, (long)st, 0);
    counts[st < 0x110 ? st : 0x10f]++;
}

static void check_len(const char *fn, wvds_status st, size_t len, size_t cap)
{
    check(fn, st);
    if (st == WVDS_SUCCESS && len > cap)
        fail(fn, (long)len, (long)cap);
}

/* A capacity that is sometimes too small, sometimes just right, sometimes generous. */
static size_t pick_cap(size_t right)
{
    switch (next() % 4) {
    case 0: return next() % (right + 1);
    case 1: return right;
    default: return right + next() % 4096;
    }
}

static void *out_buf(size_t cap)
{
    return malloc(cap ? cap : 1); /* exactly cap: ASan catches anything written past it */
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    long iterations = strtol(argv[2], NULL, 10);
    rng = strtoull(argv[3], NULL, 10) * 2654435761u + 1;
    wvds_options opts = {.timeout_ms = 3000, .spin_us = WVDS_NO_SPIN};
    wvds_conn *conn = NULL;
    wvds_status st = wvds_connect_ex(argv[1], &opts, &conn);
    if (st != WVDS_SUCCESS)
        fail("connect", st, 0);
    static const wvds_algorithm algs[] = {WVDS_ALG_AES_256_GCM, WVDS_ALG_ML_DSA_44, WVDS_ALG_ML_DSA_65,
                                          WVDS_ALG_ML_KEM_768, WVDS_ALG_ECDSA_P256, WVDS_ALG_ML_KEM_512};
    uint8_t input[8192];
    for (size_t i = 0; i < sizeof input; i++)
        input[i] = (uint8_t)(i * 31 + 7);
    for (long it = 0; it < iterations; it++) {
        uint32_t key = 1 + next() % 8; /* the fake service numbers its keys from 1 */
        size_t n = next() % 600, cap, len = 0;
        void *out;
        uint32_t id = 0, new_id = 0;
        uint8_t secret[WVDS_SHARED_SECRET_SIZE];
        wvds_algorithm alg = algs[next() % (sizeof algs / sizeof algs[0])];
        switch (next() % 22) {
        case 0:
            cap = pick_cap(WVDS_MAX_PUBLIC_KEY_SIZE), out = out_buf(cap);
            st = wvds_key_generate(conn, alg, 0, "fuzz", &id, out, cap, &len);
            check_len("key_generate", st, len, cap), free(out);
            break;
        case 1:
            cap = pick_cap(n + WVDS_AES_SEALED_OVERHEAD), out = out_buf(cap);
            st = wvds_aes_encrypt(conn, key, input, next() % 32, input, n, out, cap, &len);
            check_len("aes_encrypt", st, len, cap), free(out);
            break;
        case 2:
            cap = pick_cap(n), out = out_buf(cap);
            st = wvds_aes_decrypt(conn, key, input, next() % 32, input, n + 28, out, cap, &len);
            check_len("aes_decrypt", st, len, cap), free(out);
            break;
        case 3:
            cap = pick_cap(WVDS_MAX_SIGNATURE_SIZE), out = out_buf(cap);
            st = wvds_mldsa_sign(conn, key, input, next() % 8, input, n, out, cap, &len);
            check_len("mldsa_sign", st, len, cap), free(out);
            break;
        case 4:
            check("mldsa_verify", wvds_mldsa_verify(conn, key, NULL, 0, input, n, input, WVDS_MLDSA44_SIGNATURE_SIZE));
            break;
        case 5:
            check("mldsa_verify_inline", wvds_mldsa_verify_inline(conn, WVDS_ALG_ML_DSA_44, input,
                                                                  WVDS_MLDSA44_PUBLIC_KEY_SIZE, NULL, 0, input, n,
                                                                  input, WVDS_MLDSA44_SIGNATURE_SIZE));
            break;
        case 6:
            cap = pick_cap(WVDS_ECDSA_P384_MAX_SIGNATURE_SIZE), out = out_buf(cap);
            st = wvds_ecdsa_sign(conn, key, WVDS_HASH_DEFAULT, 0, input, n, out, cap, &len);
            check_len("ecdsa_sign", st, len, cap), free(out);
            break;
        case 7:
            check("ecdsa_verify", wvds_ecdsa_verify(conn, key, WVDS_HASH_DEFAULT, 0, input, n, input, 70));
            break;
        case 8:
            cap = pick_cap(WVDS_MLKEM1024_PUBLIC_KEY_SIZE), out = out_buf(cap);
            st = wvds_mlkem_keygen(conn, WVDS_ALG_ML_KEM_768, 0, NULL, &id, out, cap, &len);
            check_len("mlkem_keygen", st, len, cap), free(out);
            break;
        case 9:
            cap = pick_cap(WVDS_MLKEM1024_CIPHERTEXT_SIZE), out = out_buf(cap);
            st = wvds_mlkem_encaps(conn, key, next() % 2, out, cap, &len, &new_id, secret);
            check_len("mlkem_encaps", st, len, cap), free(out);
            break;
        case 10:
            cap = pick_cap(WVDS_MLKEM768_CIPHERTEXT_SIZE), out = out_buf(cap);
            st = wvds_mlkem_encaps_inline(conn, WVDS_ALG_ML_KEM_768, input, WVDS_MLKEM768_PUBLIC_KEY_SIZE,
                                          WVDS_KEM_RETURN_SECRET, out, cap, &len, &new_id, secret);
            check_len("mlkem_encaps_inline", st, len, cap), free(out);
            break;
        case 11:
            check("mlkem_decaps", wvds_mlkem_decaps(conn, key, next() % 2, input, WVDS_MLKEM768_CIPHERTEXT_SIZE,
                                                    &new_id, secret));
            break;
        case 12:
            cap = next() % 3000, out = out_buf(cap);
            check("random", wvds_random(conn, out, cap)), free(out);
            break;
        case 13:
            check("key_import", wvds_key_import(conn, WVDS_ALG_AES_256_GCM, 0, WVDS_KEY_FORMAT_RAW, "imp", input, 32,
                                                &id));
            break;
        case 14: {
            wvds_algorithm a;
            cap = pick_cap(WVDS_MAX_PUBLIC_KEY_SIZE), out = out_buf(cap);
            st = wvds_key_export_public(conn, key, next() % 2 ? &a : NULL, out, cap, &len);
            check_len("key_export_public", st, len, cap), free(out);
            break;
        }
        case 15:
            cap = pick_cap(64), out = out_buf(cap);
            st = wvds_key_export(conn, key, (wvds_key_format)(next() % 4), out, cap, &len);
            check_len("key_export", st, len, cap), free(out);
            break;
        case 16:
            check("key_delete", wvds_key_delete(conn, 9 + next() % 100));
            break;
        case 17: {
            size_t entries_cap = next() % 20, count = 0;
            int more = 0;
            wvds_key_entry *entries = malloc((entries_cap ? entries_cap : 1) * sizeof *entries);
            st = wvds_key_list(conn, 0, entries, entries_cap, &count, &more);
            check_len("key_list", st, count, entries_cap), free(entries);
            break;
        }
        case 18: {
            wvds_key_info *info = malloc(sizeof *info);
            st = wvds_key_describe(conn, key, info);
            check("key_describe", st);
            if (st == WVDS_SUCCESS && strnlen(info->label, sizeof info->label) > WVDS_MAX_LABEL_SIZE)
                fail("key_describe label not terminated", 0, 0);
            free(info);
            break;
        }
        case 19:
            cap = pick_cap(512), out = out_buf(cap);
            st = wvds_service_status(conn, out, cap, &len);
            check_len("service_status", st, len, cap);
            if (st == WVDS_SUCCESS && (len >= cap || ((char *)out)[len] != 0))
                fail("service_status not NUL-terminated", (long)len, (long)cap);
            free(out);
            break;
        case 20: {
            size_t plain = next() % 2000, scap = pick_cap(wvds_stream_sealed_size(plain));
            out = out_buf(scap);
            st = wvds_stream_encrypt(conn, key, NULL, 0, input, plain, out, scap, &len);
            check_len("stream_encrypt", st, len, scap);
            if (st == WVDS_SUCCESS) {
                size_t pcap = pick_cap(len), plen = 0;
                void *pt = out_buf(pcap);
                check_len("stream_decrypt", wvds_stream_decrypt(conn, key, NULL, 0, out, len, pt, pcap, &plen),
                          plen, pcap);
                free(pt);
            }
            free(out);
            break;
        }
        default: {
            uint8_t type = (uint8_t)(next() % 0x60);
            cap = next() % 70000, out = out_buf(cap);
            st = wvds_transact(conn, type, input, n, out, cap, &len);
            check_len("transact", st, len, cap), free(out);
            break;
        }
        }
    }
    wvds_close(conn);
    printf("PASS %ld", iterations);
    for (int s = 0; s < 0x110; s++)
        if (counts[s])
            printf(" %s=%u", wvds_status_name((wvds_status)s), counts[s]);
    printf("\n");
    return 0;
}
