"""The service's live key table: ownership, grants, quotas, usage policy, counters.

Records come from and go to the key store; the table keeps each key open in its
engine (crypto_service/engines: the FIPS provider, or the key store's TPM/HSM)
ready for use, and decides which engine a new key goes to. A key is visible to
its owner and to the uids/gids a config grant names; to everyone else it does
not exist (KEY_NOT_FOUND, never PERMISSION_DENIED, so ids cannot be probed).
"""
from __future__ import annotations

import collections
import logging
import os
import struct
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator

from wvds import ossl
from wvds.algorithms import REGISTRY, ossl_names
from wvds.crypto_service.config import Config
from wvds.crypto_service.engines import Engine, SoftwareEngine, element_engine
from wvds.crypto_service.errors import ServiceError
from wvds.crypto_service.fastpath import COUNT_LIMIT, COUNT_OK, REPLAY_FRESH, REPLAY_SEEN, AesCounter, FastKey
from wvds.crypto_service.replay import LegacyReplaySet
from wvds.keystore import KeyRecord, KeyStore, KeyStoreError
from wvds.peer import Peer
from wvds.protocol.constants import ECDSA, ML_DSA, ML_KEM, SLH_DSA, Algorithm, KeyFormat, KeyUsage, Status

log = logging.getLogger("wvds.keys")

# OpenSSL's names for our algorithm ids (wvds.ossl's vocabulary).
OSSL_NAME = ossl_names()

# Which usage bits make sense for which algorithm; anything else is refused at creation.
ALLOWED_USAGE = {
    **{a: KeyUsage.ENCRYPT | KeyUsage.DECRYPT | KeyUsage.EXPORTABLE | KeyUsage.REPLAY_PROTECT | KeyUsage.REPLAYABLE
       for a in (Algorithm.AES_256_GCM,)},
    **{a: KeyUsage.SIGN | KeyUsage.VERIFY | KeyUsage.EXPORTABLE for a in ML_DSA + ECDSA + SLH_DSA},
    **{a: KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET | KeyUsage.EXPORTABLE for a in ML_KEM},
}
PRIVATE_USAGE = KeyUsage.DECRYPT | KeyUsage.ENCRYPT | KeyUsage.SIGN | KeyUsage.DECAPS | KeyUsage.EXPORTABLE \
    | KeyUsage.RELEASE_SECRET | KeyUsage.REPLAY_PROTECT | KeyUsage.REPLAYABLE
REPLAY_BITS = KeyUsage.REPLAY_PROTECT | KeyUsage.REPLAYABLE

# AES invocation counters are persisted this far ahead of use, so a crash can
# only skip invocations, never repeat one.
COUNTER_BLOCK = 4096


class LiveKey:
    def __init__(self, record: KeyRecord, config: Config, engine: Engine, handle: Any, pkey: "ossl.PKey | None",
                 uses: int | None = None):
        self.record = record
        self.engine = engine  # performs the key's private-key operations (crypto_service/engines)
        self.handle = handle  # the key as its engine opened it
        self.pkey = pkey  # for public operations (verify, encaps, export); of an element key: its public half
        # A loaded key continues after everything reserved before it (a crash skips invocations, never repeats).
        self._uses = record.uses_reserved if uses is None else uses
        self._lock = threading.Lock()  # counter saves, the tombstone and the count of operations in progress
        self._idle = threading.Condition(self._lock)
        self._users = 0  # operations using the key now (KeyTable.using)
        self.deleted = False  # tombstone: set before the deletion, never cleared once the store has deleted it
        # AES keys: the invocation counter lives in C, shared with the session fast path (fastpath.py).
        self.counter = AesCounter(record.material if engine.in_process else None, self._uses, record.uses_reserved) \
            if record.algorithm == Algorithm.AES_256_GCM else None
        # Replay protection (docs/replay.md): a key with a nonce epoch has structured nonces and a durable
        # window in C (KeyTable._attach_window); a protected key from before that keeps its in-memory set.
        protected = self.counter is not None and record.usage & KeyUsage.REPLAY_PROTECT
        self.windowed = bool(protected) and record.nonce_epoch is not None
        self.replay = LegacyReplaySet(config.legacy_replay_window) if protected and not self.windowed else None
        self.streaming = False  # this run's nonce stream has started (KeyTable._start_stream)
        self.window_error: str | None = None  # the window could not be opened: AES operations refused
        self.epoch_unused = False  # a key created in this run: its record's epoch has not encrypted yet
        self.fast_key: FastKey | None = None  # its OpenSSL key in C for the fast path, once granted (KeyTable)
        self.fast_refused = False  # C could not take it: the Python path serves it, and the warning is logged once

    @property
    def uses(self) -> int:
        if self.counter is not None:
            return self.counter.uses
        return self._uses + (self.fast_key.uses if self.fast_key is not None else 0)  # + signatures made in C

    @property
    def key_id(self) -> int:
        return self.record.key_id

    @property
    def algorithm(self) -> Algorithm:
        return self.record.algorithm

    @property
    def secret(self) -> bytes:
        return self.record.material


def default_usage(algorithm: Algorithm, public_only: bool) -> KeyUsage:
    if algorithm == Algorithm.AES_256_GCM:
        return KeyUsage.ENCRYPT | KeyUsage.DECRYPT
    if algorithm in ML_KEM:
        return KeyUsage.ENCAPS if public_only else KeyUsage.ENCAPS | KeyUsage.DECAPS
    return KeyUsage.VERIFY if public_only else KeyUsage.SIGN | KeyUsage.VERIFY


class KeyTable:
    def __init__(self, store: KeyStore, config: Config):
        self.store = store
        self.config = config
        self.software = SoftwareEngine()
        self.element = element_engine(store)  # the key store's TPM/HSM, if it has one
        self._keys: dict[int, LiveKey] = {}
        self._owned: collections.Counter[int] = collections.Counter()  # keys in the table per owner uid (quota)
        self._lock = threading.Lock()

    def _engine_of(self, record: KeyRecord) -> Engine:
        if not record.native:
            return self.software
        if self.element is None:
            raise KeyStoreError(f"the {self.store.name} backend holds no keys natively")
        return self.element

    # -- start-up ----------------------------------------------------------
    def load(self) -> int:
        for rec in self.store.load():
            try:
                engine = self._engine_of(rec)
                handle = engine.open(rec)
                live = LiveKey(rec, self.config, engine, handle, engine.openssl_key(rec.algorithm, handle))
                self._attach_window(live)
                self._keys[rec.key_id] = live
                self._owned[rec.owner_uid] += 1
            except (ServiceError, KeyStoreError) as e:
                log.error("stored key unusable, skipped", extra={"key_id": f"0x{rec.key_id:08x}",
                                                                  "reason": getattr(e, "message", str(e))})
        return len(self._keys)

    # -- lookup ------------------------------------------------------------
    def usage_for(self, peer: Peer, key: LiveKey) -> int:
        """The usage bits `peer` has on `key`: all of its policy for the owner, else what config grants allow."""
        if key.record.owner_uid == peer.uid:
            return key.record.usage
        usage = 0
        for g in self.config.grants:
            if g.owner_uid == key.record.owner_uid and g.label == key.record.label \
                    and (peer.uid in g.uids or peer.in_group(g.gids)):
                usage |= g.usage & key.record.usage
        return usage

    def get(self, peer: Peer, key_id: int, need: int = 0,
            algorithms: tuple[Algorithm, ...] | None = None) -> LiveKey:
        key = self._keys.get(key_id)
        usage = self.usage_for(peer, key) if key else 0
        if key is None or (key.record.owner_uid != peer.uid and not usage):
            raise ServiceError(Status.KEY_NOT_FOUND, f"key 0x{key_id:08x} not found")
        if algorithms is not None and key.algorithm not in algorithms:
            raise ServiceError(Status.UNSUPPORTED_ALGORITHM,
                               f"key 0x{key_id:08x} is {key.algorithm.name}, not usable for this operation")
        if need and (usage & need) != need:
            missing = KeyUsage(need & ~usage)
            raise ServiceError(Status.PERMISSION_DENIED, f"key 0x{key_id:08x} policy does not allow {missing!r}")
        return key

    @contextmanager
    def using(self, peer: Peer, key_id: int, need: int = 0,
              algorithms: tuple[Algorithm, ...] | None = None) -> Iterator[LiveKey]:
        """`get`, held for an operation: a deletion waits until the operation is over, and an operation
        that starts once a deletion has begun finds no key. So after KEY_DELETE is answered no operation
        uses the key's bytes and none can write its record back (crypto-erase holds)."""
        key = self.get(peer, key_id, need, algorithms)
        with key._lock:
            if key.deleted:
                raise ServiceError(Status.KEY_NOT_FOUND, f"key 0x{key_id:08x} not found")
            key._users += 1
        try:
            yield key
        finally:
            with key._lock:
                key._users -= 1
                if not key._users:
                    key._idle.notify_all()

    def fast_key(self, key: LiveKey) -> FastKey | None:
        """The key's OpenSSL key in C for the fast path's sign/verify/encaps/decaps, made at its first grant; None
        for a key being deleted (its tombstone is set under the same lock, and the deletion retires it)."""
        with key._lock:
            if key.deleted or key.pkey is None:
                return None
            if key.fast_key is None and not key.fast_refused:
                private = key.engine.in_process and key.pkey.has_private
                try:
                    key.fast_key = FastKey(key.pkey, private, REGISTRY[key.algorithm].default_digest)
                except (RuntimeError, ossl.OsslError) as e:  # the request succeeded: only the C path is lost
                    key.fast_refused = True
                    log.warning("key not handed to the C fast path", extra={"key_id": f"0x{key.key_id:08x}",
                                                                            "reason": str(e)})
            return key.fast_key

    def visible(self, peer: Peer) -> list[LiveKey]:
        with self._lock:
            keys = list(self._keys.values())
        return sorted((k for k in keys if k.record.owner_uid == peer.uid or self.usage_for(peer, k)),
                      key=lambda k: k.key_id)

    # -- changes -----------------------------------------------------------
    def generate(self, peer: Peer, algorithm: Algorithm, usage: int, label: str) -> LiveKey:
        """KEY_GENERATE, MLKEM_KEYGEN. In the key store's TPM/HSM when keystore.native lists the algorithm and
        the policy does not ask for EXPORTABLE (an element key cannot be exported, and the protocol behaves
        the same on every backend); else in the FIPS provider, before the table is locked."""
        element = self.element
        if element is not None and algorithm in element.algorithms() and not int(usage) & KeyUsage.EXPORTABLE:
            return self._create(peer, algorithm, usage, label, element, None)
        return self._create(peer, algorithm, usage, label, self.software, self.software.generate(0, algorithm))

    def import_key(self, peer: Peer, algorithm: Algorithm, usage: int, label: str, form: KeyFormat,
                   material: bytes) -> LiveKey:
        """KEY_IMPORT, and the AES keys the service derives (ML-KEM): always software keys. ServiceError
        (INVALID_PAYLOAD) if the material is malformed."""
        handle = self.software.open_material(algorithm, form, material)
        return self._create(peer, algorithm, usage, label, self.software, (form, material, handle))

    def _create(self, peer: Peer, algorithm: Algorithm, usage: int, label: str, engine: Engine,
                made: tuple[KeyFormat, bytes, Any] | None) -> LiveKey:
        """made: (form, material, handle) of a key made already; None: `engine` generates it here, once the
        policy is checked and the key id chosen (an element labels its object with the id)."""
        form = made[0] if made is not None else KeyFormat.RAW
        public_only = form == KeyFormat.PUBLIC
        usage = int(usage)
        if not usage & ~int(REPLAY_BITS):  # no operation named: the algorithm's default ones
            usage |= int(default_usage(algorithm, public_only))
        invalid = usage & ~int(ALLOWED_USAGE[algorithm])  # int arithmetic: ~IntFlag would drop unknown bits
        if invalid:
            raise ServiceError(Status.INVALID_PAYLOAD, f"usage bits 0x{invalid:x} are not valid for {algorithm.name}")
        epoch = None
        if algorithm == Algorithm.AES_256_GCM:  # replay protection unless opted out (docs/replay.md)
            if usage & REPLAY_BITS == REPLAY_BITS:
                raise ServiceError(Status.INVALID_PAYLOAD, "REPLAY_PROTECT and REPLAYABLE exclude each other")
            if not usage & KeyUsage.REPLAYABLE:
                usage |= KeyUsage.REPLAY_PROTECT
                epoch = 0
        if public_only and usage & PRIVATE_USAGE:
            raise ServiceError(Status.INVALID_PAYLOAD, "a public key only supports verify/encaps usage")
        with self._lock:
            owned = self._owned[peer.uid]
            if owned >= self.config.max_keys_per_client:
                raise ServiceError(Status.QUOTA_EXCEEDED, f"uid {peer.uid} owns {owned} keys (limit)")
            key_id = self._new_id()
            reserved = COUNTER_BLOCK if algorithm == Algorithm.AES_256_GCM else 0
            if made is None:
                try:
                    made = engine.generate(key_id, algorithm)
                except KeyStoreError as e:
                    raise ServiceError(Status.STORAGE_ERROR, f"could not generate the key natively: {e}") from None
            form, material, handle = made
            pkey = engine.openssl_key(algorithm, handle)
            native = not engine.in_process  # the record holds only the element's reference
            rec = KeyRecord(key_id, algorithm, usage, peer.uid, label, int(time.time()), form, material, reserved,
                            native, epoch)
            try:
                self.store.save(rec)
            except KeyStoreError as e:
                if native:
                    self.store.delete(key_id)  # best effort: removes the element's object again
                raise ServiceError(Status.STORAGE_ERROR, f"could not store key: {e}") from None
            live = LiveKey(rec, self.config, engine, handle, pkey, uses=0)
            live.epoch_unused = True
            try:
                self._attach_window(live, fresh=True)
            except KeyStoreError as e:
                try:
                    self.store.delete(key_id)
                except KeyStoreError:  # left stored: at the next start its window counts as lost (refuses all)
                    log.warning("key without a replay window not removed", extra={"key_id": f"0x{key_id:08x}"})
                raise ServiceError(Status.STORAGE_ERROR, f"could not create the key's replay window: {e}") from None
            self._keys[key_id] = live
            self._owned[peer.uid] += 1
        log.info("key created", extra={"key_id": f"0x{key_id:08x}", "algorithm": algorithm.name, "owner": peer.uid})
        return live

    def delete(self, peer: Peer, key_id: int) -> None:
        key = self.get(peer, key_id)
        if key.record.owner_uid != peer.uid:
            raise ServiceError(Status.PERMISSION_DENIED, f"only the owner may delete key 0x{key_id:08x}")
        with key._lock:
            if key.deleted:  # another deletion of it is under way
                raise ServiceError(Status.KEY_NOT_FOUND, f"key 0x{key_id:08x} not found")
            key.deleted = True  # tombstone first: no new operation, no counter save from now on
            key._idle.wait_for(lambda: key._users == 0)  # and the ones in progress finish (their saves too)
        with self._lock:
            try:
                self.store.delete(key_id)
            except KeyStoreError as e:
                with key._lock:
                    key.deleted = False  # still stored: still usable
                raise ServiceError(Status.STORAGE_ERROR, f"could not delete key: {e}") from None
            if self._keys.pop(key_id, None) is not None:
                self._owned[key.record.owner_uid] -= 1
        if key.counter is not None:
            key.counter.retire()  # the C fast path stops using it; its bytes are wiped
        if key.fast_key is not None:  # (no new one since the tombstone)
            key.fast_key.retire()  # waits for C operations on it, then frees its OpenSSL key there
        if key.windowed:
            self.store.drop_replay(key_id)
        log.info("key deleted", extra={"key_id": f"0x{key_id:08x}", "owner": peer.uid})

    def count_use(self, key: LiveKey, limit: int | None = None) -> None:
        """Count one invocation; refuse past `limit`. AES: persists the reservation ahead of use.
        Never for a key being deleted: a save after the deletion would bring it back at the next start."""
        with key._lock:
            if key.deleted:
                raise ServiceError(Status.KEY_NOT_FOUND, f"key 0x{key.key_id:08x} not found")
            if key.counter is None:
                if limit is not None and key._uses >= limit:
                    raise self._exhausted(key, limit)
                key._uses += 1
                return
            if key.windowed and not key.streaming:
                self._start_stream(key)
            while (outcome := key.counter.count(2**64 - 1 if limit is None else limit)) != COUNT_OK:
                if outcome == COUNT_LIMIT:
                    raise self._exhausted(key, limit)
                rec = key.record.with_reserved(key.record.uses_reserved + COUNTER_BLOCK)  # COUNT_RESERVE
                try:
                    self.store.save(rec)
                except KeyStoreError as e:
                    raise ServiceError(Status.STORAGE_ERROR, f"could not persist the usage counter: {e}") from None
                key.record = rec
                key.counter.reserve(rec.uses_reserved)

    # -- replay protection (docs/replay.md) -----------------------------------
    def _attach_window(self, key: LiveKey, fresh: bool = False) -> None:
        """Open the key's replay window, or create it for a new key (failing that, KeyStoreError).

        A stored key whose window is missing or damaged gets a new one that refuses every epoch its record
        knows of, so nothing accepted before can come back (the not yet decrypted messages of those runs
        are refused too; logged). One that the system will not let us open (read-only, permissions, I/O)
        leaves the key loaded with its AES operations refused (STORAGE_ERROR) until a restart."""
        if not key.windowed:
            return
        cfg, path = self.config, self.store.replay_path(key.key_id)

        def open_window() -> None:
            key.counter.protect(path, cfg.replay_window, cfg.replay_streams, cfg.replay_sync)

        if fresh or path is None:
            try:
                if path is not None and os.path.lexists(path):  # left over from a key id used before
                    os.unlink(path)
                open_window()
            except OSError as e:
                if path is not None and os.path.lexists(path):
                    os.unlink(path)
                raise KeyStoreError(str(e)) from None
            return
        problem = "missing"
        try:
            if os.path.lexists(path):
                open_window()
                return
        except OSError as e:
            problem = e.strerror or str(e)
            if e.errno:  # not the file's fault: keep it for when the system lets us in again
                key.window_error = problem
                log.error("replay window unavailable: AES operations of this key are refused",
                          extra={"key_id": f"0x{key.key_id:08x}", "reason": problem})
                return
        try:
            if problem != "missing":
                os.replace(path, path + ".unusable")
            open_window()
        except OSError as e:
            key.window_error = e.strerror or str(e)
            log.error("replay window unavailable: AES operations of this key are refused",
                      extra={"key_id": f"0x{key.key_id:08x}", "reason": key.window_error})
            return
        key.counter.replay_floor(min(key.record.nonce_epoch + 1, 2**32 - 1))
        log.error("replay window lost: replaced by one that refuses the nonces of earlier runs",
                  extra={"key_id": f"0x{key.key_id:08x}", "reason": problem})

    def _start_stream(self, key: LiveKey) -> None:
        """This run's first encryption with a protected key: a new epoch, persisted before any nonce of it
        exists (a key created in this run uses the epoch it was created with). Under key._lock."""
        self.check_window(key)
        epoch = key.record.nonce_epoch if key.epoch_unused else key.record.nonce_epoch + 1
        if epoch > 2**32 - 1:
            raise ServiceError(Status.KEY_EXHAUSTED, f"key 0x{key.key_id:08x} has used all its nonce epochs: rotate it")
        if not key.epoch_unused:
            rec = replace(key.record, nonce_epoch=epoch)
            try:
                self.store.save(rec)
            except KeyStoreError as e:
                raise ServiceError(Status.STORAGE_ERROR, f"could not persist the nonce epoch: {e}") from None
            key.record = rec
        key.counter.start_stream(epoch, key.engine.nonce_stream_start())
        key.streaming, key.epoch_unused = True, False

    @staticmethod
    def accept_nonce(key: LiveKey, nonce: bytes) -> None:
        """After a decryption's tag verified: record its nonce, or NONCE_REUSE if it was accepted before or
        is older than the key's window. Only authenticated nonces enter, so forgeries cannot move the window."""
        if key.windowed:
            KeyTable.check_window(key)
            verdict = key.counter.replay_check(nonce)
            if verdict == REPLAY_SEEN:
                raise ServiceError(Status.NONCE_REUSE, f"nonce replayed on key 0x{key.key_id:08x}")
            if verdict != REPLAY_FRESH:
                raise ServiceError(Status.NONCE_REUSE, f"nonce older than the replay window of key 0x{key.key_id:08x}"
                                   " (refused: it cannot be told apart from a replay)")
        elif key.replay is not None and not key.replay.check_and_record(nonce):
            raise ServiceError(Status.NONCE_REUSE, f"nonce replayed on key 0x{key.key_id:08x}")

    @staticmethod
    def check_window(key: LiveKey) -> None:
        if key.window_error is not None:
            raise ServiceError(Status.STORAGE_ERROR, f"the replay window of key 0x{key.key_id:08x} is unavailable "
                                                     f"({key.window_error}): restart once the key store is usable")

    def replay_bytes(self) -> int:
        with self._lock:
            return sum(k.counter.window_bytes for k in self._keys.values() if k.counter is not None)

    @staticmethod
    def _exhausted(key: LiveKey, limit: int | None) -> ServiceError:
        return ServiceError(Status.KEY_EXHAUSTED,
                            f"key 0x{key.key_id:08x} reached its limit of {limit} encryptions: rotate it")

    def _new_id(self) -> int:
        # Random ids (from the FIPS DRBG): guessing another client's key id is pointless anyway, but cheap to avoid.
        while True:
            key_id = struct.unpack("<I", ossl.random_bytes(4))[0]
            if key_id and key_id not in self._keys:
                return key_id
