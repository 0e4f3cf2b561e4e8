"""config.json of crypto_service: loaded once at start-up, validated field by field.

Every problem is reported as "<file>: <field.path>: <what is wrong>", and all
problems are reported at once, so an operator fixes the file in one go (the
conventions, null included, are wvds.config_fields').
docs/config.md documents every field; this module is the authority on defaults.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from wvds.config_fields import Fields, absolute_path, load_json, shown
from wvds.crypto_service.errors import ConfigError
from wvds.protocol.constants import KeyUsage

USAGE_NAMES = {u.name.lower(): u for u in KeyUsage}


@dataclass(frozen=True)
class RateLimit:
    requests_per_second: float = 1000.0
    burst: int = 100
    cooldown_ms: int = 100
    per: str = "uid"  # whose bucket a connection draws from: its uid's, or its primary gid's ("gid")


@dataclass(frozen=True)
class Grant:
    """Keys of owner_uid labelled `label` are usable by these uids/gids for `usage`."""
    owner_uid: int
    label: str
    uids: tuple[int, ...] = ()
    gids: tuple[int, ...] = ()
    usage: KeyUsage = KeyUsage(0)


@dataclass(frozen=True)
class ChannelSpec:
    """A byte-stream port carrying frames (channels.py): where it is and who the platform says is on the other
    end (there is no socket credential to ask)."""
    name: str
    path: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Config:
    path: str = "<defaults>"
    socket_path: str = "/run/wvds/crypto.sock"
    socket_mode: int = 0o660
    allow_uids: tuple[int, ...] = ()
    allow_gids: tuple[int, ...] = ()
    grants: tuple[Grant, ...] = ()
    max_clients: int = 64
    slots_per_client: int = 8
    workers: int = 0  # 0 = one per CPU
    max_keys_per_client: int = 1024
    rate_limit: RateLimit = RateLimit()
    gcm_invocation_limit: int = 2**32
    replay_window: int = 1 << 20  # nonces per epoch stream (docs/replay.md)
    spin_us: int = 50
    openssl_config: str | None = None
    openssl_modules: str | None = None
    keystore: dict[str, Any] = field(default_factory=lambda: {"backend": "file"})  # docs/keystore.md
    log_level: str = "info"
    replay_streams: int = 2  # epochs (runs of the encrypting service) tracked per key
    replay_sync: bool = False  # msync each window update: also survives power cuts
    legacy_replay_window: int = 100_000  # keys from before replay windows: in-memory set of random nonces
    channels: tuple[ChannelSpec, ...] = ()  # docs/l4re.md: the L4Re gateway's port into the VM


def _ids(f: Fields, key: str) -> tuple[int, ...]:
    values = f.get(key, list, [])
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in values):
        f.err(key, "must be a list of numeric ids (0 .. 4294967295)")
        return ()
    return tuple(values)


def _usage(f: Fields, key: str) -> KeyUsage:
    names = f.get(key, list, [])
    usage = KeyUsage(0)
    for n in names:
        if not isinstance(n, str) or n.lower() not in USAGE_NAMES:
            f.err(key, f"unknown usage {shown(n)}; known: {', '.join(sorted(USAGE_NAMES))}")
            continue
        usage |= USAGE_NAMES[n.lower()]
    return usage


def parse(doc: Any, path: str = "<config>") -> Config:
    errors: list[str] = []
    top = Fields(doc, "", errors)
    d = Config()

    sock = top.sub("socket")
    socket_path = sock.get("path", str, d.socket_path, absolute_path, "must be an absolute path")
    mode_text = sock.get("mode", str, "0660", lambda s: _octal(s) is not None and _octal(s) <= 0o777,
                         "must be an octal file mode string such as \"0660\"")
    sock.unknown()

    access = top.sub("access")
    allow_uids, allow_gids = _ids(access, "allow_uids"), _ids(access, "allow_gids")
    access.unknown()
    if not allow_uids and not allow_gids:
        errors.append("access: no client is allowed: list at least one uid in allow_uids or gid in allow_gids")

    grants = []
    for i, g in enumerate(top.get("grants", list, [])):
        gf = Fields(g, f"grants[{i}]", errors)
        owner = gf.get("owner_uid", int, None, lambda v: 0 <= v < 2**32)
        label = gf.get("label", str, None, lambda v: 0 < len(v.encode()) <= 64, "must be 1..64 bytes")
        if owner is None or label is None:
            errors.append(f"grants[{i}]: owner_uid and label are required")
        usage = _usage(gf, "usage")
        if not usage:
            errors.append(f"grants[{i}].usage: must name at least one usage")
        grants.append(Grant(owner or 0, label or "", _ids(gf, "uids"), _ids(gf, "gids"), usage))
        gf.unknown()

    channels = _channels(top, allow_uids, allow_gids, errors)

    lim = top.sub("limits")
    positive = lambda v: v > 0  # noqa: E731
    max_clients = lim.get("max_clients", int, d.max_clients, lambda v: 1 <= v <= 1024, "must be 1..1024")
    slots = lim.get("slots_per_client", int, d.slots_per_client, lambda v: 1 <= v <= 64, "must be 1..64")
    workers = lim.get("workers", int, d.workers, lambda v: 0 <= v <= 256, "must be 0..256 (0 = one per CPU)")
    max_keys = lim.get("max_keys_per_client", int, d.max_keys_per_client, positive, "must be > 0")
    gcm_limit = lim.get("gcm_invocation_limit", int, d.gcm_invocation_limit, lambda v: 1 <= v <= 2**32,
                        "must be 1..4294967296 (SP 800-38D limit for random 96-bit IVs)")
    replay = lim.get("replay_window", int, d.replay_window, lambda v: 64 <= v <= 1 << 28, "must be 64..268435456")
    streams = lim.get("replay_streams", int, d.replay_streams, lambda v: 1 <= v <= 16, "must be 1..16")
    replay_sync = lim.get("replay_sync", bool, d.replay_sync)
    legacy = lim.get("legacy_replay_window", int, d.legacy_replay_window, lambda v: 1 <= v <= 10_000_000,
                     "must be 1..10000000")
    spin = lim.get("spin_us", int, d.spin_us, lambda v: 0 <= v <= 10_000, "must be 0..10000")
    rl = lim.sub("rate_limit")
    rate = RateLimit(
        rl.get("requests_per_second", (int, float), 1000.0, lambda v: v >= 0, "must be >= 0 (0 disables)"),
        rl.get("burst", int, 100, positive, "must be > 0"),
        rl.get("cooldown_ms", int, 100, lambda v: v >= 0, "must be >= 0"),
        rl.get("per", str, "uid", lambda v: v in ("uid", "gid"), 'must be "uid" or "gid"'),
    )
    rl.unknown()
    lim.unknown()

    ossl = top.sub("openssl")
    ossl_conf = ossl.get("config", str, None, absolute_path, "must be an absolute path")
    ossl_modules = ossl.get("modules", str, None, absolute_path, "must be an absolute path")
    ossl.unknown()

    # the backend reads the rest (wvds.keystore.settings); a null there is an absent field too
    keystore = {k: v for k, v in top.get("keystore", dict, {"backend": "file"}).items() if v is not None}
    if not isinstance(keystore.get("backend"), str):
        errors.append("keystore.backend: required, one of the backends in docs/keystore.md")

    log = top.sub("log")
    level = log.get("level", str, "info", lambda v: v in ("debug", "info", "warning", "error"),
                    "must be one of debug, info, warning, error")
    log.unknown()
    top.unknown()

    if errors:
        raise ConfigError("\n".join(f"{path}: {e}" for e in errors))
    return Config(path, socket_path, _octal(mode_text), allow_uids, allow_gids, tuple(grants), max_clients, slots,
                  workers, max_keys, rate, gcm_limit, replay, spin, ossl_conf, ossl_modules, keystore, level,
                  replay_streams=streams, replay_sync=replay_sync, legacy_replay_window=legacy,
                  channels=tuple(channels))


def _channels(top: Fields, allow_uids, allow_gids, errors: list[str]) -> list[ChannelSpec]:
    specs: list[ChannelSpec] = []
    for i, c in enumerate(top.get("channels", list, [])):
        cf = Fields(c, f"channels[{i}]", errors)
        path = cf.get("path", str, None, absolute_path, "must be an absolute path", required=True)
        uid = cf.get("uid", int, None, lambda v: 0 <= v < 2**32, "must be 0..4294967295", required=True)
        gid = cf.get("gid", int, None, lambda v: 0 <= v < 2**32, "must be 0..4294967295", required=True)
        name = cf.get("name", str, None, lambda v: 0 < len(v) <= 32 and v.isprintable(),
                      "must be 1..32 printable characters")
        cf.unknown()
        if path is None or uid is None or gid is None:
            continue
        if uid not in allow_uids and gid not in allow_gids:
            errors.append(f"channels[{i}]: uid {uid} and gid {gid} are in neither access.allow_uids nor "
                          "access.allow_gids: the peer of a channel is admitted like any client")
        if any(s.path == path for s in specs):
            errors.append(f"channels[{i}].path: {path} is already channels[{[s.path for s in specs].index(path)}]")
        specs.append(ChannelSpec(name or os.path.basename(path), path, uid, gid))
    return specs


def _octal(text: str) -> int | None:
    """Only octal digits: int(text, 8) alone would also take "-1", "+7" and "0_7"."""
    if not text or not all(c in "01234567" for c in text):
        return None
    return int(text, 8)


def load(path: str) -> Config:
    return parse(load_json(path, ConfigError), path)
