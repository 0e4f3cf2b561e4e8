"""Fuzz target: a request frame, from the bytes a client left in shared memory to the response frame.

Runs the service's real path after the copy out of shared memory: wvds.protocol (header, payload
decoders) and crypto_service.dispatch.handle with a real KeyTable on the memory key store and
wvds.ossl in FIPS mode (OpenSSL 3.6.3), so decoding, key lookup, policy and the cryptography all
run. Input: byte 0 picks the client (low bits mod 3: owner of the keys / a stranger / a uid with a
grant) and, with bit 7 clear, has the harness set the header's length field to the payload's true
length (so mutations explore payloads instead of dying at the length check); the rest is the frame.

Properties checked on every input (a failure is a crash):
* handle() answers a well-formed response frame; an error carries an empty payload;
* never INTERNAL_ERROR (the service's own word for "a bug");
* a client that cannot see a key gets exactly the status it gets for a key id that does not exist
  (same frame with the key id replaced): key ids cannot be probed;
* no AES-GCM nonce is ever returned twice.
After each input the key table is put back to its initial keys, so inputs stay independent.

    python tests/fuzz/fuzz_request.py -runs=5000 tests/fuzz/corpus/request   (with the FIPS env)
"""
from __future__ import annotations

import collections
import json
import os
import struct

import fuzzlib  # noqa: F401  (sys.path)
from fuzzlib import BASE_IDS, BASE_KEYS, GRANTED_USAGE, GRANTEE_UID, OWNER_UID, PEERS, SHARED_LABEL

import atheris

with atheris.instrument_imports(include=["wvds.protocol", "wvds.crypto_service"]):
    from wvds import ossl
    from wvds.crypto_service import dispatch
    from wvds.crypto_service.config import parse as parse_config
    from wvds.crypto_service.context import RequestContext
    from wvds.crypto_service.keys import KeyTable
    from wvds.peer import Peer
    from wvds.crypto_service import fastpath
    from wvds.crypto_service.fastpath import TokenBucket
    from wvds.keystore.memory import MemoryKeyStore
    from wvds.protocol.constants import Algorithm, KeyFormat, RequestType, Status
    from wvds.protocol.header import parse_response

# Where the key id sits in each request payload: at offset 0 (u32), or inside a key reference
# (kind byte 0x00 at offset 0, u32 at offset 1).
KEY_ID_AT_0 = {RequestType.AES_ENCRYPT, RequestType.AES_DECRYPT, RequestType.MLDSA_SIGN, RequestType.MLKEM_DECAPS,
               RequestType.ECDSA_SIGN, RequestType.KEY_EXPORT_PUBLIC, RequestType.KEY_DELETE,
               RequestType.KEY_DESCRIBE, RequestType.KEY_EXPORT}
KEY_REF_AT_0 = {RequestType.MLDSA_VERIFY, RequestType.ECDSA_VERIFY, RequestType.MLKEM_ENCAPS}
ABSENT_ID = 0xFFFFFFF0  # never handed out (ids are sequential from 0x101 here)


class SequentialIdKeyTable(KeyTable):
    """Key ids 0x101, 0x102, ... instead of random ones, so the corpus can name keys."""

    def __init__(self, store, config):
        super().__init__(store, config)
        self.next_id = BASE_IDS[0]

    def _new_id(self) -> int:
        while self.next_id in self._keys or self.next_id == 0:
            self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        return self.next_id


def _world():
    ossl.load()
    fastpath.enable()  # as the service does: the AES keys' C side (counters, nonce streams) uses our libcrypto
    cfg = parse_config({
        "socket": {"path": "/nonexistent/fuzz.sock"}, "access": {"allow_uids": list(PEERS)},
        "grants": [{"owner_uid": OWNER_UID, "label": SHARED_LABEL, "uids": [GRANTEE_UID], "usage": GRANTED_USAGE}],
        "limits": {"max_keys_per_client": len(BASE_KEYS) + 1, "replay_window": 64, "gcm_invocation_limit": 1 << 20},
        "keystore": {"backend": "memory"},
    }, "<fuzz>")
    table = SequentialIdKeyTable(MemoryKeyStore({"backend": "memory"}), cfg)
    owner = Peer(1, OWNER_UID, OWNER_UID)
    for alg, usage, label, form, material in BASE_KEYS:
        alg, form = Algorithm(alg), KeyFormat(form)
        table.import_key(owner, alg, usage, label, form, material)
    assert tuple(sorted(table._keys)) == BASE_IDS, sorted(table._keys)
    status = {"product": "wvds-crypto-service", "fuzz": True}
    contexts = [RequestContext(Peer(i + 1, uid, uid), i + 1, table, cfg, lambda: status) for i, uid in enumerate(PEERS)]
    return table, contexts


TABLE, CONTEXTS = _world()
BASE = {k: (v, v.record) for k, v in TABLE._keys.items()}
NO_LIMIT = TokenBucket(0, 1, 0)
NONCES: set[bytes] = set()
STATS: collections.Counter = collections.Counter()


def _restore() -> None:
    """Back to the initial keys (deleted ones return, created ones go); counters keep counting."""
    for key_id in list(TABLE._keys):
        if key_id not in BASE:
            TABLE._keys.pop(key_id)
            TABLE.store.delete(key_id)
    for key_id, (live, _record) in BASE.items():
        if key_id not in TABLE._keys:
            TABLE._keys[key_id] = live
            TABLE.store.save(live.record)
    TABLE.next_id = BASE_IDS[0]


def _invisible(ctx, key_id: int) -> bool:
    live = TABLE._keys.get(key_id)
    return live is not None and live.record.owner_uid != ctx.peer.uid and not TABLE.usage_for(ctx.peer, live)


def _with_absent_id(frame: bytes, offset: int) -> bytes:
    return frame[:8 + offset] + struct.pack("<I", ABSENT_ID) + frame[8 + offset + 4:]


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    ctx = CONTEXTS[(data[0] & 0x7F) % len(CONTEXTS)]
    frame = data[1:]
    if not data[0] & 0x80 and len(frame) >= 8:  # let mutations explore payloads, not just the length check
        frame = frame[:4] + struct.pack("<I", len(frame) - 8) + frame[8:]
    try:
        status, payload = parse_response(dispatch.handle(ctx, NO_LIMIT, frame))
        STATS[status.name] += 1
        if status == Status.INTERNAL_ERROR:
            raise AssertionError("INTERNAL_ERROR: the service hit a bug (see the log line above)")
        if status != Status.SUCCESS and payload:
            raise AssertionError(f"{status.name} with a {len(payload)}-byte payload")
        rtype = frame[2] if len(frame) > 2 else None
        if status == Status.SUCCESS and rtype == RequestType.AES_ENCRYPT:
            nonce = payload[:12]
            if nonce in NONCES:
                raise AssertionError(f"AES-GCM nonce {nonce.hex()} returned twice")
            NONCES.add(nonce)
        offset = 0 if rtype in KEY_ID_AT_0 else 1 if rtype in KEY_REF_AT_0 and len(frame) > 8 and frame[8] == 0 \
            else None
        if offset is not None and len(frame) >= 8 + offset + 4:
            key_id = struct.unpack_from("<I", frame, 8 + offset)[0]
            if _invisible(ctx, key_id):
                _restore()
                probe, _ = parse_response(dispatch.handle(ctx, NO_LIMIT, _with_absent_id(frame, offset)))
                if probe != status:
                    raise AssertionError(f"uid {ctx.peer.uid} probing key 0x{key_id:08x}: {status.name}, but "
                                         f"{probe.name} for a key that does not exist")
    finally:
        _restore()
        if sum(STATS.values()) % 500 == 0:
            _report()


def _report() -> None:
    """WVDS_FUZZ_STATS=FILE: the statuses answered so far, as JSON (libFuzzer exits without atexit)."""
    path = os.environ.get("WVDS_FUZZ_STATS")
    if path:
        with open(path, "w") as f:
            json.dump(dict(STATS.most_common()), f)


if __name__ == "__main__":
    import logging
    logging.basicConfig(level=logging.ERROR)  # "internal error" tracebacks show up; refusals do not
    fuzzlib.run(TestOneInput)
