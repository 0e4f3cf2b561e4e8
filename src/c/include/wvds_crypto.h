/* wvds_crypto.h — C client library of the WvdS Crypto Service (libl4re_crypto_service.so).
 *
 * The library talks to crypto_service over a Unix socket (set-up only) and shared
 * memory (every request); it does no cryptography itself. Link with
 * -ll4re_crypto_service; it needs only the C library.
 *
 * Conventions shared by every function
 * ------------------------------------
 * - Every function returns a wvds_status. WVDS_SUCCESS (0) means done. Values
 *   0x01-0xFF are the service's wire statuses (WVDS_PAYLOAD_TOO_LARGE is also
 *   returned, without contacting the service, for a request that cannot fit the
 *   64 KiB payload limit). Values from 0x100 (WVDS_ERR_*) are the library's own.
 *   wvds_status_name() turns any of them into a string.
 * - Input buffers may be NULL only when their length is 0.
 * - Output buffers: a function writing variable-length output takes (buf, cap, *len).
 *   On WVDS_SUCCESS *len is the length written; on WVDS_ERR_BUFFER_TOO_SMALL it is the
 *   size needed and nothing was written to buf; otherwise it is 0. The library never
 *   writes past cap.
 * - A response that does not match its documented layout gives WVDS_ERR_PROTOCOL.
 * - Key ids are u32; 0 is never a valid key id.
 * - Labels are NUL-terminated UTF-8 of at most WVDS_MAX_LABEL_SIZE bytes; NULL = "".
 *
 * Threads, timeouts, processes
 * ----------------------------
 * - A wvds_conn may be used by any number of threads at once: each call takes its
 *   own slot of the shared memory (wvds_conn_slots() of them); further concurrent
 *   calls wait for a free slot. wvds_close() must not overlap other calls on the
 *   same connection.
 * - Each call's timeout (wvds_options.timeout_ms) covers waiting for a slot and for
 *   the answer. After WVDS_ERR_TIMEOUT the request may still complete in the
 *   service; its slot is reused only after the service has answered.
 * - If the service goes away, pending and later calls return WVDS_ERR_DISCONNECTED
 *   (within about 50 ms); open a new connection.
 * - A connection belongs to the process that opened it: after fork() the child must
 *   open its own. The library never raises SIGPIPE.
 */
#ifndef WVDS_CRYPTO_H
#define WVDS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WVDS_API __attribute__((visibility("default")))
#else
#define WVDS_API
#endif

/* BEGIN GENERATED: python -m wvds.protocol.cheader */
/* From src/wvds/protocol/constants.py and src/wvds/version.py. Do not edit by hand:
 * change the Python, then run `python -m wvds.protocol.cheader --update <this file>`. */

#define WVDS_PRODUCT_VERSION "0.2.0"
#define WVDS_PRODUCT_VERSION_MAJOR 0
#define WVDS_PRODUCT_VERSION_MINOR 2
#define WVDS_PRODUCT_VERSION_PATCH 0

#define WVDS_REQUEST_MAGIC 0xC7u
#define WVDS_RESPONSE_MAGIC 0xC8u
#define WVDS_PROTOCOL_VERSION 0x01u
#define WVDS_HEADER_SIZE 8u
#define WVDS_MAX_PAYLOAD 65536u
#define WVDS_RESPONSE_OVERHEAD 256u
#define WVDS_MAX_RESPONSE_PAYLOAD 65792u
#define WVDS_GCM_NONCE_SIZE 12u
#define WVDS_GCM_TAG_SIZE 16u
#define WVDS_AES_256_KEY_SIZE 32u
#define WVDS_MAX_CONTEXT_SIZE 255u
#define WVDS_MAX_LABEL_SIZE 64u
#define WVDS_SHARED_SECRET_SIZE 32u
#define WVDS_MLKEM_AES_HKDF_INFO "WVDS ML-KEM shared secret to AES-256-GCM key v1"
#define WVDS_MLKEM_AES_HKDF_INFO_LEN 47u
#define WVDS_KEY_LIST_MAX_ENTRIES 4096u

/* Wire statuses (0x00-0xFF, as the service answers them) and library errors (0x100 up). */
typedef enum wvds_status {
    WVDS_SUCCESS = 0x00,
    WVDS_INVALID_HEADER = 0x01,
    WVDS_INVALID_TYPE = 0x02,
    WVDS_INVALID_PAYLOAD = 0x03,
    WVDS_KEY_NOT_FOUND = 0x04,
    WVDS_CRYPTO_ERROR = 0x05,
    WVDS_DECRYPTION_FAILED = 0x06,
    WVDS_RATE_LIMITED = 0x07,
    WVDS_NONCE_REUSE = 0x08,
    WVDS_PAYLOAD_TOO_LARGE = 0x09,
    WVDS_PERMISSION_DENIED = 0x0A,
    WVDS_SIGNATURE_INVALID = 0x0B,
    WVDS_KEY_EXHAUSTED = 0x0C,
    WVDS_UNSUPPORTED_ALGORITHM = 0x0D,
    WVDS_STORAGE_ERROR = 0x0E,
    WVDS_QUOTA_EXCEEDED = 0x0F,
    WVDS_SHUTTING_DOWN = 0x10,
    WVDS_INTERNAL_ERROR = 0x11,
    WVDS_ERR_CONNECT = 0x100,
    WVDS_ERR_REFUSED = 0x101,
    WVDS_ERR_TIMEOUT = 0x102,
    WVDS_ERR_PROTOCOL = 0x103,
    WVDS_ERR_BUFFER_TOO_SMALL = 0x104,
    WVDS_ERR_ARGUMENT = 0x105,
    WVDS_ERR_DISCONNECTED = 0x106,
    WVDS_ERR_SYSTEM = 0x107
} wvds_status;

typedef enum wvds_request_type {
    WVDS_REQ_AES_ENCRYPT = 0x01,
    WVDS_REQ_AES_DECRYPT = 0x02,
    WVDS_REQ_MLDSA_SIGN = 0x10,
    WVDS_REQ_MLDSA_VERIFY = 0x11,
    WVDS_REQ_SLHDSA_SIGN = 0x12,
    WVDS_REQ_SLHDSA_VERIFY = 0x13,
    WVDS_REQ_MLKEM_KEYGEN = 0x20,
    WVDS_REQ_MLKEM_ENCAPS = 0x21,
    WVDS_REQ_MLKEM_DECAPS = 0x22,
    WVDS_REQ_ECDSA_SIGN = 0x30,
    WVDS_REQ_ECDSA_VERIFY = 0x31,
    WVDS_REQ_RANDOM = 0x38,
    WVDS_REQ_KEY_GENERATE = 0x40,
    WVDS_REQ_KEY_IMPORT = 0x41,
    WVDS_REQ_KEY_EXPORT_PUBLIC = 0x42,
    WVDS_REQ_KEY_DELETE = 0x43,
    WVDS_REQ_KEY_LIST = 0x44,
    WVDS_REQ_KEY_DESCRIBE = 0x45,
    WVDS_REQ_KEY_EXPORT = 0x46,
    WVDS_REQ_STATUS = 0x50
} wvds_request_type;

typedef enum wvds_algorithm {
    WVDS_ALG_AES_256_GCM = 0x01,
    WVDS_ALG_ML_DSA_44 = 0x10,
    WVDS_ALG_ML_DSA_65 = 0x11,
    WVDS_ALG_ML_DSA_87 = 0x12,
    WVDS_ALG_ML_KEM_512 = 0x20,
    WVDS_ALG_ML_KEM_768 = 0x21,
    WVDS_ALG_ML_KEM_1024 = 0x22,
    WVDS_ALG_ECDSA_P256 = 0x30,
    WVDS_ALG_ECDSA_P384 = 0x31,
    WVDS_ALG_SLH_DSA_SHA2_128S = 0x40,
    WVDS_ALG_SLH_DSA_SHA2_128F = 0x41,
    WVDS_ALG_SLH_DSA_SHA2_192S = 0x42,
    WVDS_ALG_SLH_DSA_SHA2_192F = 0x43,
    WVDS_ALG_SLH_DSA_SHA2_256S = 0x44,
    WVDS_ALG_SLH_DSA_SHA2_256F = 0x45,
    WVDS_ALG_SLH_DSA_SHAKE_128S = 0x46,
    WVDS_ALG_SLH_DSA_SHAKE_128F = 0x47,
    WVDS_ALG_SLH_DSA_SHAKE_192S = 0x48,
    WVDS_ALG_SLH_DSA_SHAKE_192F = 0x49,
    WVDS_ALG_SLH_DSA_SHAKE_256S = 0x4A,
    WVDS_ALG_SLH_DSA_SHAKE_256F = 0x4B
} wvds_algorithm;

typedef enum wvds_key_format {
    WVDS_KEY_FORMAT_RAW = 0x00,
    WVDS_KEY_FORMAT_SEED = 0x01,
    WVDS_KEY_FORMAT_EXPANDED = 0x02,
    WVDS_KEY_FORMAT_PUBLIC = 0x03
} wvds_key_format;

typedef enum wvds_keyref_kind {
    WVDS_KEYREF_KEY_ID = 0x00,
    WVDS_KEYREF_INLINE = 0x01
} wvds_keyref_kind;

typedef enum wvds_hash_alg {
    WVDS_HASH_DEFAULT = 0x00,
    WVDS_HASH_SHA256 = 0x01,
    WVDS_HASH_SHA384 = 0x02,
    WVDS_HASH_SHA512 = 0x03
} wvds_hash_alg;

#define WVDS_USAGE_ENCRYPT 0x0001u
#define WVDS_USAGE_DECRYPT 0x0002u
#define WVDS_USAGE_SIGN 0x0004u
#define WVDS_USAGE_VERIFY 0x0008u
#define WVDS_USAGE_ENCAPS 0x0010u
#define WVDS_USAGE_DECAPS 0x0020u
#define WVDS_USAGE_RELEASE_SECRET 0x0040u
#define WVDS_USAGE_EXPORTABLE 0x0080u
#define WVDS_USAGE_REPLAY_PROTECT 0x0100u
#define WVDS_USAGE_REPLAYABLE 0x0200u
#define WVDS_USAGE_ALL 0x03FFu

#define WVDS_KEM_RETURN_SECRET 0x0001u
#define WVDS_KEM_FLAGS_ALL 0x0001u

#define WVDS_ECDSA_PREHASHED 0x0001u
#define WVDS_ECDSA_FLAGS_ALL 0x0001u
/* END GENERATED */

/* --- Sizes fixed by FIPS 203/204 and SEC 1 (handy for buffers) --------------------- */
#define WVDS_MLDSA44_PUBLIC_KEY_SIZE 1312u
#define WVDS_MLDSA65_PUBLIC_KEY_SIZE 1952u
#define WVDS_MLDSA87_PUBLIC_KEY_SIZE 2592u
#define WVDS_MLDSA44_SIGNATURE_SIZE 2420u
#define WVDS_MLDSA65_SIGNATURE_SIZE 3309u
#define WVDS_MLDSA87_SIGNATURE_SIZE 4627u
#define WVDS_MLKEM512_PUBLIC_KEY_SIZE 800u
#define WVDS_MLKEM768_PUBLIC_KEY_SIZE 1184u
#define WVDS_MLKEM1024_PUBLIC_KEY_SIZE 1568u
#define WVDS_MLKEM512_CIPHERTEXT_SIZE 768u
#define WVDS_MLKEM768_CIPHERTEXT_SIZE 1088u
#define WVDS_MLKEM1024_CIPHERTEXT_SIZE 1568u
#define WVDS_ECDSA_P256_PUBLIC_KEY_SIZE 65u /* uncompressed point */
#define WVDS_ECDSA_P384_PUBLIC_KEY_SIZE 97u
#define WVDS_ECDSA_P256_MAX_SIGNATURE_SIZE 72u /* DER */
#define WVDS_ECDSA_P384_MAX_SIGNATURE_SIZE 104u
#define WVDS_MAX_PUBLIC_KEY_SIZE WVDS_MLDSA87_PUBLIC_KEY_SIZE
#define WVDS_MAX_SIGNATURE_SIZE WVDS_MLDSA87_SIGNATURE_SIZE /* ML-DSA and ECDSA; SLH-DSA: below */
/* SLH-DSA (FIPS 205 table 2): public key 2n bytes, private key 4n (n = 16 / 24 / 32) */
#define WVDS_SLHDSA128S_SIGNATURE_SIZE 7856u
#define WVDS_SLHDSA128F_SIGNATURE_SIZE 17088u
#define WVDS_SLHDSA192S_SIGNATURE_SIZE 16224u
#define WVDS_SLHDSA192F_SIGNATURE_SIZE 35664u
#define WVDS_SLHDSA256S_SIGNATURE_SIZE 29792u
#define WVDS_SLHDSA256F_SIGNATURE_SIZE 49856u
#define WVDS_SLHDSA_MAX_SIGNATURE_SIZE WVDS_SLHDSA256F_SIGNATURE_SIZE

/* --- Status names, library version ----------------------------------------------- */

/* "WVDS_SUCCESS", "WVDS_ERR_TIMEOUT", ...; "WVDS_UNKNOWN_STATUS" for other values. Never NULL. */
WVDS_API const char *wvds_status_name(wvds_status status);

/* The product version the library was built as (WVDS_PRODUCT_VERSION of its header). */
WVDS_API const char *wvds_library_version(void);

/* --- Connection ---------------------------------------------------------------------- */

typedef struct wvds_conn wvds_conn;

#define WVDS_DEFAULT_SOCKET "/run/wvds/crypto.sock"
#define WVDS_SOCKET_ENV "WVDS_SOCKET"
#define WVDS_DEFAULT_TIMEOUT_MS 10000
#define WVDS_DEFAULT_SPIN_US 50u
#define WVDS_NO_SPIN 0xFFFFFFFFu

/* All-zero options mean the defaults. */
typedef struct wvds_options {
    int32_t timeout_ms;       /* per call; 0 = WVDS_DEFAULT_TIMEOUT_MS, < 0 = no limit */
    uint16_t requested_slots; /* concurrent requests wanted; 0 = the service's default */
    uint16_t reserved0;       /* must be 0 */
    uint32_t spin_us;         /* busy-wait for an answer before sleeping; 0 = WVDS_DEFAULT_SPIN_US, or
                                 no spinning when only one CPU is online; WVDS_NO_SPIN = sleep at once */
    uint32_t reserved[5];     /* must be 0 */
} wvds_options;

/* Connects to the service. socket_path NULL means $WVDS_SOCKET, else WVDS_DEFAULT_SOCKET.
 * Errors: WVDS_ERR_CONNECT (no service at that path; errno kept), WVDS_ERR_REFUSED (the
 * service refused this process: not allowed, shutting down or at its client limit),
 * WVDS_ERR_PROTOCOL (unexpected handshake or shared memory), WVDS_ERR_TIMEOUT,
 * WVDS_ERR_DISCONNECTED, WVDS_ERR_SYSTEM. On success *out must be closed with wvds_close(). */
WVDS_API wvds_status wvds_connect(const char *socket_path, wvds_conn **out);
WVDS_API wvds_status wvds_connect_ex(const char *socket_path, const wvds_options *opts, wvds_conn **out);

/* Ends the session and frees conn (NULL is allowed). */
WVDS_API void wvds_close(wvds_conn *conn);

/* Slots granted by the service (= requests that can be in flight at once), client id. */
WVDS_API uint16_t wvds_conn_slots(const wvds_conn *conn);
WVDS_API uint32_t wvds_conn_client_id(const wvds_conn *conn);

/* --- Raw request ------------------------------------------------------------------- */

/* Sends one request (type + payload of at most WVDS_MAX_PAYLOAD bytes) and copies the
 * response payload to resp. Returns the response's status (whatever it is, with its
 * payload copied) or a library error (>= 0x100). For language bindings and tests; the
 * functions below build and check each payload. A resp_cap of WVDS_MAX_RESPONSE_PAYLOAD
 * always suffices. (The product's Python client binds wvds_connect_ex, wvds_transact and
 * wvds_close through ctypes; its build checks their prototypes here against its own table.) */
WVDS_API wvds_status wvds_transact(wvds_conn *conn, uint8_t type, const void *payload, size_t len, void *resp,
                                   size_t resp_cap, size_t *resp_len);

/* --- AES-256-GCM ----------------------------------------------------------------------
 * The service generates the 12-byte nonce. Sealed data is nonce || ciphertext || tag,
 * WVDS_AES_SEALED_OVERHEAD bytes longer than the plaintext, and is exactly what
 * wvds_aes_decrypt takes back. aad_len + plaintext_len may be at most WVDS_AES_MAX_DATA
 * (so that the result can always be decrypted); use the stream functions for more. */
#define WVDS_AES_SEALED_OVERHEAD (WVDS_GCM_NONCE_SIZE + WVDS_GCM_TAG_SIZE)
#define WVDS_AES_MAX_DATA (WVDS_MAX_PAYLOAD - 6u - WVDS_AES_SEALED_OVERHEAD)

WVDS_API wvds_status wvds_aes_encrypt(wvds_conn *conn, uint32_t key_id, const void *aad, size_t aad_len,
                                      const void *plaintext, size_t plaintext_len, void *sealed, size_t sealed_cap,
                                      size_t *sealed_len);

/* WVDS_DECRYPTION_FAILED: wrong key, AAD or tampered data. WVDS_NONCE_REUSE: this sealed
 * message was decrypted before, or is older than the key's replay window (every AES key
 * unless created with WVDS_USAGE_REPLAYABLE; docs/replay.md). */
WVDS_API wvds_status wvds_aes_decrypt(wvds_conn *conn, uint32_t key_id, const void *aad, size_t aad_len,
                                      const void *sealed, size_t sealed_len, void *plaintext, size_t plaintext_cap,
                                      size_t *plaintext_len);

/* --- Zero-copy AES-256-GCM jobs -------------------------------------------------------
 * For bulk data, copying it into and out of shared memory costs more than the encryption
 * (OEM guide, "How fast is it?"). A job is one slot of the connection: the caller writes
 * its input straight into the shared memory the service reads, and uses the result where
 * the service wrote it. Input: the plaintext (encrypt) or nonce || ciphertext || tag
 * (decrypt); output: the other one, as wvds_aes_encrypt/wvds_aes_decrypt give it.
 *
 *   wvds_aes_job *job; uint8_t *in; size_t cap;
 *   st = wvds_aes_job_begin(conn, WVDS_REQ_AES_ENCRYPT, key_id, aad, aad_len, &job, &in, &cap);
 *   n = read_sensor(in, cap);                 the plaintext is produced in place
 *   st = wvds_aes_job_submit(job, n);         the service starts; prepare the next job meanwhile
 *   st = wvds_aes_job_wait(job, &out, &out_len);
 *   if (st == WVDS_SUCCESS) send(fd, out, out_len, 0);
 *   wvds_aes_job_end(job);                    always: wipes what must be wiped, frees the slot
 *
 * Up to wvds_conn_slots() jobs may be held at once (begin waits for a free slot up to the
 * connection timeout). A job is used by one thread at a time; different jobs by any. `in`
 * is valid from begin to submit, `out` from a successful wait to end. The service may read
 * the input at any time after submit: do not touch it until wait has returned. end wipes
 * the submitted input (the whole area if the job was never submitted) and a decryption's
 * output; a job ended before its wait returned leaves its slot to the service until it
 * answers, like a timed-out call. */
typedef struct wvds_aes_job wvds_aes_job;

/* type: WVDS_REQ_AES_ENCRYPT or WVDS_REQ_AES_DECRYPT. *input_cap: the most input bytes
 * (WVDS_AES_MAX_DATA - aad_len to encrypt, WVDS_MAX_PAYLOAD - 6 - aad_len to decrypt). */
WVDS_API wvds_status wvds_aes_job_begin(wvds_conn *conn, uint8_t type, uint32_t key_id, const void *aad,
                                        size_t aad_len, wvds_aes_job **job, uint8_t **input, size_t *input_cap);
/* WVDS_ERR_ARGUMENT if input_len exceeds the capacity (or is below WVDS_AES_SEALED_OVERHEAD
 * for a decryption) or the job was submitted already. */
WVDS_API wvds_status wvds_aes_job_submit(wvds_aes_job *job, size_t input_len);
/* The wire status, or a library error; on WVDS_SUCCESS *output points into shared memory. */
WVDS_API wvds_status wvds_aes_job_wait(wvds_aes_job *job, const uint8_t **output, size_t *output_len);
WVDS_API void wvds_aes_job_end(wvds_aes_job *job);

/* --- AES-256-GCM streams (data of any size) -----------------------------------------
 * The plaintext is cut into chunks of WVDS_STREAM_CHUNK_SIZE bytes (the last may be
 * shorter; an empty plaintext gives one empty chunk), each sealed by one AES_ENCRYPT.
 *
 *   stream = stream_id (16 random bytes) || frame_0 || ... || frame_n
 *   frame  = sealed_len (u32 LE) || sealed chunk (nonce || ciphertext || tag)
 *   AAD of chunk i = "WVDS-STREAM-v1" (14 bytes) || stream_id || i (u64 LE)
 *                    || final (u8: 1 for the last chunk, else 0) || caller's AAD
 *
 * Binding the index and the final flag makes decryption reject reordered, duplicated,
 * dropped, truncated (no final chunk) and extended (anything after the final chunk)
 * streams; binding the stream id rejects chunks spliced from another stream. All of
 * these, and any framing error, give WVDS_DECRYPTION_FAILED. On any failure the
 * decrypt output buffer is zeroed: no unauthenticated plaintext is ever left behind.
 * Several chunks are kept in flight at once when the connection has several slots. */
#define WVDS_STREAM_LABEL "WVDS-STREAM-v1"
#define WVDS_STREAM_LABEL_LEN 14u
#define WVDS_STREAM_ID_SIZE 16u
#define WVDS_STREAM_CHUNK_SIZE 61440u /* 60 KiB */
#define WVDS_STREAM_MAX_AAD 1024u
#define WVDS_STREAM_FRAME_OVERHEAD (4u + WVDS_AES_SEALED_OVERHEAD)

/* Exact size of the stream for plaintext_len bytes; SIZE_MAX if it would overflow. */
WVDS_API size_t wvds_stream_sealed_size(size_t plaintext_len);

WVDS_API wvds_status wvds_stream_encrypt(wvds_conn *conn, uint32_t key_id, const void *aad, size_t aad_len,
                                         const void *plaintext, size_t plaintext_len, void *stream,
                                         size_t stream_cap, size_t *stream_len);

/* plaintext_cap >= stream_len always suffices. */
WVDS_API wvds_status wvds_stream_decrypt(wvds_conn *conn, uint32_t key_id, const void *aad, size_t aad_len,
                                         const void *stream, size_t stream_len, void *plaintext,
                                         size_t plaintext_cap, size_t *plaintext_len);

/* --- ML-DSA (FIPS 204, pure) and ECDSA ---------------------------------------------------
 * Verify functions return WVDS_SUCCESS for a valid signature and WVDS_SIGNATURE_INVALID
 * for a well-formed request whose signature does not verify. The _inline variants take
 * the signer's public key instead of a stored key id (exact size for the algorithm). */

/* context: FIPS 204 context string, at most WVDS_MAX_CONTEXT_SIZE bytes (usually empty). */
WVDS_API wvds_status wvds_mldsa_sign(wvds_conn *conn, uint32_t key_id, const void *context, size_t context_len,
                                     const void *message, size_t message_len, void *signature, size_t signature_cap,
                                     size_t *signature_len);
WVDS_API wvds_status wvds_mldsa_verify(wvds_conn *conn, uint32_t key_id, const void *context, size_t context_len,
                                       const void *message, size_t message_len, const void *signature,
                                       size_t signature_len);
WVDS_API wvds_status wvds_mldsa_verify_inline(wvds_conn *conn, wvds_algorithm algorithm, const void *public_key,
                                              size_t public_key_len, const void *context, size_t context_len,
                                              const void *message, size_t message_len, const void *signature,
                                              size_t signature_len);

/* SLH-DSA (FIPS 205, pure), the twelve WVDS_ALG_SLH_DSA_* sets: the same arguments as ML-DSA.
 * Signatures are 7 856 to 49 856 bytes (WVDS_SLHDSA_MAX_SIGNATURE_SIZE); the -s sets sign
 * slowly (up to seconds), the -f sets fast with larger signatures (docs/performance.md). */
WVDS_API wvds_status wvds_slhdsa_sign(wvds_conn *conn, uint32_t key_id, const void *context, size_t context_len,
                                      const void *message, size_t message_len, void *signature,
                                      size_t signature_cap, size_t *signature_len);
WVDS_API wvds_status wvds_slhdsa_verify(wvds_conn *conn, uint32_t key_id, const void *context, size_t context_len,
                                        const void *message, size_t message_len, const void *signature,
                                        size_t signature_len);
WVDS_API wvds_status wvds_slhdsa_verify_inline(wvds_conn *conn, wvds_algorithm algorithm, const void *public_key,
                                               size_t public_key_len, const void *context, size_t context_len,
                                               const void *message, size_t message_len, const void *signature,
                                               size_t signature_len);

/* hash: WVDS_HASH_DEFAULT = SHA-256 for P-256, SHA-384 for P-384. flags: WVDS_ECDSA_PREHASHED
 * when data already is the digest. Signatures are DER. */
WVDS_API wvds_status wvds_ecdsa_sign(wvds_conn *conn, uint32_t key_id, wvds_hash_alg hash, uint32_t flags,
                                     const void *data, size_t data_len, void *signature, size_t signature_cap,
                                     size_t *signature_len);
WVDS_API wvds_status wvds_ecdsa_verify(wvds_conn *conn, uint32_t key_id, wvds_hash_alg hash, uint32_t flags,
                                       const void *data, size_t data_len, const void *signature,
                                       size_t signature_len);
WVDS_API wvds_status wvds_ecdsa_verify_inline(wvds_conn *conn, wvds_algorithm algorithm, const void *public_key,
                                              size_t public_key_len, wvds_hash_alg hash, uint32_t flags,
                                              const void *data, size_t data_len, const void *signature,
                                              size_t signature_len);

/* --- ML-KEM (FIPS 203) -------------------------------------------------------------------
 * Without WVDS_KEM_RETURN_SECRET the shared secret never leaves the service: it becomes a
 * new AES-256-GCM key (HKDF-SHA256 with WVDS_MLKEM_AES_HKDF_INFO) whose id is stored in
 * *new_key_id. With it, the 32-byte secret is written to `secret` (new_key_id gets 0);
 * the service allows this for inline public keys and for keys with
 * WVDS_USAGE_RELEASE_SECRET. Outputs not asked for may be NULL. */

/* New ML-KEM key pair kept in the service. public_key may be NULL when it is not wanted
 * (public_key_len, if not NULL, still gets its size). On WVDS_ERR_BUFFER_TOO_SMALL the key
 * exists all the same: *key_id is set. */
WVDS_API wvds_status wvds_mlkem_keygen(wvds_conn *conn, wvds_algorithm algorithm, uint32_t usage, const char *label,
                                       uint32_t *key_id, void *public_key, size_t public_key_cap,
                                       size_t *public_key_len);
/* ciphertext_cap >= WVDS_MLKEM1024_CIPHERTEXT_SIZE always suffices. On WVDS_ERR_BUFFER_TOO_SMALL
 * *new_key_id is still set (delete that key) and secret is zeroed. */
WVDS_API wvds_status wvds_mlkem_encaps(wvds_conn *conn, uint32_t key_id, uint32_t flags, void *ciphertext,
                                       size_t ciphertext_cap, size_t *ciphertext_len, uint32_t *new_key_id,
                                       uint8_t *secret);
WVDS_API wvds_status wvds_mlkem_encaps_inline(wvds_conn *conn, wvds_algorithm algorithm, const void *public_key,
                                              size_t public_key_len, uint32_t flags, void *ciphertext,
                                              size_t ciphertext_cap, size_t *ciphertext_len, uint32_t *new_key_id,
                                              uint8_t *secret);
WVDS_API wvds_status wvds_mlkem_decaps(wvds_conn *conn, uint32_t key_id, uint32_t flags, const void *ciphertext,
                                       size_t ciphertext_len, uint32_t *new_key_id, uint8_t *secret);

/* --- Random bytes from the service's FIPS DRBG (any length; large requests are split).
 * On failure buf is zeroed, never left partly filled. */
WVDS_API wvds_status wvds_random(wvds_conn *conn, void *buf, size_t len);

/* --- Key management ---------------------------------------------------------------------
 * usage: WVDS_USAGE_* bits, 0 = the algorithm's default. Keys belong to the calling uid.
 * AES keys get WVDS_USAGE_REPLAY_PROTECT unless usage has WVDS_USAGE_REPLAYABLE (a key for
 * data at rest, whose sealed blobs are decrypted again and again); replay bits alone mean
 * the default operations with them. */

/* Like wvds_mlkem_keygen, for any algorithm (AES keys have no public key: *public_key_len = 0). */
WVDS_API wvds_status wvds_key_generate(wvds_conn *conn, wvds_algorithm algorithm, uint32_t usage, const char *label,
                                       uint32_t *key_id, void *public_key, size_t public_key_cap,
                                       size_t *public_key_len);

/* material in `format`: RAW (AES key, EC private scalar), SEED, EXPANDED or PUBLIC. */
WVDS_API wvds_status wvds_key_import(wvds_conn *conn, wvds_algorithm algorithm, uint32_t usage,
                                     wvds_key_format format, const char *label, const void *material,
                                     size_t material_len, uint32_t *key_id);

/* algorithm may be NULL. AES keys: WVDS_UNSUPPORTED_ALGORITHM. */
WVDS_API wvds_status wvds_key_export_public(wvds_conn *conn, uint32_t key_id, wvds_algorithm *algorithm,
                                            void *public_key, size_t public_key_cap, size_t *public_key_len);

/* Key material in `format`; private forms only for keys with WVDS_USAGE_EXPORTABLE. The
 * library wipes its copy in shared memory; wipe yours when done. */
WVDS_API wvds_status wvds_key_export(wvds_conn *conn, uint32_t key_id, wvds_key_format format, void *material,
                                     size_t material_cap, size_t *material_len);

WVDS_API wvds_status wvds_key_delete(wvds_conn *conn, uint32_t key_id);

typedef struct wvds_key_entry {
    uint32_t key_id;
    wvds_algorithm algorithm;
} wvds_key_entry;

/* Keys visible to the caller with id > start_after, ascending; *more != 0 when there are
 * further keys (continue with start_after = the last id). A page holds at most
 * WVDS_KEY_LIST_MAX_ENTRIES entries; on WVDS_ERR_BUFFER_TOO_SMALL *count is the page size. */
WVDS_API wvds_status wvds_key_list(wvds_conn *conn, uint32_t start_after, wvds_key_entry *entries, size_t cap,
                                   size_t *count, int *more);

typedef struct wvds_key_info {
    uint32_t key_id;
    wvds_algorithm algorithm;
    uint32_t usage;     /* WVDS_USAGE_* */
    uint32_t owner_uid;
    uint64_t created;   /* Unix seconds */
    uint64_t uses;      /* encryptions (AES) or signatures so far */
    char label[WVDS_MAX_LABEL_SIZE + 1]; /* NUL-terminated */
} wvds_key_info;

WVDS_API wvds_status wvds_key_describe(wvds_conn *conn, uint32_t key_id, wvds_key_info *info);

/* --- Service status -------------------------------------------------------------------- */

/* The service's status as a JSON object, NUL-terminated. On success *len is its strlen; on
 * WVDS_ERR_BUFFER_TOO_SMALL it is the capacity needed, NUL included. */
WVDS_API wvds_status wvds_service_status(wvds_conn *conn, char *json, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* WVDS_CRYPTO_H */
