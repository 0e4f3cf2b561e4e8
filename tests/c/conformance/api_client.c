/* api_client: calls every function of wvds_crypto.h once or twice, in a fixed order,
 * against tests/c/fake_service.py (which checks each request against payloads.py and
 * records it; test_conformance.py then compares the record with what this program
 * asked for). Here we check what the library made of each answer.
 *
 *   api_client <socket-path>       exit status: number of failed steps (0 = all good)
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wvds_crypto.h"

static int failures;

static void step(const char *what, int ok)
{
    printf("%s %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failures++;
}

static void expect(const char *what, wvds_status got, wvds_status want)
{
    if (got != want)
        printf("  %s: got %s, want %s\n", what, wvds_status_name(got), wvds_status_name(want));
    step(what, got == want);
}

int main(int argc, char **argv)
{
    wvds_conn *c;
    wvds_options o = {.requested_slots = 3};
    wvds_status st = wvds_connect_ex(argc > 1 ? argv[1] : NULL, &o, &c);
    expect("connect", st, WVDS_SUCCESS);
    if (st != WVDS_SUCCESS)
        return 1;
    step("slots granted", wvds_conn_slots(c) == 3 && wvds_conn_client_id(c) == 77);

    static uint8_t pk_dsa[WVDS_MAX_PUBLIC_KEY_SIZE], pk_ec[128], pk_kem[WVDS_MAX_PUBLIC_KEY_SIZE], buf[8192];
    size_t pk_dsa_len, pk_ec_len, pk_kem_len, n, m;
    uint32_t aes, dsa, ec, kem, id;

    /* keys */
    expect("generate AES", wvds_key_generate(c, WVDS_ALG_AES_256_GCM, WVDS_USAGE_ENCRYPT | WVDS_USAGE_DECRYPT,
                                             "aes-key", &aes, NULL, 0, &n), WVDS_SUCCESS);
    step("AES key 1, no public key", aes == 1 && n == 0);
    expect("generate ML-DSA-44", wvds_key_generate(c, WVDS_ALG_ML_DSA_44, 0, "dsa \xE2\x82\xAC", &dsa, pk_dsa,
                                                   sizeof pk_dsa, &pk_dsa_len), WVDS_SUCCESS);
    step("ML-DSA-44 public key", dsa == 2 && pk_dsa_len == WVDS_MLDSA44_PUBLIC_KEY_SIZE);
    expect("generate P-256", wvds_key_generate(c, WVDS_ALG_ECDSA_P256, WVDS_USAGE_SIGN | WVDS_USAGE_VERIFY, NULL, &ec,
                                               pk_ec, sizeof pk_ec, &pk_ec_len), WVDS_SUCCESS);
    step("P-256 public key", ec == 3 && pk_ec_len == WVDS_ECDSA_P256_PUBLIC_KEY_SIZE);
    expect("ML-KEM-512 keygen", wvds_mlkem_keygen(c, WVDS_ALG_ML_KEM_512,
                                                  WVDS_USAGE_ENCAPS | WVDS_USAGE_DECAPS | WVDS_USAGE_RELEASE_SECRET,
                                                  "kem", &kem, pk_kem, sizeof pk_kem, &pk_kem_len), WVDS_SUCCESS);
    step("ML-KEM-512 public key", kem == 4 && pk_kem_len == WVDS_MLKEM512_PUBLIC_KEY_SIZE);

    /* AES-GCM */
    uint8_t sealed[64], plain[64];
    size_t sealed_len;
    expect("encrypt", wvds_aes_encrypt(c, aes, "hdr", 3, "hello world", 11, sealed, sizeof sealed, &sealed_len),
           WVDS_SUCCESS);
    expect("decrypt", wvds_aes_decrypt(c, aes, "hdr", 3, sealed, sealed_len, plain, sizeof plain, &n), WVDS_SUCCESS);
    step("decrypted", n == 11 && memcmp(plain, "hello world", 11) == 0);
    expect("decrypt with other AAD", wvds_aes_decrypt(c, aes, "hdX", 3, sealed, sealed_len, plain, sizeof plain, &n),
           WVDS_DECRYPTION_FAILED);

    /* ML-DSA */
    static uint8_t sig[WVDS_MAX_SIGNATURE_SIZE], ecsig[128], ecsig2[128];
    size_t sig_len, ecsig_len, ecsig2_len;
    expect("ML-DSA sign", wvds_mldsa_sign(c, dsa, "ctx", 3, "message", 7, sig, sizeof sig, &sig_len), WVDS_SUCCESS);
    step("ML-DSA-44 signature size", sig_len == WVDS_MLDSA44_SIGNATURE_SIZE);
    expect("ML-DSA verify", wvds_mldsa_verify(c, dsa, "ctx", 3, "message", 7, sig, sig_len), WVDS_SUCCESS);
    expect("ML-DSA verify inline", wvds_mldsa_verify_inline(c, WVDS_ALG_ML_DSA_44, pk_dsa, pk_dsa_len, "ctx", 3,
                                                            "message", 7, sig, sig_len), WVDS_SUCCESS);
    expect("ML-DSA verify, other context", wvds_mldsa_verify(c, dsa, NULL, 0, "message", 7, sig, sig_len),
           WVDS_SIGNATURE_INVALID);

    /* ECDSA */
    uint8_t digest[32];
    memset(digest, 0x5A, sizeof digest);
    expect("ECDSA sign", wvds_ecdsa_sign(c, ec, WVDS_HASH_SHA384, 0, "data", 4, ecsig, sizeof ecsig, &ecsig_len),
           WVDS_SUCCESS);
    expect("ECDSA sign prehashed", wvds_ecdsa_sign(c, ec, WVDS_HASH_SHA256, WVDS_ECDSA_PREHASHED, digest, 32, ecsig2,
                                                   sizeof ecsig2, &ecsig2_len), WVDS_SUCCESS);
    expect("ECDSA verify", wvds_ecdsa_verify(c, ec, WVDS_HASH_SHA384, 0, "data", 4, ecsig, ecsig_len), WVDS_SUCCESS);
    expect("ECDSA verify inline", wvds_ecdsa_verify_inline(c, WVDS_ALG_ECDSA_P256, pk_ec, pk_ec_len, WVDS_HASH_SHA256,
                                                           WVDS_ECDSA_PREHASHED, digest, 32, ecsig2, ecsig2_len),
           WVDS_SUCCESS);

    /* ML-KEM: secrets kept as AES keys on both sides ... */
    uint8_t ct[WVDS_MLKEM1024_CIPHERTEXT_SIZE], ct2[WVDS_MLKEM1024_CIPHERTEXT_SIZE], s1[32], s2[32];
    size_t ct_len, ct2_len;
    uint32_t sender, receiver;
    expect("encaps", wvds_mlkem_encaps(c, kem, 0, ct, sizeof ct, &ct_len, &sender, NULL), WVDS_SUCCESS);
    expect("decaps", wvds_mlkem_decaps(c, kem, 0, ct, ct_len, &receiver, NULL), WVDS_SUCCESS);
    step("new AES keys 5 and 6", sender == 5 && receiver == 6 && ct_len == WVDS_MLKEM512_CIPHERTEXT_SIZE);
    expect("encrypt with the encaps key", wvds_aes_encrypt(c, sender, NULL, 0, "kem works", 9, sealed, sizeof sealed,
                                                           &sealed_len), WVDS_SUCCESS);
    expect("decrypt with the decaps key", wvds_aes_decrypt(c, receiver, NULL, 0, sealed, sealed_len, plain,
                                                           sizeof plain, &n), WVDS_SUCCESS);
    step("both sides hold the same key", n == 9 && memcmp(plain, "kem works", 9) == 0);
    /* ... and returned to the caller */
    expect("encaps inline, secret returned", wvds_mlkem_encaps_inline(c, WVDS_ALG_ML_KEM_512, pk_kem, pk_kem_len,
                                                                      WVDS_KEM_RETURN_SECRET, ct2, sizeof ct2,
                                                                      &ct2_len, &id, s1), WVDS_SUCCESS);
    expect("decaps, secret returned", wvds_mlkem_decaps(c, kem, WVDS_KEM_RETURN_SECRET, ct2, ct2_len, NULL, s2),
           WVDS_SUCCESS);
    step("shared secrets agree", id == 0 && memcmp(s1, s2, 32) == 0);

    /* random */
    memset(buf, 0, 40);
    expect("random", wvds_random(c, buf, 40), WVDS_SUCCESS);
    step("random bytes arrived", memcmp(buf, buf + 20, 20) != 0);

    /* key management */
    uint8_t material[32];
    memset(material, 0x42, sizeof material);
    uint32_t imported, imported_pub;
    expect("import AES", wvds_key_import(c, WVDS_ALG_AES_256_GCM, WVDS_USAGE_ENCRYPT, WVDS_KEY_FORMAT_RAW, "imported",
                                         material, sizeof material, &imported), WVDS_SUCCESS);
    expect("import ML-DSA public key", wvds_key_import(c, WVDS_ALG_ML_DSA_44, WVDS_USAGE_VERIFY, WVDS_KEY_FORMAT_PUBLIC,
                                                       NULL, pk_dsa, pk_dsa_len, &imported_pub), WVDS_SUCCESS);
    step("imported ids 7 and 8", imported == 7 && imported_pub == 8);
    wvds_algorithm alg = WVDS_ALG_AES_256_GCM;
    expect("export public", wvds_key_export_public(c, dsa, &alg, buf, sizeof buf, &n), WVDS_SUCCESS);
    step("exported public key", alg == WVDS_ALG_ML_DSA_44 && n == pk_dsa_len && memcmp(buf, pk_dsa, n) == 0);
    expect("export", wvds_key_export(c, imported, WVDS_KEY_FORMAT_RAW, buf, sizeof buf, &n), WVDS_SUCCESS);
    step("exported material", n == 32 && memcmp(buf, material, 32) == 0);
    expect("delete", wvds_key_delete(c, imported_pub), WVDS_SUCCESS);
    expect("delete again", wvds_key_delete(c, imported_pub), WVDS_KEY_NOT_FOUND);
    wvds_key_entry entries[16];
    int more = 1;
    expect("list", wvds_key_list(c, 0, entries, 16, &n, &more), WVDS_SUCCESS);
    step("seven keys, ascending", n == 7 && more == 0 && entries[0].key_id == 1 && entries[6].key_id == 7 &&
                                      entries[1].algorithm == WVDS_ALG_ML_DSA_44);
    expect("list after 5", wvds_key_list(c, 5, entries, 16, &n, &more), WVDS_SUCCESS);
    step("two keys after 5", n == 2 && entries[0].key_id == 6);
    wvds_key_info info;
    expect("describe", wvds_key_describe(c, dsa, &info), WVDS_SUCCESS);
    step("description", info.key_id == dsa && info.algorithm == WVDS_ALG_ML_DSA_44 && info.owner_uid == getuid() &&
                            info.created == 1700000000u && strcmp(info.label, "dsa \xE2\x82\xAC") == 0);

    /* status, raw request */
    char json[256];
    expect("status", wvds_service_status(c, json, sizeof json, &n), WVDS_SUCCESS);
    step("status JSON", n == strlen(json) && strstr(json, "\"service\": \"fake\"") != NULL);
    uint8_t req[4] = {8, 0, 0, 0};
    expect("transact RANDOM", wvds_transact(c, WVDS_REQ_RANDOM, req, 4, buf, sizeof buf, &n), WVDS_SUCCESS);
    step("8 raw bytes", n == 8);

    /* stream: two chunks */
    static uint8_t data[70000], stream[72000], back[72000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13);
    expect("stream encrypt", wvds_stream_encrypt(c, aes, "s", 1, data, sizeof data, stream, sizeof stream, &n),
           WVDS_SUCCESS);
    expect("stream decrypt", wvds_stream_decrypt(c, aes, "s", 1, stream, n, back, sizeof back, &m), WVDS_SUCCESS);
    step("stream round trip", m == sizeof data && memcmp(back, data, m) == 0);

    /* SLH-DSA: the ML-DSA payloads under their own request types */
    static uint8_t pk_slh[64], slh_sig[WVDS_SLHDSA_MAX_SIGNATURE_SIZE];
    size_t pk_slh_len, slh_sig_len;
    uint32_t slh;
    expect("generate SLH-DSA-SHA2-128f", wvds_key_generate(c, WVDS_ALG_SLH_DSA_SHA2_128F, 0, "slh", &slh, pk_slh,
                                                           sizeof pk_slh, &pk_slh_len), WVDS_SUCCESS);
    step("SLH-DSA-SHA2-128f public key", pk_slh_len == 32);
    expect("SLH-DSA sign", wvds_slhdsa_sign(c, slh, "ctx", 3, "message", 7, slh_sig, sizeof slh_sig, &slh_sig_len),
           WVDS_SUCCESS);
    step("SLH-DSA-SHA2-128f signature size", slh_sig_len == WVDS_SLHDSA128F_SIGNATURE_SIZE);
    expect("SLH-DSA verify", wvds_slhdsa_verify(c, slh, "ctx", 3, "message", 7, slh_sig, slh_sig_len), WVDS_SUCCESS);
    expect("SLH-DSA verify inline, other message",
           wvds_slhdsa_verify_inline(c, WVDS_ALG_SLH_DSA_SHA2_128F, pk_slh, pk_slh_len, "ctx", 3, "messagE", 7,
                                     slh_sig, slh_sig_len), WVDS_SIGNATURE_INVALID);

    wvds_close(c);
    printf("%d failed\n", failures);
    return failures;
}
