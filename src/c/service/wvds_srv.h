/* The service library, libwvds_service.so: what crypto_service runs in C (docs/transport.md).
 *
 * The service half of the slot protocol, the AES-256-GCM fast path with the AES keys'
 * invocation counters and replay windows, and the per-client token bucket. crypto_service
 * calls it through ctypes; nothing else links it, and it is not part of the OEM delivery's
 * headers. It never links libcrypto: the service hands it the entry points of the libcrypto
 * it has loaded and checked (wvds_srv_fast_setup).
 *
 * The service creates a client's memfd, maps it, calls wvds_srv_init_control, seals it and
 * passes it with the doorbell eventfd to the client; then one thread per client calls
 * wvds_srv_serve in a loop while any thread may call wvds_srv_complete for the slots it was
 * given. What the fast path answers: AES_ENCRYPT and AES_DECRYPT requests that would succeed
 * for keys the Python path has granted (after its ownership and policy checks), and RANDOM
 * requests that would succeed (the rate limit applies to both); every other
 * request - every error, a first use, a counter reservation, a replayed nonce, a failed tag -
 * goes to the Python path unchanged, so both paths give the same answers.
 */
#ifndef WVDS_SRV_H
#define WVDS_SRV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WVDS_SRV_API __attribute__((visibility("default")))
#else
#define WVDS_SRV_API
#endif

/* BEGIN GENERATED: python -m wvds.native.cheader */
/* The service library's API, from src/wvds/native/spec.py (crypto_service binds it through ctypes from the same
 * spec: wvds.native.bind). Do not edit by hand. */
typedef struct wvds_srv_bucket wvds_srv_bucket;
typedef struct wvds_srv_aes_key wvds_srv_aes_key;
typedef struct wvds_srv_pkey wvds_srv_pkey;
typedef struct wvds_srv_replay wvds_srv_replay;
typedef struct wvds_srv_fast wvds_srv_fast;
#define WVDS_COUNT_OK 0                     /* wvds_srv_aes_key_count: counted */
#define WVDS_COUNT_LIMIT 1                  /* the configured limit is used up */
#define WVDS_COUNT_RESERVE 2                /* the persisted reservation is used up: persist more, reserve, count again */
#define WVDS_REPLAY_FRESH 0                 /* wvds_srv_replay_check: not seen before (now recorded) */
#define WVDS_REPLAY_SEEN 1                  /* accepted before */
#define WVDS_REPLAY_OLD 2                   /* older than the window */
#define WVDS_REPLAY_MAX_WINDOW 268435456
#define WVDS_REPLAY_MAX_STREAMS 16
#define WVDS_SRV_TIMEOUT (-1)               /* wvds_srv_next/serve: nothing within timeout_ms */
#define WVDS_SRV_GONE (-2)                  /* the client socket reports hangup or error */
#define WVDS_SRV_ERROR (-3)                 /* any other error (errno kept; EINVAL for bad arguments) */
#define WVDS_PKEY_MLDSA 1                   /* wvds_srv_pkey_new kinds: pure ML-DSA (MLDSA_VERIFY) */
#define WVDS_PKEY_SLHDSA 2                  /* pure SLH-DSA (SLHDSA_VERIFY) */
#define WVDS_PKEY_ECDSA 3                   /* ECDSA P-256/P-384 (ECDSA_VERIFY) */
#define WVDS_PKEY_MLKEM 4                   /* ML-KEM (MLKEM_ENCAPS, MLKEM_DECAPS) */

/* The libcrypto functions the fast path calls (addresses from the service's libcrypto, prototypes those of
 * OpenSSL 3) and the cipher: the library is compiled against OpenSSL's headers but never links libcrypto.
 */
typedef struct wvds_srv_ossl {
    void *cipher;                       /* EVP_CIPHER *, AES-256-GCM fetched with fips=yes, owned by the service for its lifetime */
    void *ctx_new;                      /* EVP_CIPHER_CTX_new */
    void *ctx_free;                     /* EVP_CIPHER_CTX_free */
    void *encrypt_init;                 /* EVP_EncryptInit_ex2 */
    void *encrypt_update;               /* EVP_EncryptUpdate */
    void *encrypt_final;                /* EVP_EncryptFinal_ex */
    void *decrypt_init;                 /* EVP_DecryptInit_ex2 */
    void *decrypt_update;               /* EVP_DecryptUpdate */
    void *decrypt_final;                /* EVP_DecryptFinal_ex */
    void *ctx_ctrl;                     /* EVP_CIPHER_CTX_ctrl */
    void *ctx_get_params;               /* EVP_CIPHER_CTX_get_params */
    void *rand_bytes;                   /* RAND_bytes_ex, called with the default library context (the service's: fips=yes) */
    void *pkey_free;                    /* EVP_PKEY_free */
    void *pkey_ctx_new;                 /* EVP_PKEY_CTX_new_from_pkey (default library context) */
    void *pkey_ctx_free;                /* EVP_PKEY_CTX_free */
    void *verify_message_init;          /* EVP_PKEY_verify_message_init */
    void *verify_init;                  /* EVP_PKEY_verify_init_ex */
    void *verify;                       /* EVP_PKEY_verify */
    void *md_ctx_new;                   /* EVP_MD_CTX_new */
    void *md_ctx_free;                  /* EVP_MD_CTX_free */
    void *digest_verify_init;           /* EVP_DigestVerifyInit_ex */
    void *digest_verify;                /* EVP_DigestVerify */
    void *encapsulate_init;             /* EVP_PKEY_encapsulate_init */
    void *encapsulate;                  /* EVP_PKEY_encapsulate */
    void *decapsulate_init;             /* EVP_PKEY_decapsulate_init */
    void *decapsulate;                  /* EVP_PKEY_decapsulate */
    void *sign_message_init;            /* EVP_PKEY_sign_message_init */
    void *sign_init;                    /* EVP_PKEY_sign_init_ex */
    void *sign;                         /* EVP_PKEY_sign */
    void *digest_sign_init;             /* EVP_DigestSignInit_ex */
    void *digest_sign;                  /* EVP_DigestSign */
} wvds_srv_ossl;

/* Bytes of shared memory for slot_count slots (SHM_SLOTS_OFFSET + slot_count * SLOT_SIZE); 0 if slot_count is
 * 0 or above SHM_MAX_SLOTS.
 */
WVDS_SRV_API uint32_t wvds_srv_shm_size(uint16_t slot_count);

/* Zeroes the whole mapping and writes the control block. 0, or -1 for a NULL pointer or a bad slot count. */
WVDS_SRV_API int wvds_srv_init_control(void *shm, uint16_t slot_count, uint32_t client_id);

/* Waits for the next submitted request and takes it (SUBMITTED -> BUSY): scans the slots round-robin; if none
 * is submitted, spins for spin_us, then polls the doorbell (drained when it fires) and the client socket for
 * up to timeout_ms (< 0: no limit; a negative fd is not watched). Copies min(req_len, SLOT_REQ_AREA) bytes of
 * the frame into out (out_cap >= SLOT_REQ_AREA), reading req_len exactly once, sets *out_len and returns the
 * slot (>= 0): parse only that copy. Else SRV_TIMEOUT, SRV_GONE or SRV_ERROR.
 */
WVDS_SRV_API int wvds_srv_next(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us,
                               int timeout_ms, uint8_t *out, uint32_t out_cap, uint32_t *out_len);

/* wvds_srv_next, except that the requests the fast path `fast` can answer are answered and completed here and
 * the wait goes on; only the others are returned, and held until wvds_srv_fast_release. fast NULL: exactly
 * wvds_srv_next.
 */
WVDS_SRV_API int wvds_srv_serve(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd,
                                uint32_t spin_us, int timeout_ms, wvds_srv_fast *fast, uint8_t *out,
                                uint32_t out_cap, uint32_t *out_len);

/* How many slots are submitted and not yet taken (a snapshot, a hint only). -1 for bad arguments. */
WVDS_SRV_API int wvds_srv_pending(void *shm, uint16_t slot_count);

/* Writes the response frame into the slot, then resp_len, stores DONE with release semantics and wakes the
 * client. Safe from any thread. 0, or -1 when the slot is out of range, resp_len exceeds SLOT_RESP_AREA or
 * the slot is not BUSY.
 */
WVDS_SRV_API int wvds_srv_complete(void *shm, uint16_t slot_count, int slot, const uint8_t *resp,
                                   uint32_t resp_len);

/* Installs the libcrypto entry points (once, before any session; a second call returns -1). 0, or -1 if a
 * pointer is NULL. Without it the fast path is off.
 */
WVDS_SRV_API int wvds_srv_fast_setup(const wvds_srv_ossl *fns);

/* A client identity's rate limit: `rate` tokens per second refill `burst`; a dry bucket refuses for
 * cooldown_s. rate <= 0: every request is allowed. Thread-safe.
 */
WVDS_SRV_API wvds_srv_bucket *wvds_srv_bucket_new(double rate, uint32_t burst, double cooldown_s);

/* Takes a token: 1 allowed, 0 refused. */
WVDS_SRV_API int wvds_srv_bucket_allow(wvds_srv_bucket *b);

WVDS_SRV_API void wvds_srv_bucket_free(wvds_srv_bucket *b);

/* An AES-256 key's invocation counter (the only one) and, for a software key, its bytes (key32 NULL: a
 * token's key, counted here, never used by the fast path). Reference counted: this is the service's reference
 * (wvds_srv_aes_key_release); each grant holds its own. A restarted service passes uses == reserved, so a
 * crash can skip invocations but never repeat one.
 */
WVDS_SRV_API wvds_srv_aes_key *wvds_srv_aes_key_new(const uint8_t *key32, uint64_t uses, uint64_t reserved);

/* Counts one invocation: COUNT_OK, COUNT_LIMIT or COUNT_RESERVE; nothing is counted unless COUNT_OK. */
WVDS_SRV_API int wvds_srv_aes_key_count(wvds_srv_aes_key *k, uint64_t limit);

WVDS_SRV_API void wvds_srv_aes_key_reserve(wvds_srv_aes_key *k, uint64_t reserved);

WVDS_SRV_API uint64_t wvds_srv_aes_key_uses(wvds_srv_aes_key *k);

/* The key was deleted: its bytes are wiped at once and the fast path stops using it; the object lives on
 * until the last reference goes.
 */
WVDS_SRV_API void wvds_srv_aes_key_retire(wvds_srv_aes_key *k);

WVDS_SRV_API void wvds_srv_aes_key_release(wvds_srv_aes_key *k);

/* A stored key's EVP_PKEY for the fast path (after wvds_srv_fast_setup): `pkey` is a reference the caller
 * hands over (EVP_PKEY_up_ref'd for it; freed here on failure too), `signature` the EVP_SIGNATURE of a
 * PKEY_MLDSA/PKEY_SLHDSA key (fetched with fips=yes, kept by the service for its lifetime), `kind` a PKEY_*
 * code, `size` the exact signature size (ML-DSA, SLH-DSA), the largest DER signature (ECDSA) or the
 * ciphertext size (ML-KEM), `digest` an ECDSA key's HashAlg for HASH_DEFAULT, `private_ops` 1 if the key may
 * sign or decapsulate here (a private key of the FIPS provider, not of a TPM/HSM). Reference counted like
 * wvds_srv_aes_key. NULL for bad arguments.
 */
WVDS_SRV_API wvds_srv_pkey *wvds_srv_pkey_new(void *pkey, void *signature, uint32_t kind, uint32_t size,
                                              uint32_t digest, int private_ops);

/* Signatures the fast path has made with the key. */
WVDS_SRV_API uint64_t wvds_srv_pkey_uses(wvds_srv_pkey *k);

/* The key was deleted: waits for operations using it to finish, then frees the EVP_PKEY (a private key is
 * cleansed by its provider); the fast path no longer uses it.
 */
WVDS_SRV_API void wvds_srv_pkey_retire(wvds_srv_pkey *k);

WVDS_SRV_API void wvds_srv_pkey_release(wvds_srv_pkey *k);

/* A window over the structured nonces of one key (4-byte epoch || 8-byte counter), exact for the `window`
 * newest counters of each of the `streams` newest epochs; anything older is refused. `path`: its file
 * (created if missing, 0600, O_NOFOLLOW; an existing one keeps its geometry), NULL for memory only. `sync`:
 * msync each update. NULL on failure, with a reason in err and the errno of a failed system call in *os_error
 * (0: not a window of this version). Thread-safe.
 */
WVDS_SRV_API wvds_srv_replay *wvds_srv_replay_open(const char *path, uint32_t window, uint32_t streams,
                                                   int sync, int *os_error, char *err, size_t errlen);

/* REPLAY_FRESH (now recorded), REPLAY_SEEN or REPLAY_OLD. */
WVDS_SRV_API int wvds_srv_replay_check(wvds_srv_replay *r, const uint8_t *nonce12);

/* Refuse every epoch below `epoch` from now on (a window rebuilt after its file was lost). */
WVDS_SRV_API void wvds_srv_replay_raise_floor(wvds_srv_replay *r, uint32_t epoch);

WVDS_SRV_API uint64_t wvds_srv_replay_bytes(const wvds_srv_replay *r);

WVDS_SRV_API void wvds_srv_replay_close(wvds_srv_replay *r);

/* Makes k replay-protected: `replay` (owned by the key from now on) checks every authenticated decryption,
 * and encryptions take their nonces from the stream wvds_srv_aes_key_stream starts (until then they fail).
 */
WVDS_SRV_API void wvds_srv_aes_key_protect(wvds_srv_aes_key *k, wvds_srv_replay *replay);

/* Starts this run's nonce stream with fixed field `epoch` (persisted by the caller before). Software key: the
 * provider's IV generator picks the counter's start; a token's key: counters from `start`. 0, or -1.
 */
WVDS_SRV_API int wvds_srv_aes_key_stream(wvds_srv_aes_key *k, uint32_t epoch, uint64_t start);

/* A token key's next stream nonce. 0, or -1 if no stream is started. */
WVDS_SRV_API int wvds_srv_aes_key_next_nonce(wvds_srv_aes_key *k, uint8_t *nonce12);

/* Encrypts with a software key: a stream nonce for a protected key, else a fresh one generated by the
 * provider. ct has room for pt_len bytes, tag for 16. 0, or -1.
 */
WVDS_SRV_API int wvds_srv_aes_key_seal(wvds_srv_aes_key *k, const uint8_t *aad, uint32_t aad_len,
                                       const uint8_t *pt, uint32_t pt_len, uint8_t *nonce12, uint8_t *ct,
                                       uint8_t *tag);

/* wvds_srv_replay_check with the key's window (REPLAY_FRESH if it has none). */
WVDS_SRV_API int wvds_srv_aes_key_replay_check(wvds_srv_aes_key *k, const uint8_t *nonce12);

WVDS_SRV_API int wvds_srv_aes_key_replay_floor(wvds_srv_aes_key *k, uint32_t epoch);

/* One client's fast path: `bucket` its rate limiter (not owned; must outlive the session), `limit` the
 * configured GCM invocation limit. It answers AES_ENCRYPT/AES_DECRYPT requests that would succeed, for
 * granted keys whose counter is below the reservation and the limit, well-formed RANDOM requests of at most
 * MAX_PAYLOAD bytes, and for granted public-key keys: ML-DSA, SLH-DSA and ECDSA signatures (keys of the FIPS
 * provider) and verifications (keys named by id) that verify, MLKEM_ENCAPS and MLKEM_DECAPS that return the
 * secret (RETURN_SECRET, the grant has RELEASE_SECRET) - those only while no other request of the client is
 * waiting, so that overlapping ones reach the caller's worker pool - all while the bucket allows; everything
 * else (every error, a replayed nonce, a failed tag or signature, a new key ...) goes to the caller
 * unchanged.
 */
WVDS_SRV_API wvds_srv_fast *wvds_srv_fast_new(wvds_srv_bucket *bucket, uint64_t limit);

/* Lets this client's AES requests for key_id use `key` for the operations in usage (ENCRYPT | DECRYPT; other
 * bits ignored), after the caller has checked ownership and policy. Takes its own reference. 0, or -1 for bad
 * arguments.
 */
WVDS_SRV_API int wvds_srv_fast_grant(wvds_srv_fast *f, uint32_t key_id, wvds_srv_aes_key *key,
                                     uint32_t usage);

/* The same for a public-key key: usage bits SIGN, VERIFY, ENCAPS, DECAPS, RELEASE_SECRET (others ignored), as
 * the client has them on the key. A key id holds one grant: this replaces an AES one and vice versa.
 */
WVDS_SRV_API int wvds_srv_fast_grant_pkey(wvds_srv_fast *f, uint32_t key_id, wvds_srv_pkey *key,
                                          uint32_t usage);

/* The service is done with `slot` (call just before wvds_srv_complete): while held, a slot is never taken
 * again, whatever the client writes into its state word.
 */
WVDS_SRV_API void wvds_srv_fast_release(wvds_srv_fast *f, int slot);

/* 1 if the fast path took the rate-limit token of the request it returned in `slot` (then could not answer
 * it): the caller must not take another. Clears the mark; wvds_srv_fast_release clears it too.
 */
WVDS_SRV_API int wvds_srv_fast_charged(wvds_srv_fast *f, int slot);

/* From now on every request goes to the caller. */
WVDS_SRV_API void wvds_srv_fast_stop(wvds_srv_fast *f);

WVDS_SRV_API void wvds_srv_fast_free(wvds_srv_fast *f);
/* END GENERATED */

#ifdef __cplusplus
}
#endif

#endif
