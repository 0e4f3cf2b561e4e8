"""The crypto_service process: FIPS check, key table, listener, sessions, shutdown."""
from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from wvds import ossl
from wvds.crypto_service import fastpath
from wvds.crypto_service.channels import PortChannel
from wvds.crypto_service.config import Config
from wvds.crypto_service.fastpath import TokenBucket
from wvds.crypto_service.keys import KeyTable
from wvds.crypto_service.session import Session
from wvds.keystore import KeyStoreError, open_keystore
from wvds.protocol.constants import (MAX_PAYLOAD, MAX_RESPONSE_PAYLOAD, PROTOCOL_VERSION, Algorithm,
                                     RequestType, Status)
from wvds.transport.linux_shm import Listener, refuse
from wvds.version import VERSION

log = logging.getLogger("wvds.service")


POOL_QUEUE_PER_WORKER = 4


class StartupError(Exception):
    """The service must not start; the message says why and what to check."""


def spin_for(configured_us: int, cpus_online: int) -> int:
    """limits.spin_us, or 0 with one CPU online: a serving thread spinning there only keeps the client, who
    is about to submit the next request, off the CPU (docs/performance.md, "What the AMD EPYC VM loses")."""
    return configured_us if cpus_online > 1 else 0


class CryptoService:
    def __init__(self, config: Config):
        self.config = config
        self.stopping = threading.Event()
        self.sessions: set[Session] = set()
        self._sessions_lock = threading.Lock()
        # uid -> handshakes in progress (each a thread waiting for HELLO): counted against max_clients, which
        # bounds the threads too
        self._pending: dict[int, int] = {}
        self._client_ids = itertools.count(1)
        self.started = time.time()
        self.fips: ossl.FipsInfo | None = None
        self.listener: Listener | None = None
        self.channels: list[PortChannel] = []
        workers = config.workers or os.cpu_count() or 2
        self.spin_us = spin_for(config.spin_us, os.cpu_count() or 1)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="worker")
        # One token bucket per client identity (uid, or gid with rate_limit.per = "gid"), kept for the
        # service's lifetime: reconnecting or opening more connections gains nothing. Identities are
        # bounded by the access list.
        self._buckets: dict[tuple[str, int], TokenBucket] = {}
        # The pool's queue is bounded: past POOL_QUEUE_PER_WORKER requests a worker, a serving thread
        # answers its client's request itself (that client waits; nothing piles up in memory). Also
        # STATUS "pool": requests in it now, the most at once, the most one session had at once.
        self.pool_stats = {"capacity": workers * (1 + POOL_QUEUE_PER_WORKER), "in_use": 0, "peak": 0,
                           "session_peak": 0}
        self._pool_lock = threading.Lock()

    # -- start-up ----------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        try:
            self.fips = ossl.load(cfg.openssl_config, cfg.openssl_modules)
        except ossl.OsslError as e:
            raise StartupError(f"OpenSSL FIPS provider unavailable: {e}") from None
        if not (self.fips.self_test_passed and self.fips.fips_default):
            raise StartupError(f"FIPS provider not in force (self-test passed: {self.fips.self_test_passed}, "
                               f"fips=yes default: {self.fips.fips_default})")
        fastpath.enable()
        try:
            self.store = open_keystore(cfg.keystore)
        except KeyStoreError as e:
            raise StartupError(f"{cfg.path}: {e}") from None
        self.keys = KeyTable(self.store, cfg)
        count = self.keys.load()
        try:
            self.listener = Listener(cfg.socket_path, cfg.socket_mode)
        except OSError as e:
            raise StartupError(f"cannot listen on {cfg.socket_path}: {e.strerror or e}") from None
        self._acceptor = threading.Thread(target=self._accept_loop, name="acceptor", daemon=True)
        self._acceptor.start()
        self.channels = [PortChannel(self, spec, next(self._client_ids)) for spec in cfg.channels]
        for channel in self.channels:
            channel.start()
        log.info("crypto_service ready", extra={"version": VERSION, "socket": cfg.socket_path, "keys": count,
                                                "channels": [c.spec.path for c in self.channels],
                                                "keystore": self.store.name, "openssl": self.fips.openssl_version,
                                                "fips_provider": self.fips.fips_version, "spin_us": self.spin_us})

    def _admit(self, creds) -> Status:
        cfg = self.config
        if self.stopping.is_set():
            return Status.SHUTTING_DOWN
        if creds.uid not in cfg.allow_uids and not creds.in_group(cfg.allow_gids):
            log.warning("client refused: not in access list", extra={"pid": creds.pid, "uid": creds.uid,
                                                                      "gid": creds.gid, "groups": list(creds.groups)})
            return Status.PERMISSION_DENIED
        with self._sessions_lock:
            if len(self.sessions) + sum(self._pending.values()) >= cfg.max_clients:
                log.warning("client refused: max_clients reached", extra={"uid": creds.uid})
                return Status.QUOTA_EXCEEDED
            self._pending[creds.uid] = self._pending.get(creds.uid, 0) + 1
        return Status.SUCCESS

    def pool_enter(self, session_pooled: int) -> bool:
        """Room in the worker pool for one more request of a session that has session_pooled there?"""
        with self._pool_lock:
            st = self.pool_stats
            if st["in_use"] >= st["capacity"]:
                return False
            st["in_use"] += 1
            st["peak"] = max(st["peak"], st["in_use"])
            st["session_peak"] = max(st["session_peak"], session_pooled + 1)
            return True

    def pool_leave(self) -> None:
        with self._pool_lock:
            self.pool_stats["in_use"] -= 1

    def _pool_snapshot(self) -> dict[str, int]:
        with self._pool_lock:
            return dict(self.pool_stats)

    def bucket_for(self, creds) -> TokenBucket:
        rl = self.config.rate_limit
        identity = ("gid", creds.gid) if rl.per == "gid" else ("uid", creds.uid)
        with self._sessions_lock:
            bucket = self._buckets.get(identity)
            if bucket is None:
                bucket = self._buckets[identity] = TokenBucket(rl.requests_per_second, rl.burst,
                                                               rl.cooldown_ms / 1000.0)
            return bucket

    def _slots_for(self, requested: int) -> int:
        return min(requested, self.config.slots_per_client) if requested else self.config.slots_per_client

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, creds = self.listener.accept_connection()
            except Exception as e:  # noqa: BLE001  a bad client must never stop the acceptor
                if self.stopping.is_set():
                    break
                log.warning("connection setup failed", extra={"reason": str(e)})
                continue
            verdict = self._admit(creds)  # counts the handshake as pending when it admits
            if verdict != Status.SUCCESS:
                refuse(sock, verdict)
                continue
            # The HELLO may take its time (or never come): wait for it in its own thread, so one silent
            # peer cannot hold up everyone else's connection set-up.
            threading.Thread(target=self._handshake, args=(sock, creds), name="handshake", daemon=True).start()

    def _handshake(self, sock, creds) -> None:
        try:
            channel = self.listener.handshake(sock, creds, self._slots_for, lambda: next(self._client_ids))
        except Exception as e:  # noqa: BLE001  a bad client must never hurt the service
            log.warning("connection setup failed", extra={"uid": creds.uid, "reason": str(e)})
            channel = None
        session = Session(self, channel) if channel is not None else None
        with self._sessions_lock:
            self._pending[creds.uid] -= 1
            if not self._pending[creds.uid]:
                del self._pending[creds.uid]
            if session is not None and not self.stopping.is_set():
                self.sessions.add(session)
                session.start()  # under the lock: stop() never sees a session it cannot join
            elif session is not None:
                channel.close()  # the service stopped meanwhile

    def session_ended(self, session: Session) -> None:
        with self._sessions_lock:
            self.sessions.discard(session)

    # -- status ------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        f = self.fips
        cfg = self.config
        return {
            "product": "wvds-crypto-service", "version": VERSION, "protocol_version": PROTOCOL_VERSION,
            "openssl_version": f.openssl_version,
            "fips": {"provider": f.fips_name, "version": f.fips_version, "build": f.fips_build_info,
                     "self_test_passed": f.self_test_passed, "fips_default_properties": f.fips_default},
            "algorithms": [a.name for a in Algorithm],
            "operations": [t.name for t in RequestType],
            "limits": {"max_payload": MAX_PAYLOAD, "max_response_payload": MAX_RESPONSE_PAYLOAD,
                       "slots_per_client": cfg.slots_per_client, "max_clients": cfg.max_clients,
                       "workers": self.pool._max_workers,
                       "max_keys_per_client": cfg.max_keys_per_client,
                       "gcm_invocation_limit": cfg.gcm_invocation_limit, "replay_window": cfg.replay_window,
                       "replay_streams": cfg.replay_streams, "replay_sync": cfg.replay_sync,
                       "rate_limit": {"requests_per_second": cfg.rate_limit.requests_per_second,
                                      "burst": cfg.rate_limit.burst, "cooldown_ms": cfg.rate_limit.cooldown_ms,
                                      "per": cfg.rate_limit.per}},
            "keystore": self.store.describe(),
            "replay_windows_bytes": self.keys.replay_bytes(),
            "clients": len(self.sessions),
            "channels": [c.describe() for c in self.channels],
            "pool": self._pool_snapshot(),
            "uptime_s": round(time.time() - self.started, 3),
        }

    # -- shutdown ----------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        with self._sessions_lock:  # C answers nothing more: from now on every request gets SHUTTING_DOWN
            for s in self.sessions:
                s.fast.stop()
        log.info("crypto_service stopping")
        if self.listener is not None:
            try:
                self.listener.sock.shutdown(socket.SHUT_RDWR)  # wakes the acceptor
            except OSError:
                pass
            self._acceptor.join(timeout)
            self.listener.close()
        with self._sessions_lock:
            sessions = list(self.sessions)
        for s in sessions:
            s.shutdown()
        for s in sessions:
            s.join(timeout)
        for c in self.channels:
            c.join(timeout)  # a channel sees `stopping` within stream_port.POLL_MS
        self.pool.shutdown(wait=True)  # requests already taken are answered before the store closes
        if hasattr(self, "store"):
            self.store.close()
        log.info("crypto_service stopped")
