/* crypto_service's AES-256-GCM fast path and per-client rate limiter (docs/transport.md,
 * "Fast path").
 *
 * Exported from libl4re_crypto_service.so for crypto_service (ctypes), like wvds_srv.h;
 * not part of the OEM header. The library still does not link libcrypto: the service
 * hands it the libcrypto entry points and the fetched AES-256-GCM cipher of the libcrypto
 * it has already loaded and checked (wvds_srv_fast_setup), so OEM programs never get it.
 *
 * What the fast path answers, without the Python dispatcher: AES_ENCRYPT and AES_DECRYPT
 * requests whose header is valid, whose key the service has granted to this client's
 * session (wvds_srv_fast_grant, after the Python path has checked ownership and policy
 * once) and whose invocation counter is below both the persisted reservation and the
 * configured limit, while the client's token bucket allows. Everything else - every
 * error, first use of a key, a counter reservation, a replayed nonce, a key whose nonce
 * stream has not started, a failed tag - goes to the Python path unchanged, which then answers it with the status
 * of docs/protocol.md. So both paths give the same answers; the fast one only for the
 * requests that succeed.
 *
 * ctypes signatures:
 *   wvds_srv_fast_setup:     [POINTER(wvds_srv_ossl)] -> c_int
 *   wvds_srv_bucket_new:     [c_double, c_uint32, c_double] -> c_void_p
 *   wvds_srv_bucket_allow:   [c_void_p] -> c_int
 *   wvds_srv_bucket_free:    [c_void_p] -> None
 *   wvds_srv_aes_key_new:    [c_char_p, c_uint64, c_uint64] -> c_void_p
 *   wvds_srv_aes_key_count:  [c_void_p, c_uint64] -> c_int
 *   wvds_srv_aes_key_reserve:[c_void_p, c_uint64] -> None
 *   wvds_srv_aes_key_uses:   [c_void_p] -> c_uint64
 *   wvds_srv_aes_key_retire: [c_void_p] -> None
 *   wvds_srv_aes_key_release:[c_void_p] -> None
 *   wvds_srv_replay_open:    [c_char_p, c_uint32, c_uint32, c_int, POINTER(c_int), c_char_p, c_size_t]
 *                            -> c_void_p
 *   wvds_srv_replay_check:   [c_void_p, c_char_p] -> c_int
 *   wvds_srv_replay_raise_floor: [c_void_p, c_uint32] -> None
 *   wvds_srv_replay_bytes:   [c_void_p] -> c_uint64
 *   wvds_srv_replay_close:   [c_void_p] -> None
 *   wvds_srv_aes_key_protect:[c_void_p, c_void_p] -> None
 *   wvds_srv_aes_key_stream: [c_void_p, c_uint32, c_uint64] -> c_int
 *   wvds_srv_aes_key_next_nonce: [c_void_p, c_char_p] -> c_int
 *   wvds_srv_aes_key_seal:   [c_void_p, c_char_p, c_uint32, c_char_p, c_uint32, c_char_p, c_char_p,
 *                             c_char_p] -> c_int
 *   wvds_srv_aes_key_replay_check: [c_void_p, c_char_p] -> c_int
 *   wvds_srv_aes_key_replay_floor: [c_void_p, c_uint32] -> c_int
 *   wvds_srv_fast_new:       [c_void_p, c_uint64] -> c_void_p
 *   wvds_srv_fast_grant:     [c_void_p, c_uint32, c_void_p, c_uint32] -> c_int
 *   wvds_srv_fast_release:   [c_void_p, c_int] -> None
 *   wvds_srv_fast_stop:      [c_void_p] -> None
 *   wvds_srv_fast_free:      [c_void_p] -> None
 *   wvds_srv_serve:          [c_void_p, c_uint16, c_int, c_int, c_uint32, c_int, c_void_p, c_void_p,
 *                             c_uint32, POINTER(c_uint32)] -> c_int
 */
#ifndef WVDS_SRV_FAST_H
#define WVDS_SRV_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "wvds_crypto.h" /* WVDS_API */

#ifdef __cplusplus
extern "C" {
#endif

/* The libcrypto functions the fast path calls (addresses from the service's libcrypto) and
 * the AES-256-GCM EVP_CIPHER it fetched with fips=yes. Prototypes are those of OpenSSL 3. */
typedef struct wvds_srv_ossl {
    void *cipher;             /* EVP_CIPHER *, owned by the service for the process lifetime */
    void *ctx_new;            /* EVP_CIPHER_CTX_new */
    void *ctx_free;           /* EVP_CIPHER_CTX_free */
    void *encrypt_init;       /* EVP_EncryptInit_ex2 */
    void *encrypt_update;     /* EVP_EncryptUpdate */
    void *encrypt_final;      /* EVP_EncryptFinal_ex */
    void *decrypt_init;       /* EVP_DecryptInit_ex2 */
    void *decrypt_update;     /* EVP_DecryptUpdate */
    void *decrypt_final;      /* EVP_DecryptFinal_ex */
    void *ctx_ctrl;           /* EVP_CIPHER_CTX_ctrl */
    void *ctx_get_params;     /* EVP_CIPHER_CTX_get_params */
} wvds_srv_ossl;

/* Installs the entry points (once, before any session; later calls replace nothing and
 * return -1). 0 on success, -1 if a pointer is NULL. Without it the fast path is off. */
WVDS_API int wvds_srv_fast_setup(const wvds_srv_ossl *fns);

/* --- token bucket (the service's per-client rate limit) ------------------------------
 * `rate` tokens per second refill a bucket of `burst`; a request takes one. When it runs
 * dry the client is refused for `cooldown_s`. rate <= 0: every request is allowed.
 * Thread-safe. */
typedef struct wvds_srv_bucket wvds_srv_bucket;
WVDS_API wvds_srv_bucket *wvds_srv_bucket_new(double rate, uint32_t burst, double cooldown_s);
WVDS_API int wvds_srv_bucket_allow(wvds_srv_bucket *b); /* 1 allowed, 0 refused */
WVDS_API void wvds_srv_bucket_free(wvds_srv_bucket *b);

/* --- AES-256 keys and their invocation counters ----------------------------------------
 * One per AES key in the service's key table; the counter here is the only one. key32 may
 * be NULL for a key held by an HSM (counted here, never used by the fast path). Reference
 * counted: _new returns the service's reference, dropped by _release; each session grant
 * holds its own. _retire (the key was deleted) wipes the key bytes at once and stops the
 * fast path using the key; the object itself lives on until the last reference goes. */
typedef struct wvds_srv_aes_key wvds_srv_aes_key;
enum { WVDS_COUNT_OK = 0, WVDS_COUNT_LIMIT = 1, WVDS_COUNT_RESERVE = 2 };
/* A restarted service passes uses == reserved (it continues after everything reserved
 * before, so a crash can skip invocations but never repeat one). */
WVDS_API wvds_srv_aes_key *wvds_srv_aes_key_new(const uint8_t *key32, uint64_t uses, uint64_t reserved);
/* Counts one invocation: WVDS_COUNT_OK; WVDS_COUNT_LIMIT if `limit` are used up;
 * WVDS_COUNT_RESERVE if the persisted reservation is used up (persist more, call
 * wvds_srv_aes_key_reserve, count again). Nothing is counted unless it returns OK. */
WVDS_API int wvds_srv_aes_key_count(wvds_srv_aes_key *k, uint64_t limit);
WVDS_API void wvds_srv_aes_key_reserve(wvds_srv_aes_key *k, uint64_t reserved);
WVDS_API uint64_t wvds_srv_aes_key_uses(wvds_srv_aes_key *k);
WVDS_API void wvds_srv_aes_key_retire(wvds_srv_aes_key *k);
WVDS_API void wvds_srv_aes_key_release(wvds_srv_aes_key *k);

/* --- replay protection (replay.c, docs/replay.md) --------------------------------------
 * A window over the structured nonces of one key (4-byte epoch || 8-byte counter): exact
 * for the `window` newest counters of each of the `streams` newest epochs; anything older
 * is refused. `path` is its file (created if missing, 0600, O_NOFOLLOW; an existing file
 * keeps the geometry it was created with), NULL for memory only. `sync`: msync each update
 * before returning (survives power cuts; without it, survives any death of the process).
 * On failure NULL, a reason in err and in *os_error the errno of a failed system call (0:
 * the file is not a window of this version). Thread-safe. */
typedef struct wvds_srv_replay wvds_srv_replay;
enum { WVDS_REPLAY_FRESH = 0, WVDS_REPLAY_SEEN = 1, WVDS_REPLAY_OLD = 2 };
#define WVDS_REPLAY_MAX_WINDOW (1u << 28)
#define WVDS_REPLAY_MAX_STREAMS 16u
WVDS_API wvds_srv_replay *wvds_srv_replay_open(const char *path, uint32_t window, uint32_t streams, int sync,
                                               int *os_error, char *err, size_t errlen);
/* FRESH (and now recorded), SEEN (accepted before) or OLD (older than the window). */
WVDS_API int wvds_srv_replay_check(wvds_srv_replay *r, const uint8_t *nonce12);
/* Refuse every epoch below `epoch` from now on (a window rebuilt after its file was lost). */
WVDS_API void wvds_srv_replay_raise_floor(wvds_srv_replay *r, uint32_t epoch);
WVDS_API uint64_t wvds_srv_replay_bytes(const wvds_srv_replay *r);
WVDS_API void wvds_srv_replay_close(wvds_srv_replay *r);

/* Makes `k` replay-protected: `replay` (owned by the key from now on) checks every
 * authenticated decryption, and encryptions take their nonces from the stream that
 * wvds_srv_aes_key_stream starts (until then they fail). */
WVDS_API void wvds_srv_aes_key_protect(wvds_srv_aes_key *k, wvds_srv_replay *replay);
/* Starts this run's nonce stream with fixed field `epoch` (persisted by the caller before).
 * Software key: the provider's IV generator, which picks the counter's start; a key in an
 * HSM (no bytes): counters from `start`. 0, or -1. */
WVDS_API int wvds_srv_aes_key_stream(wvds_srv_aes_key *k, uint32_t epoch, uint64_t start);
/* An HSM key's next nonce of the stream. 0, or -1 if no stream is started. */
WVDS_API int wvds_srv_aes_key_next_nonce(wvds_srv_aes_key *k, uint8_t *nonce12);
/* Encrypts with a software key: a stream nonce for a protected key, else a fresh random one
 * generated by the provider. ct has room for pt_len bytes, tag for 16. 0, or -1. */
WVDS_API int wvds_srv_aes_key_seal(wvds_srv_aes_key *k, const uint8_t *aad, uint32_t aad_len, const uint8_t *pt,
                                   uint32_t pt_len, uint8_t *nonce12, uint8_t *ct, uint8_t *tag);
/* wvds_srv_replay_check with the key's window (FRESH if it has none). */
WVDS_API int wvds_srv_aes_key_replay_check(wvds_srv_aes_key *k, const uint8_t *nonce12);
WVDS_API int wvds_srv_aes_key_replay_floor(wvds_srv_aes_key *k, uint32_t epoch);

/* --- one client's fast path -------------------------------------------------------------
 * `bucket` is the client's rate limiter (not owned; must outlive the session); `limit` the
 * configured GCM invocation limit. */
typedef struct wvds_srv_fast wvds_srv_fast;
WVDS_API wvds_srv_fast *wvds_srv_fast_new(wvds_srv_bucket *bucket, uint64_t limit);
/* Lets this client's AES requests for key_id use `key` for the operations in `usage`
 * (WVDS_USAGE_ENCRYPT | WVDS_USAGE_DECRYPT; other bits ignored). The caller has checked
 * that the client may. Takes its own reference. 0, or -1 for bad arguments. */
WVDS_API int wvds_srv_fast_grant(wvds_srv_fast *f, uint32_t key_id, wvds_srv_aes_key *key, uint32_t usage);
/* From now on every request goes to the caller (the service is stopping). */
WVDS_API void wvds_srv_fast_stop(wvds_srv_fast *f);
/* Slot ownership. A slot wvds_srv_serve returns is held by the service until it calls
 * wvds_srv_fast_release (just before wvds_srv_complete): while held, it is never taken again,
 * whatever the client writes into its state word (a client that flips BUSY back to SUBMITTED
 * gets nothing queued twice). Releasing before the completion keeps an honest client's next
 * request in that slot from waiting: it can only submit after it has seen DONE. */
WVDS_API void wvds_srv_fast_release(wvds_srv_fast *f, int slot);
int wvds_srv_fast_held(wvds_srv_fast *f, unsigned slot); /* for shm_slots.c, not exported */
void wvds_srv_fast_hold(wvds_srv_fast *f, unsigned slot);
WVDS_API void wvds_srv_fast_free(wvds_srv_fast *f);

/* wvds_srv_next (wvds_srv.h), except that requests the fast path `f` can answer are
 * answered and completed here and the wait goes on; only the others are returned, and
 * held (see wvds_srv_fast_release) until released. f may be NULL (then it is wvds_srv_next:
 * no fast path, no holds). */
WVDS_API int wvds_srv_serve(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us,
                            int timeout_ms, wvds_srv_fast *f, uint8_t *out, uint32_t out_cap, uint32_t *out_len);

#ifdef __cplusplus
}
#endif

#endif
