"""On-disk format of the persistent key stores, version 1 (docs/keystore.md is the prose version).

A store is a directory (0700) holding:

  store.json       the store header (JSON): format name and version, a random
                   store id, how the key-encryption key (KEK) is obtained, and a
                   check value sealed under the KEK (tells a wrong secret or PIN
                   from damaged key files, and authenticates the header itself)
  keys/<id>.key    one file per key (0600), id as 8 lower-case hex digits
  lock             flock()ed by the running service: one process per store

Key file:

  offset  size  field
  0       8     magic  b"WVDSKEY\\0"
  8       2     format version (u16 LE) = 1
  10      2     flags (u16 LE) = 0
  12      4     metadata length M (u32 LE)
  16      M     metadata: UTF-8 JSON object, compact, sorted keys
  16+M    12    nonce
  28+M    n     ciphertext of the key material (AES-256-GCM under the KEK)
  end-16  16    tag

The AAD of the encryption is the store id followed by bytes 0..16+M, so every
metadata field (algorithm, usage, owner, label, created, counters, ...) is
authenticated, and a file copied from another store does not open.
"""
from __future__ import annotations

import json
import struct
from dataclasses import replace
from typing import Any, Callable

from wvds.keystore.base import KeyRecord
from wvds.protocol.constants import Algorithm, KeyFormat

MAGIC = b"WVDSKEY\0"
VERSION = 1
PREFIX = struct.Struct("<8sHHI")
NONCE_SIZE, TAG_SIZE = 12, 16
MAX_META = 16 * 1024

HEADER_FORMAT = "wvds-keystore"
HEADER_FILE = "store.json"
KEYS_DIR = "keys"
LOCK_FILE = "lock"
CHECK_PLAINTEXT = b"WVDS keystore KEK check v1"
HEADER_AAD_PREFIX = b"WVDS keystore header v1\0"

Seal = Callable[[bytes, bytes], bytes]  # (aad, plaintext) -> nonce || ciphertext || tag
Open = Callable[[bytes, bytes], bytes]  # (aad, sealed) -> plaintext


class FormatError(Exception):
    """The file is not a valid version-1 key file (damaged, truncated, tampered, or from elsewhere)."""


def key_file_name(key_id: int) -> str:
    return f"{key_id:08x}.key"


def key_id_from_name(name: str) -> int | None:
    stem, dot, ext = name.partition(".")
    if ext != "key" or len(stem) != 8:
        return None
    try:
        return int(stem, 16)
    except ValueError:
        return None


def _meta(record: KeyRecord) -> dict[str, Any]:
    meta = {"key_id": record.key_id, "algorithm": int(record.algorithm), "usage": record.usage,
            "owner_uid": record.owner_uid, "label": record.label, "created": record.created,
            "form": int(record.form), "uses_reserved": record.uses_reserved, "native": record.native}
    if record.nonce_epoch is not None:  # absent in files of keys from before replay windows
        meta["nonce_epoch"] = record.nonce_epoch
    return meta


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode_key(record: KeyRecord, store_id: bytes, seal: Seal) -> bytes:
    meta = canonical_json(_meta(record))
    prefix = PREFIX.pack(MAGIC, VERSION, 0, len(meta)) + meta
    return prefix + seal(store_id + prefix, record.material)


def decode_key(blob: bytes, store_id: bytes, open_: Open, expected_id: int) -> KeyRecord:
    """The record in blob; FormatError for anything but an intact file of this store with this id.

    `open_` raises on a failed tag check; the caller reports that as tampering.
    """
    if len(blob) < PREFIX.size:
        raise FormatError("truncated (shorter than the fixed header)")
    magic, version, flags, meta_len = PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise FormatError("not a WVDS key file (bad magic)")
    if version != VERSION:
        raise FormatError(f"format version {version} is not supported (this service reads version {VERSION})")
    if flags != 0 or meta_len > MAX_META or len(blob) < PREFIX.size + meta_len + NONCE_SIZE + TAG_SIZE:
        raise FormatError("truncated or malformed header")
    prefix = blob[:PREFIX.size + meta_len]
    try:
        meta = json.loads(prefix[PREFIX.size:].decode())
        record = KeyRecord(
            key_id=_int(meta, "key_id", 1, 2**32 - 1), algorithm=Algorithm(_int(meta, "algorithm", 0, 255)),
            usage=_int(meta, "usage", 0, 2**32 - 1), owner_uid=_int(meta, "owner_uid", 0, 2**32 - 1),
            label=_str(meta, "label"), created=_int(meta, "created", 0, 2**63 - 1),
            form=KeyFormat(_int(meta, "form", 0, 255)), material=b"",
            uses_reserved=_int(meta, "uses_reserved", 0, 2**64 - 1), native=meta.get("native") is True,
            nonce_epoch=_int(meta, "nonce_epoch", 0, 2**32 - 1) if "nonce_epoch" in meta else None)
    except (ValueError, UnicodeDecodeError, TypeError, RecursionError) as e:  # JSONDecodeError, bad enum values:
        raise FormatError(f"malformed metadata ({e})") from None  # ValueErrors; deep nesting: RecursionError
    if record.key_id != expected_id:
        raise FormatError(f"file holds key 0x{record.key_id:08x}, not the key its name says")
    material = open_(store_id + prefix, blob[len(prefix):])
    return replace(record, material=material)


def _int(meta: dict, key: str, lo: int, hi: int) -> int:
    v = meta[key] if isinstance(meta, dict) and key in meta else None
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError(f"{key} missing or out of range")
    return v


def _str(meta: dict, key: str) -> str:
    v = meta.get(key)
    if not isinstance(v, str):
        raise ValueError(f"{key} missing")
    return v


# -- store header -------------------------------------------------------------

def new_header(store_id: bytes, created: int, kek: dict[str, Any]) -> dict[str, Any]:
    return {"format": HEADER_FORMAT, "version": VERSION, "store_id": store_id.hex(), "created": created, "kek": kek}


def header_aad(header: dict[str, Any]) -> bytes:
    return HEADER_AAD_PREFIX + canonical_json({k: v for k, v in header.items() if k != "check"})


def encode_header(header: dict[str, Any], seal: Seal) -> bytes:
    sealed = seal(header_aad(header), CHECK_PLAINTEXT)
    return json.dumps({**header, "check": sealed.hex()}, indent=2, sort_keys=True).encode() + b"\n"


def parse_header(data: bytes) -> dict[str, Any]:
    """The header document, structurally checked; the check value is verified by the caller with its KEK."""
    try:
        header = json.loads(data.decode())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise FormatError(f"{HEADER_FILE} is not valid JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != HEADER_FORMAT:
        raise FormatError(f"{HEADER_FILE} is not a WVDS key store header")
    if header.get("version") != VERSION:
        raise FormatError(f"{HEADER_FILE}: store format version {header.get('version')!r} is not supported "
                          f"(this service reads version {VERSION})")
    try:
        store_id = bytes.fromhex(header["store_id"])
        bytes.fromhex(header["check"])
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{HEADER_FILE}: store_id or check missing or not hex") from None
    if len(store_id) != 16 or not isinstance(header.get("kek"), dict):
        raise FormatError(f"{HEADER_FILE}: malformed store_id or kek section")
    return header
