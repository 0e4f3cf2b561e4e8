"""The native boundary, defined once: what Python and C share besides the wire protocol.

Two libraries cross it:
- "client": libl4re_crypto_service.so, the OEM's library (its API is the hand-written, documented
  include/wvds_crypto.h; listed here are only the functions Python calls, which the check holds against
  that header).
- "service": libwvds_service.so, crypto_service's own (the service half of the slot protocol, the AES
  fast path, invocation counters, replay windows, the token bucket). Its header src/c/service/wvds_srv.h
  is generated from this module.
Beside them, the transport's constants and layouts (handshake messages, control block, slot header),
which src/c/transport/slots.h gets as a generated block and wvds.transport reads from here.

`python -m wvds.native.cheader --check` (run by the build) fails when a generated block is stale or the
OEM header's prototypes disagree with CLIENT functions below; wvds.native.bind derives the ctypes table
from the same lists, so it cannot be stale.
"""
from __future__ import annotations

from dataclasses import dataclass

from wvds.protocol.constants import HEADER_SIZE, MAX_PAYLOAD, MAX_RESPONSE_PAYLOAD

LIBRARIES = {"client": "libl4re_crypto_service.so", "service": "libwvds_service.so"}


@dataclass(frozen=True)
class Function:
    library: str  # key of LIBRARIES
    name: str
    restype: str  # C type
    args: tuple[tuple[str, str], ...]  # (C type, parameter name)
    doc: str = ""


@dataclass(frozen=True)
class Struct:
    name: str  # C typedef
    fields: tuple[tuple[str, str, str], ...]  # (C type, name, comment); "T[n]" arrays as type "T" and name "x[n]"
    doc: str = ""


@dataclass(frozen=True)
class Constant:
    name: str  # without the WVDS_ prefix
    value: int
    doc: str = ""


def _ptr(ctype: str) -> str:
    """Pointer to ctype, spelt as C programmers write it: "T *", "T **"."""
    return ctype + "*" if ctype.endswith("*") else ctype + " *"


def _fn(library: str, proto: str, doc: str = "") -> Function:
    """Function from a one-line C prototype "ret name(type a, type b)" (the spec stays readable as C)."""
    head, _, rest = proto.partition("(")
    restype, name = head.rsplit(" ", 1)
    while name.startswith("*"):
        restype, name = _ptr(restype), name[1:]
    args = []
    for part in filter(None, (p.strip() for p in rest.rstrip(")").split(","))):
        if part == "void":
            continue
        ctype, pname = part.rsplit(" ", 1)
        while pname.startswith("*"):
            ctype, pname = _ptr(ctype), pname[1:]
        args.append((ctype.strip(), pname))
    return Function(library, name, restype.strip(), tuple(args), doc)


# --- transport constants (docs/transport.md) ----------------------------------------------------
SLOT_HEADER_SIZE = 64
SLOT_REQ_AREA = HEADER_SIZE + MAX_PAYLOAD
SLOT_RESP_AREA = HEADER_SIZE + MAX_RESPONSE_PAYLOAD
SLOT_RESP_OFFSET = SLOT_HEADER_SIZE + SLOT_REQ_AREA

TRANSPORT = (
    Constant("TRANSPORT_MAGIC", 0x53445657, '"WVDS" little-endian, first word of HELLO, WELCOME and the control block'),
    Constant("TRANSPORT_VERSION", 1),
    Constant("HELLO_SIZE", 16),
    Constant("WELCOME_SIZE", 32),
    Constant("SHM_LAYOUT_VERSION", 1),
    Constant("SHM_CONTROL_SIZE", 64),
    Constant("SHM_SLOTS_OFFSET", 4096, "the first slot starts on the second page"),
    Constant("SHM_MAX_SLOTS", 1024, "keeps the mapping size far inside a u32"),
    Constant("SLOT_HEADER_SIZE", SLOT_HEADER_SIZE),
    Constant("SLOT_REQ_OFFSET", SLOT_HEADER_SIZE),
    Constant("SLOT_REQ_AREA", SLOT_REQ_AREA, "a request frame: header + largest payload"),
    Constant("SLOT_RESP_OFFSET", SLOT_RESP_OFFSET),
    Constant("SLOT_RESP_AREA", SLOT_RESP_AREA, "a response frame: header + largest response payload"),
    Constant("SLOT_SIZE", 135168, "request + response areas rounded up to pages"),
)
SLOT_STATES = ("FREE", "SUBMITTED", "BUSY", "DONE")  # enum wvds_slot_state, in order from 0

# Handshake messages on the Unix socket (little-endian, struct module notation): (format, field names).
HELLO = ("<IHHQ", ("magic", "version", "requested_slots", "reserved"))
WELCOME = ("<IHHHHIIIQ", ("magic", "version", "status", "slots", "reserved0", "shm_size", "slot_size", "client_id",
                          "reserved"))

SHM_CONTROL = Struct("wvds_shm_control", (
    ("uint32_t", "magic", ""), ("uint16_t", "layout_version", ""), ("uint16_t", "slot_count", ""),
    ("uint32_t", "slot_size", ""), ("uint32_t", "req_offset", ""), ("uint32_t", "req_area", ""),
    ("uint32_t", "resp_offset", ""), ("uint32_t", "resp_area", ""), ("uint32_t", "client_id", ""),
    ("uint8_t", "reserved[32]", "for later layout versions"),
), "Control block at offset 0 (written once by the service; the service never reads it back).")
SLOT_HEADER = Struct("wvds_slot_header", (
    ("_Atomic uint32_t", "state", "enum wvds_slot_state; futex word"),
    ("_Atomic uint32_t", "req_len", "bytes of the request frame"),
    ("_Atomic uint32_t", "resp_len", "bytes of the response frame"),
    ("_Atomic uint32_t", "seq", "client cookie, echoed unchanged"),
    ("uint8_t", "reserved[48]", ""),
), "First 64 bytes of each slot.")

# --- service library ------------------------------------------------------------------------------
# typedef'd incomplete structs
OPAQUE = ("wvds_srv_bucket", "wvds_srv_aes_key", "wvds_srv_pkey", "wvds_srv_replay", "wvds_srv_fast")

SERVICE_CODES = (
    Constant("COUNT_OK", 0, "wvds_srv_aes_key_count: counted"),
    Constant("COUNT_LIMIT", 1, "the configured limit is used up"),
    Constant("COUNT_RESERVE", 2, "the persisted reservation is used up: persist more, reserve, count again"),
    Constant("REPLAY_FRESH", 0, "wvds_srv_replay_check: not seen before (now recorded)"),
    Constant("REPLAY_SEEN", 1, "accepted before"),
    Constant("REPLAY_OLD", 2, "older than the window"),
    Constant("REPLAY_MAX_WINDOW", 1 << 28),
    Constant("REPLAY_MAX_STREAMS", 16),
    Constant("SRV_TIMEOUT", -1, "wvds_srv_next/serve: nothing within timeout_ms"),
    Constant("SRV_GONE", -2, "the client socket reports hangup or error"),
    Constant("SRV_ERROR", -3, "any other error (errno kept; EINVAL for bad arguments)"),
    Constant("PKEY_MLDSA", 1, "wvds_srv_pkey_new kinds: pure ML-DSA (MLDSA_VERIFY)"),
    Constant("PKEY_SLHDSA", 2, "pure SLH-DSA (SLHDSA_VERIFY)"),
    Constant("PKEY_ECDSA", 3, "ECDSA P-256/P-384 (ECDSA_VERIFY)"),
    Constant("PKEY_MLKEM", 4, "ML-KEM (MLKEM_ENCAPS, MLKEM_DECAPS)"),
)

OSSL_ENTRY_POINTS = Struct("wvds_srv_ossl", tuple(("void *", name, fn) for name, fn in (
    ("cipher", "EVP_CIPHER *, AES-256-GCM fetched with fips=yes, owned by the service for its lifetime"),
    ("ctx_new", "EVP_CIPHER_CTX_new"), ("ctx_free", "EVP_CIPHER_CTX_free"),
    ("encrypt_init", "EVP_EncryptInit_ex2"), ("encrypt_update", "EVP_EncryptUpdate"),
    ("encrypt_final", "EVP_EncryptFinal_ex"), ("decrypt_init", "EVP_DecryptInit_ex2"),
    ("decrypt_update", "EVP_DecryptUpdate"), ("decrypt_final", "EVP_DecryptFinal_ex"),
    ("ctx_ctrl", "EVP_CIPHER_CTX_ctrl"), ("ctx_get_params", "EVP_CIPHER_CTX_get_params"),
    ("rand_bytes", "RAND_bytes_ex, called with the default library context (the service's: fips=yes)"),
    ("pkey_free", "EVP_PKEY_free"), ("pkey_ctx_new", "EVP_PKEY_CTX_new_from_pkey (default library context)"),
    ("pkey_ctx_free", "EVP_PKEY_CTX_free"), ("verify_message_init", "EVP_PKEY_verify_message_init"),
    ("verify_init", "EVP_PKEY_verify_init_ex"), ("verify", "EVP_PKEY_verify"), ("md_ctx_new", "EVP_MD_CTX_new"),
    ("md_ctx_free", "EVP_MD_CTX_free"), ("digest_verify_init", "EVP_DigestVerifyInit_ex"),
    ("digest_verify", "EVP_DigestVerify"), ("encapsulate_init", "EVP_PKEY_encapsulate_init"),
    ("encapsulate", "EVP_PKEY_encapsulate"), ("decapsulate_init", "EVP_PKEY_decapsulate_init"),
    ("decapsulate", "EVP_PKEY_decapsulate"), ("sign_message_init", "EVP_PKEY_sign_message_init"),
    ("sign_init", "EVP_PKEY_sign_init_ex"), ("sign", "EVP_PKEY_sign"),
    ("digest_sign_init", "EVP_DigestSignInit_ex"), ("digest_sign", "EVP_DigestSign"))),
    "The libcrypto functions the fast path calls (addresses from the service's libcrypto, prototypes those of "
    "OpenSSL 3) and the cipher: the library is compiled against OpenSSL's headers but never links libcrypto.")

_S = "service"
SERVICE = (
    # the service half of the slot protocol
    _fn(_S, "uint32_t wvds_srv_shm_size(uint16_t slot_count)",
        "Bytes of shared memory for slot_count slots (SHM_SLOTS_OFFSET + slot_count * SLOT_SIZE); 0 if slot_count "
        "is 0 or above SHM_MAX_SLOTS."),
    _fn(_S, "int wvds_srv_init_control(void *shm, uint16_t slot_count, uint32_t client_id)",
        "Zeroes the whole mapping and writes the control block. 0, or -1 for a NULL pointer or a bad slot count."),
    _fn(_S, "int wvds_srv_next(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us, "
            "int timeout_ms, uint8_t *out, uint32_t out_cap, uint32_t *out_len)",
        "Waits for the next submitted request and takes it (SUBMITTED -> BUSY): scans the slots round-robin; if "
        "none is submitted, spins for spin_us, then polls the doorbell (drained when it fires) and the client "
        "socket for up to timeout_ms (< 0: no limit; a negative fd is not watched). Copies min(req_len, "
        "SLOT_REQ_AREA) bytes of the frame into out (out_cap >= SLOT_REQ_AREA), reading req_len exactly once, "
        "sets *out_len and returns the slot (>= 0): parse only that copy. Else SRV_TIMEOUT, SRV_GONE or SRV_ERROR."),
    _fn(_S, "int wvds_srv_serve(void *shm, uint16_t slot_count, int doorbell_fd, int sock_fd, uint32_t spin_us, "
            "int timeout_ms, wvds_srv_fast *fast, uint8_t *out, uint32_t out_cap, uint32_t *out_len)",
        "wvds_srv_next, except that the requests the fast path `fast` can answer are answered and completed here "
        "and the wait goes on; only the others are returned, and held until wvds_srv_fast_release. fast NULL: "
        "exactly wvds_srv_next."),
    _fn(_S, "int wvds_srv_pending(void *shm, uint16_t slot_count)",
        "How many slots are submitted and not yet taken (a snapshot, a hint only). -1 for bad arguments."),
    _fn(_S, "int wvds_srv_complete(void *shm, uint16_t slot_count, int slot, const uint8_t *resp, uint32_t resp_len)",
        "Writes the response frame into the slot, then resp_len, stores DONE with release semantics and wakes the "
        "client. Safe from any thread. 0, or -1 when the slot is out of range, resp_len exceeds SLOT_RESP_AREA or "
        "the slot is not BUSY."),
    # the fast path's libcrypto
    _fn(_S, "int wvds_srv_fast_setup(const wvds_srv_ossl *fns)",
        "Installs the libcrypto entry points (once, before any session; a second call returns -1). 0, or -1 if a "
        "pointer is NULL. Without it the fast path is off."),
    # token bucket
    _fn(_S, "wvds_srv_bucket *wvds_srv_bucket_new(double rate, uint32_t burst, double cooldown_s)",
        "A client identity's rate limit: `rate` tokens per second refill `burst`; a dry bucket refuses for "
        "cooldown_s. rate <= 0: every request is allowed. Thread-safe."),
    _fn(_S, "int wvds_srv_bucket_allow(wvds_srv_bucket *b)", "Takes a token: 1 allowed, 0 refused."),
    _fn(_S, "void wvds_srv_bucket_free(wvds_srv_bucket *b)"),
    # AES keys and their invocation counters
    _fn(_S, "wvds_srv_aes_key *wvds_srv_aes_key_new(const uint8_t *key32, uint64_t uses, uint64_t reserved)",
        "An AES-256 key's invocation counter (the only one) and, for a software key, its bytes (key32 NULL: a "
        "token's key, counted here, never used by the fast path). Reference counted: this is the service's "
        "reference (wvds_srv_aes_key_release); each grant holds its own. A restarted service passes uses == "
        "reserved, so a crash can skip invocations but never repeat one."),
    _fn(_S, "int wvds_srv_aes_key_count(wvds_srv_aes_key *k, uint64_t limit)",
        "Counts one invocation: COUNT_OK, COUNT_LIMIT or COUNT_RESERVE; nothing is counted unless COUNT_OK."),
    _fn(_S, "void wvds_srv_aes_key_reserve(wvds_srv_aes_key *k, uint64_t reserved)"),
    _fn(_S, "uint64_t wvds_srv_aes_key_uses(wvds_srv_aes_key *k)"),
    _fn(_S, "void wvds_srv_aes_key_retire(wvds_srv_aes_key *k)",
        "The key was deleted: its bytes are wiped at once and the fast path stops using it; the object lives on "
        "until the last reference goes."),
    _fn(_S, "void wvds_srv_aes_key_release(wvds_srv_aes_key *k)"),
    # OpenSSL keys for the fast path's public-key operations (pkey_fast.c)
    _fn(_S, "wvds_srv_pkey *wvds_srv_pkey_new(void *pkey, void *signature, uint32_t kind, uint32_t size, "
            "uint32_t digest, int private_ops)",
        "A stored key's EVP_PKEY for the fast path (after wvds_srv_fast_setup): `pkey` is a reference the caller "
        "hands over (EVP_PKEY_up_ref'd for it; freed here on failure too), `signature` the EVP_SIGNATURE of a "
        "PKEY_MLDSA/PKEY_SLHDSA key (fetched with fips=yes, kept by the service for its lifetime), `kind` a "
        "PKEY_* code, `size` the exact signature size (ML-DSA, SLH-DSA), the largest DER signature (ECDSA) or "
        "the ciphertext size (ML-KEM), `digest` an ECDSA key's HashAlg for HASH_DEFAULT, `private_ops` 1 if "
        "the key may sign or decapsulate here (a private key of the FIPS provider, not of a TPM/HSM). Reference "
        "counted like wvds_srv_aes_key. NULL for bad arguments."),
    _fn(_S, "uint64_t wvds_srv_pkey_uses(wvds_srv_pkey *k)", "Signatures the fast path has made with the key."),
    _fn(_S, "void wvds_srv_pkey_retire(wvds_srv_pkey *k)",
        "The key was deleted: waits for operations using it to finish, then frees the EVP_PKEY (a private key "
        "is cleansed by its provider); the fast path no longer uses it."),
    _fn(_S, "void wvds_srv_pkey_release(wvds_srv_pkey *k)"),
    # replay windows (replay.c, docs/replay.md)
    _fn(_S, "wvds_srv_replay *wvds_srv_replay_open(const char *path, uint32_t window, uint32_t streams, int sync, "
            "int *os_error, char *err, size_t errlen)",
        "A window over the structured nonces of one key (4-byte epoch || 8-byte counter), exact for the `window` "
        "newest counters of each of the `streams` newest epochs; anything older is refused. `path`: its file "
        "(created if missing, 0600, O_NOFOLLOW; an existing one keeps its geometry), NULL for memory only. "
        "`sync`: msync each update. NULL on failure, with a reason in err and the errno of a failed system "
        "call in *os_error (0: not a window of this version). Thread-safe."),
    _fn(_S, "int wvds_srv_replay_check(wvds_srv_replay *r, const uint8_t *nonce12)",
        "REPLAY_FRESH (now recorded), REPLAY_SEEN or REPLAY_OLD."),
    _fn(_S, "void wvds_srv_replay_raise_floor(wvds_srv_replay *r, uint32_t epoch)",
        "Refuse every epoch below `epoch` from now on (a window rebuilt after its file was lost)."),
    _fn(_S, "uint64_t wvds_srv_replay_bytes(const wvds_srv_replay *r)"),
    _fn(_S, "void wvds_srv_replay_close(wvds_srv_replay *r)"),
    _fn(_S, "void wvds_srv_aes_key_protect(wvds_srv_aes_key *k, wvds_srv_replay *replay)",
        "Makes k replay-protected: `replay` (owned by the key from now on) checks every authenticated decryption, "
        "and encryptions take their nonces from the stream wvds_srv_aes_key_stream starts (until then they fail)."),
    _fn(_S, "int wvds_srv_aes_key_stream(wvds_srv_aes_key *k, uint32_t epoch, uint64_t start)",
        "Starts this run's nonce stream with fixed field `epoch` (persisted by the caller before). Software key: "
        "the provider's IV generator picks the counter's start; a token's key: counters from `start`. 0, or -1."),
    _fn(_S, "int wvds_srv_aes_key_next_nonce(wvds_srv_aes_key *k, uint8_t *nonce12)",
        "A token key's next stream nonce. 0, or -1 if no stream is started."),
    _fn(_S, "int wvds_srv_aes_key_seal(wvds_srv_aes_key *k, const uint8_t *aad, uint32_t aad_len, const uint8_t *pt, "
            "uint32_t pt_len, uint8_t *nonce12, uint8_t *ct, uint8_t *tag)",
        "Encrypts with a software key: a stream nonce for a protected key, else a fresh one generated by the "
        "provider. ct has room for pt_len bytes, tag for 16. 0, or -1."),
    _fn(_S, "int wvds_srv_aes_key_replay_check(wvds_srv_aes_key *k, const uint8_t *nonce12)",
        "wvds_srv_replay_check with the key's window (REPLAY_FRESH if it has none)."),
    _fn(_S, "int wvds_srv_aes_key_replay_floor(wvds_srv_aes_key *k, uint32_t epoch)"),
    # one client's fast path
    _fn(_S, "wvds_srv_fast *wvds_srv_fast_new(wvds_srv_bucket *bucket, uint64_t limit)",
        "One client's fast path: `bucket` its rate limiter (not owned; must outlive the session), `limit` the "
        "configured GCM invocation limit. It answers AES_ENCRYPT/AES_DECRYPT requests that would succeed, for "
        "granted keys whose counter is below the reservation and the limit, well-formed RANDOM requests of at "
        "most MAX_PAYLOAD bytes, and for granted public-key keys: ML-DSA, SLH-DSA and ECDSA signatures (keys of "
        "the FIPS provider) and verifications (keys named by id) that verify, MLKEM_ENCAPS and MLKEM_DECAPS "
        "that return the secret (RETURN_SECRET, the grant has RELEASE_SECRET) - those only while no other "
        "request of the client is waiting, so that "
        "overlapping ones reach the caller's worker pool - all while the bucket allows; everything else (every "
        "error, a replayed nonce, a failed tag or signature, a new key ...) goes to the caller unchanged."),
    _fn(_S, "int wvds_srv_fast_grant(wvds_srv_fast *f, uint32_t key_id, wvds_srv_aes_key *key, uint32_t usage)",
        "Lets this client's AES requests for key_id use `key` for the operations in usage (ENCRYPT | DECRYPT; "
        "other bits ignored), after the caller has checked ownership and policy. Takes its own reference. "
        "0, or -1 for bad arguments."),
    _fn(_S, "int wvds_srv_fast_grant_pkey(wvds_srv_fast *f, uint32_t key_id, wvds_srv_pkey *key, uint32_t usage)",
        "The same for a public-key key: usage bits SIGN, VERIFY, ENCAPS, DECAPS, RELEASE_SECRET (others ignored), as "
        "the client has them on the key. A key id holds one grant: this replaces an AES one and vice versa."),
    _fn(_S, "void wvds_srv_fast_release(wvds_srv_fast *f, int slot)",
        "The service is done with `slot` (call just before wvds_srv_complete): while held, a slot is never taken "
        "again, whatever the client writes into its state word."),
    _fn(_S, "int wvds_srv_fast_charged(wvds_srv_fast *f, int slot)",
        "1 if the fast path took the rate-limit token of the request it returned in `slot` (then could not answer "
        "it): the caller must not take another. Clears the mark; wvds_srv_fast_release clears it too."),
    _fn(_S, "void wvds_srv_fast_stop(wvds_srv_fast *f)", "From now on every request goes to the caller."),
    _fn(_S, "void wvds_srv_fast_free(wvds_srv_fast *f)"),
)

# --- the client library functions Python calls (declared in include/wvds_crypto.h) ----------------
CLIENT_OPTIONS = Struct("wvds_options", (
    ("int32_t", "timeout_ms", ""), ("uint16_t", "requested_slots", ""), ("uint16_t", "reserved0", ""),
    ("uint32_t", "spin_us", ""), ("uint32_t", "reserved[5]", ""),
))
_C = "client"
CLIENT = (
    _fn(_C, "wvds_status wvds_connect_ex(const char *socket_path, const wvds_options *opts, wvds_conn **out)"),
    _fn(_C, "wvds_status wvds_transact(wvds_conn *conn, uint8_t type, const void *payload, size_t len, "
            "void *resp, size_t resp_cap, size_t *resp_len)"),
    _fn(_C, "void wvds_close(wvds_conn *conn)"),
)

FUNCTIONS = SERVICE + CLIENT
STRUCTS = (SHM_CONTROL, SLOT_HEADER, OSSL_ENTRY_POINTS, CLIENT_OPTIONS)


def functions(library: str) -> tuple[Function, ...]:
    return tuple(f for f in FUNCTIONS if f.library == library)
