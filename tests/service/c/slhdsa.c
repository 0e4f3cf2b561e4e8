/* SLH-DSA through the C library (wvds_slhdsa_*) against the real crypto_service: run by
 * tests/service/test_slhdsa.py for each architecture.
 *
 *   slhdsa SOCKET   prints PASS, or exits 1 after reporting every failed check. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "wvds_crypto.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    wvds_conn *conn;
    wvds_options o = {.timeout_ms = 60000};
    wvds_status st = wvds_connect_ex(argv[1], &o, &conn);
    if (st) {
        fprintf(stderr, "connect: %s\n", wvds_status_name(st));
        return 1;
    }
    static uint8_t pk[64], sig[WVDS_SLHDSA_MAX_SIGNATURE_SIZE];
    size_t pk_len, sig_len;
    uint32_t key, dsa;
    st = wvds_key_generate(conn, WVDS_ALG_SLH_DSA_SHA2_128F, 0, "slh", &key, pk, sizeof pk, &pk_len);
    CHECK(st == WVDS_SUCCESS && pk_len == 32, "generate: %s, %zu-byte public key", wvds_status_name(st), pk_len);
    st = wvds_slhdsa_sign(conn, key, "fw", 2, "image", 5, sig, sizeof sig, &sig_len);
    CHECK(st == WVDS_SUCCESS && sig_len == WVDS_SLHDSA128F_SIGNATURE_SIZE, "sign: %s, %zu bytes",
          wvds_status_name(st), sig_len);
    CHECK(wvds_slhdsa_verify(conn, key, "fw", 2, "image", 5, sig, sig_len) == WVDS_SUCCESS, "verify by id");
    CHECK(wvds_slhdsa_verify_inline(conn, WVDS_ALG_SLH_DSA_SHA2_128F, pk, pk_len, "fw", 2, "image", 5, sig,
                                    sig_len) == WVDS_SUCCESS, "verify inline");
    CHECK(wvds_slhdsa_verify(conn, key, "fX", 2, "image", 5, sig, sig_len) == WVDS_SIGNATURE_INVALID, "other context");
    sig[100] ^= 1;
    CHECK(wvds_slhdsa_verify(conn, key, "fw", 2, "image", 5, sig, sig_len) == WVDS_SIGNATURE_INVALID, "modified");
    /* the library checks what it can before sending */
    CHECK(wvds_slhdsa_verify_inline(conn, WVDS_ALG_ML_DSA_44, pk, pk_len, NULL, 0, "m", 1, sig, sig_len) ==
              WVDS_ERR_ARGUMENT, "ML-DSA algorithm for an SLH-DSA verify");
    CHECK(wvds_slhdsa_verify_inline(conn, WVDS_ALG_SLH_DSA_SHAKE_256F, pk, pk_len, NULL, 0, "m", 1, sig, sig_len) ==
              WVDS_ERR_ARGUMENT, "32-byte public key for a 64-byte set");
    st = wvds_slhdsa_sign(conn, key, NULL, 0, "m", 1, sig, 100, &sig_len);
    CHECK(st == WVDS_ERR_BUFFER_TOO_SMALL, "small buffer: %s", wvds_status_name(st));
    /* each family its requests */
    static uint8_t dsa_pk[WVDS_MAX_PUBLIC_KEY_SIZE];
    st = wvds_key_generate(conn, WVDS_ALG_ML_DSA_44, 0, NULL, &dsa, dsa_pk, sizeof dsa_pk, &pk_len);
    CHECK(st == WVDS_SUCCESS, "ML-DSA key: %s", wvds_status_name(st));
    st = wvds_slhdsa_sign(conn, dsa, NULL, 0, "m", 1, sig, sizeof sig, &sig_len);
    CHECK(st == WVDS_UNSUPPORTED_ALGORITHM, "SLH-DSA sign with an ML-DSA key: %s", wvds_status_name(st));
    st = wvds_mldsa_sign(conn, key, NULL, 0, "m", 1, sig, sizeof sig, &sig_len);
    CHECK(st == WVDS_UNSUPPORTED_ALGORITHM, "ML-DSA sign with an SLH-DSA key: %s", wvds_status_name(st));
    wvds_close(conn);
    if (failures)
        return 1;
    puts("PASS");
    return 0;
}
