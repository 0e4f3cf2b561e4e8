/* Responses that break the protocol, each queued through the side channel and answered
 * by the fake service to the next request: every one must give WVDS_ERR_PROTOCOL (or
 * the documented status), never a crash or an overflow, and leave the connection usable. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int g_canned_fd;

typedef struct frame {
    uint8_t b[CANNED_MAX];
    uint32_t n;
} frame;

static void begin_frame(frame *f, uint8_t status)
{
    f->b[0] = WVDS_RESPONSE_MAGIC, f->b[1] = WVDS_PROTOCOL_VERSION, f->b[2] = status, f->b[3] = 0;
    f->n = WVDS_HEADER_SIZE;
}

static void add(frame *f, const void *p, uint32_t n)
{
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void add_u8(frame *f, uint8_t v)
{
    add(f, &v, 1);
}

static void add_u16(frame *f, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    add(f, b, 2);
}

static void add_u32(frame *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    add(f, b, 4);
}

static void add_fill(frame *f, uint8_t byte, uint32_t n)
{
    memset(f->b + f->n, byte, n);
    f->n += n;
}

/* Queues f (its header length set to match unless keep_len) for the next request. */
static void queue(frame *f, uint32_t len_word_override, int keep_len)
{
    if (!keep_len) {
        uint32_t p = f->n - WVDS_HEADER_SIZE;
        f->b[4] = (uint8_t)p, f->b[5] = (uint8_t)(p >> 8), f->b[6] = (uint8_t)(p >> 16), f->b[7] = (uint8_t)(p >> 24);
    }
    uint8_t msg[sizeof(canned_header) + CANNED_MAX];
    canned_header h = {f->n, len_word_override};
    memcpy(msg, &h, sizeof h);
    memcpy(msg + sizeof h, f->b, f->n);
    CHECK(write(g_canned_fd, msg, sizeof h + f->n) == (ssize_t)(sizeof h + f->n), "queue canned frame");
}

static frame F;

static void check_frame_errors(wvds_conn *conn)
{
    uint8_t out[64];
    size_t n;
    /* length word shorter than a header, or past the response area */
    begin_frame(&F, WVDS_SUCCESS);
    queue(&F, 4, 0);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    queue(&F, WVDS_SLOT_RESP_AREA + 1, 0);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    queue(&F, 0xFFFFFFFFu, 0);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    /* header fields */
    begin_frame(&F, WVDS_SUCCESS);
    F.b[0] = WVDS_REQUEST_MAGIC;
    queue(&F, 0, 0);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    F.b[1] = 2;
    queue(&F, 0, 0);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    begin_frame(&F, 0x7F);
    queue(&F, 0, 0);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_fill(&F, 'x', 10);
    F.b[4] = 11; /* says 11 payload bytes, 10 follow */
    queue(&F, 0, 1);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_fill(&F, 'x', 10);
    F.b[6] = 1; /* a length word far beyond the frame */
    queue(&F, 0, 1);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_STATUS, NULL, 0, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    /* an error status with a message: transact passes both on */
    begin_frame(&F, WVDS_KEY_NOT_FOUND);
    add(&F, "no such key", 11);
    queue(&F, 0, 0);
    CHECK_ST(wvds_transact(conn, WVDS_REQ_KEY_DELETE, "\x05\0\0\0", 4, out, sizeof out, &n), WVDS_KEY_NOT_FOUND);
    CHECK(n == 11 && memcmp(out, "no such key", 11) == 0, "error payload copied");
}

static void check_crypto_responses(wvds_conn *conn)
{
    uint8_t out[256], sig[16], secret[32];
    size_t n;
    uint32_t id;
    begin_frame(&F, WVDS_SUCCESS); /* encrypt: one byte short */
    add_fill(&F, 0, 5 + 27);
    queue(&F, 0, 0);
    CHECK_ST(wvds_aes_encrypt(conn, KEY_AEAD, NULL, 0, "hello", 5, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    CHECK(n == 0, "no length on a protocol error");
    begin_frame(&F, WVDS_SUCCESS); /* decrypt: one byte long */
    add_fill(&F, 0, 6);
    queue(&F, 0, 0);
    CHECK_ST(wvds_aes_decrypt(conn, KEY_AEAD, NULL, 0, out, 5 + 28, out + 64, 100, &n), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS); /* sign: empty signature */
    queue(&F, 0, 0);
    CHECK_ST(wvds_mldsa_sign(conn, 7, NULL, 0, "m", 1, sig, sizeof sig, &n), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS); /* sign: more than the caller's buffer */
    add_fill(&F, 0x55, 100);
    queue(&F, 0, 0);
    memset(sig, 0, sizeof sig);
    CHECK_ST(wvds_mldsa_sign(conn, 7, NULL, 0, "m", 1, sig, sizeof sig, &n), WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 100 && sig[0] == 0, "needed size reported, buffer untouched");
    begin_frame(&F, WVDS_SUCCESS); /* verify: SUCCESS carries no payload */
    add_u8(&F, 1);
    queue(&F, 0, 0);
    CHECK_ST(wvds_mldsa_verify(conn, 7, NULL, 0, "m", 1, "s", 1), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SIGNATURE_INVALID);
    queue(&F, 0, 0);
    CHECK_ST(wvds_ecdsa_verify(conn, 7, WVDS_HASH_DEFAULT, 0, "m", 1, "s", 1), WVDS_SIGNATURE_INVALID);

    /* KeyCreatedResponse */
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 0);
    add_u16(&F, 0);
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_generate(conn, WVDS_ALG_AES_256_GCM, 0, NULL, &id, NULL, 0, NULL), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 9);
    add_u16(&F, 5); /* an ML-KEM-512 public key is 800 bytes, not 5 */
    add_fill(&F, 1, 5);
    queue(&F, 0, 0);
    CHECK_ST(wvds_mlkem_keygen(conn, WVDS_ALG_ML_KEM_512, 0, NULL, &id, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 9);
    add_u16(&F, 0);
    add_u8(&F, 0); /* trailing byte */
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_generate(conn, WVDS_ALG_AES_256_GCM, 0, NULL, &id, NULL, 0, NULL), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 0x1234);
    add_u16(&F, WVDS_MLKEM512_PUBLIC_KEY_SIZE);
    add_fill(&F, 0xAB, WVDS_MLKEM512_PUBLIC_KEY_SIZE);
    queue(&F, 0, 0);
    CHECK_ST(wvds_mlkem_keygen(conn, WVDS_ALG_ML_KEM_512, 0, "k", &id, out, sizeof out, &n),
             WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK(id == 0x1234 && n == WVDS_MLKEM512_PUBLIC_KEY_SIZE, "key id set even when the public key does not fit");
    queue(&F, 0, 0);
    CHECK_ST(wvds_mlkem_keygen(conn, WVDS_ALG_ML_KEM_512, 0, "k", &id, NULL, 0, &n), WVDS_SUCCESS);
    CHECK(id == 0x1234 && n == WVDS_MLKEM512_PUBLIC_KEY_SIZE, "public key not wanted: length only");

    /* MlkemEncapsResponse / MlkemDecapsResponse */
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 0);
    add_u16(&F, 4);
    add_fill(&F, 0xC7, 4);
    add_u8(&F, 31);
    add_fill(&F, 0x5E, 31);
    queue(&F, 0, 0);
    CHECK_ST(wvds_mlkem_encaps(conn, 7, WVDS_KEM_RETURN_SECRET, out, sizeof out, &n, &id, secret), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 0);
    add_u16(&F, 400); /* ciphertext longer than the payload */
    add_fill(&F, 0xC7, 4);
    queue(&F, 0, 0);
    CHECK_ST(wvds_mlkem_encaps(conn, 7, WVDS_KEM_RETURN_SECRET, out, sizeof out, &n, &id, secret), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 0);
    add_u16(&F, 4);
    add_fill(&F, 0xC7, 4);
    add_u8(&F, 0);
    queue(&F, 0, 0);
    CHECK_ST(wvds_mlkem_encaps(conn, 7, 0, out, sizeof out, &n, &id, NULL), WVDS_ERR_PROTOCOL); /* no key id */
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 0);
    add_u16(&F, 4);
    add_fill(&F, 0xC7, 4);
    add_u8(&F, 32);
    add_fill(&F, 0x5E, 32);
    queue(&F, 0, 0);
    CHECK_ST(wvds_mlkem_encaps(conn, 7, WVDS_KEM_RETURN_SECRET, out, sizeof out, &n, &id, secret), WVDS_SUCCESS);
    CHECK(n == 4 && out[0] == 0xC7 && secret[31] == 0x5E && id == 0, "encaps with the secret returned");
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 77);
    add_u8(&F, 0);
    add_u8(&F, 0); /* trailing */
    queue(&F, 0, 0);
    CHECK_ST(wvds_mlkem_decaps(conn, 7, 0, "ct", 2, &id, NULL), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_u32(&F, 77);
    add_u8(&F, 0);
    queue(&F, 0, 0);
    CHECK_ST(wvds_mlkem_decaps(conn, 7, 0, "ct", 2, &id, NULL), WVDS_SUCCESS);
    CHECK(id == 77, "decaps key id");
}

static void check_key_responses(wvds_conn *conn)
{
    uint8_t out[256];
    size_t n;
    begin_frame(&F, WVDS_SUCCESS); /* random: short */
    add_fill(&F, 0x42, 15);
    queue(&F, 0, 0);
    memset(out, 0x99, 16);
    CHECK_ST(wvds_random(conn, out, 16), WVDS_ERR_PROTOCOL);
    CHECK(out[0] == 0 && out[15] == 0, "a failed random call leaves zeros, not half-random bytes");
    begin_frame(&F, WVDS_SUCCESS); /* export public: algorithm but no key */
    add_u8(&F, WVDS_ALG_ML_DSA_44);
    queue(&F, 0, 0);
    wvds_algorithm alg;
    CHECK_ST(wvds_key_export_public(conn, 5, &alg, out, sizeof out, &n), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_u8(&F, WVDS_ALG_ECDSA_P256);
    add_fill(&F, 4, 65);
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_export_public(conn, 5, &alg, out, sizeof out, &n), WVDS_SUCCESS);
    CHECK(alg == WVDS_ALG_ECDSA_P256 && n == 65, "export public");
    begin_frame(&F, WVDS_SUCCESS);
    add_fill(&F, 0x11, 32);
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_export(conn, 5, WVDS_KEY_FORMAT_RAW, out, sizeof out, &n), WVDS_SUCCESS);
    CHECK(n == 32 && out[31] == 0x11, "export material");
    begin_frame(&F, WVDS_SUCCESS); /* delete: SUCCESS carries no payload */
    add_u8(&F, 0);
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_delete(conn, 5), WVDS_ERR_PROTOCOL);

    /* KeyListResponse */
    wvds_key_entry e[2];
    int more;
    begin_frame(&F, WVDS_SUCCESS);
    add_u8(&F, 0);
    add_u16(&F, 2);
    add_u32(&F, 10);
    add_u8(&F, WVDS_ALG_AES_256_GCM); /* one entry where the count says two */
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_list(conn, 0, e, 2, &n, &more), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_u8(&F, 1);
    add_u16(&F, 2);
    add_u32(&F, 10);
    add_u8(&F, WVDS_ALG_AES_256_GCM);
    add_u32(&F, 10); /* not ascending */
    add_u8(&F, WVDS_ALG_AES_256_GCM);
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_list(conn, 0, e, 2, &n, &more), WVDS_ERR_PROTOCOL);
    begin_frame(&F, WVDS_SUCCESS);
    add_u8(&F, 1);
    add_u16(&F, 2);
    add_u32(&F, 10);
    add_u8(&F, WVDS_ALG_AES_256_GCM);
    add_u32(&F, 12);
    add_u8(&F, WVDS_ALG_ML_DSA_65);
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_list(conn, 10, e, 2, &n, &more), WVDS_ERR_PROTOCOL); /* 10 is not after 10 */
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_list(conn, 0, e, 1, &n, &more), WVDS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 2, "entries needed");
    queue(&F, 0, 0);
    CHECK_ST(wvds_key_list(conn, 0, e, 2, &n, &more), WVDS_SUCCESS);
    CHECK(n == 2 && more == 1 && e[1].key_id == 12 && e[1].algorithm == WVDS_ALG_ML_DSA_65, "key list");

    /* KeyDescription */
    wvds_key_info info;
    for (int variant = 0; variant < 3; variant++) {
        begin_frame(&F, WVDS_SUCCESS);
        add_u32(&F, variant == 1 ? 6 : 5); /* 1: another key's description */
        add_u8(&F, WVDS_ALG_ML_DSA_87);
        add_u32(&F, WVDS_USAGE_SIGN);
        add_u32(&F, 1000);
        add_u32(&F, 1700000000), add_u32(&F, 0);
        add_u32(&F, 3), add_u32(&F, 0);
        uint8_t label_len = variant == 2 ? 65 : 5; /* 2: label over the limit */
        add_u8(&F, label_len);
        add_fill(&F, 'L', label_len);
        queue(&F, 0, 0);
        CHECK_ST(wvds_key_describe(conn, 5, &info), variant == 0 ? WVDS_SUCCESS : WVDS_ERR_PROTOCOL);
        if (variant == 0)
            CHECK(info.key_id == 5 && info.algorithm == WVDS_ALG_ML_DSA_87 && info.usage == WVDS_USAGE_SIGN &&
                      info.owner_uid == 1000 && info.created == 1700000000 && info.uses == 3 &&
                      strcmp(info.label, "LLLLL") == 0,
                  "describe fields");
    }

    char json[16];
    begin_frame(&F, WVDS_SUCCESS);
    add(&F, "{\"a\"\0:1}", 8); /* a NUL inside cannot be a C string */
    queue(&F, 0, 0);
    CHECK_ST(wvds_service_status(conn, json, sizeof json, &n), WVDS_ERR_PROTOCOL);
}

void check_malformed_responses(wvds_conn *conn, int canned_fd)
{
    g_canned_fd = canned_fd;
    check_frame_errors(conn);
    check_crypto_responses(conn);
    check_key_responses(conn);
    uint8_t rnd[8];
    CHECK_ST(wvds_random(conn, rnd, sizeof rnd), WVDS_SUCCESS); /* nothing was left behind */
}
