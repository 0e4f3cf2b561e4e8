"""Every status code the service can produce on purpose, from raw frames a real
client library would never send (tests/support/rawclient.py)."""
import struct

import pytest

from support.rawclient import RawClient
from wvds.client import Client, ServiceStatusError
from wvds.protocol.constants import (MAX_PAYLOAD, RESPONSE_MAGIC, Algorithm, KeyFormat, KeyUsage, RequestType,
                                     Status)
from wvds.protocol.header import pack_request, parse_response
from wvds.protocol.payloads import AesEncryptRequest, KeyGenerateRequest, KeyIdRequest, RandomRequest

# From source and against each architecture's Nuitka binary (the `binaries` marker, tests/conftest.py).
pytestmark = pytest.mark.binaries()


@pytest.fixture
def raw(service):
    with RawClient(service.socket) as r:
        yield r


def status_of(raw: RawClient, frame: bytes, **kw) -> Status:
    resp = raw.roundtrip(frame, **kw)
    assert resp[0] == RESPONSE_MAGIC
    status, payload = parse_response(resp)
    if status != Status.SUCCESS:
        assert payload == b""
    return status


@pytest.mark.parametrize("frame,expected", [
    (b"", Status.INVALID_HEADER),
    (b"\xc7\x01\x50", Status.INVALID_HEADER),
    (b"\x00\x01\x50\x00\x00\x00\x00\x00", Status.INVALID_HEADER),  # bad magic
    (b"\xc7\x02\x50\x00\x00\x00\x00\x00", Status.INVALID_HEADER),  # bad version
    (b"\xc7\x01\x50\x01\x00\x00\x00\x00", Status.INVALID_HEADER),  # reserved flags
    (b"\xc7\x01\x50\x00\x05\x00\x00\x00", Status.INVALID_PAYLOAD),  # length says 5, nothing follows
    (b"\xc7\x01\x50\x00\x00\x00\x00\x00xx", Status.INVALID_PAYLOAD),  # bytes the length does not cover
    (b"\xc7\x01\x50\x00" + struct.pack("<I", MAX_PAYLOAD + 1), Status.PAYLOAD_TOO_LARGE),
    (b"\xc7\x01\x7f\x00\x00\x00\x00\x00", Status.INVALID_TYPE),
    (b"\xc7\x01\x00\x00\x00\x00\x00\x00", Status.INVALID_TYPE),
], ids=["empty", "short", "magic", "version", "flags", "length-over", "length-under", "oversize", "type-7f",
        "type-00"])
def test_bad_headers(raw, frame, expected):
    assert status_of(raw, frame) == expected


def test_req_len_beyond_the_request_area_is_refused(raw):
    assert status_of(raw, pack_request(RequestType.STATUS), req_len=10_000_000) in (
        Status.INVALID_PAYLOAD, Status.PAYLOAD_TOO_LARGE)


@pytest.mark.parametrize("rtype,payload,expected", [
    (RequestType.AES_ENCRYPT, b"\x01\x00", Status.INVALID_PAYLOAD),  # truncated key id
    (RequestType.AES_ENCRYPT, struct.pack("<IH", 1, 500) + b"x", Status.INVALID_PAYLOAD),  # aad longer than payload
    (RequestType.AES_DECRYPT, struct.pack("<IH", 1, 0) + b"short", Status.INVALID_PAYLOAD),
    (RequestType.MLDSA_SIGN, struct.pack("<I", 1) + b"\xff", Status.INVALID_PAYLOAD),  # context longer than data
    (RequestType.MLDSA_VERIFY, b"\x07", Status.INVALID_PAYLOAD),  # unknown key ref kind
    (RequestType.MLDSA_VERIFY, b"\x01\x99\x00\x00", Status.UNSUPPORTED_ALGORITHM),
    (RequestType.KEY_GENERATE, b"\x99\x00\x00\x00\x00\x00", Status.UNSUPPORTED_ALGORITHM),
    (RequestType.KEY_GENERATE, b"\x01\x00\x00\x00\x00\x00extra", Status.INVALID_PAYLOAD),
    (RequestType.KEY_GENERATE, b"\x01\x00\x00\x00\x00\x41" + b"x" * 65, Status.INVALID_PAYLOAD),  # label > 64
    (RequestType.KEY_GENERATE, b"\x01\x04\x00\x00\x00\x00", Status.INVALID_PAYLOAD),  # SIGN usage on AES
    (RequestType.KEY_GENERATE, b"\x01\x00\x00\x01\x00\x00", Status.INVALID_PAYLOAD),  # undefined usage bit
    (RequestType.KEY_IMPORT, b"\x01\x00\x00\x00\x00\x00\x00" + b"k" * 31, Status.INVALID_PAYLOAD),  # 31-byte AES
    (RequestType.KEY_IMPORT, b"\x11\x00\x00\x00\x00\x03\x00" + b"k" * 10, Status.INVALID_PAYLOAD),  # bad ML-DSA pk
    (RequestType.RANDOM, struct.pack("<I", MAX_PAYLOAD + 1), Status.PAYLOAD_TOO_LARGE),
    (RequestType.RANDOM, b"\x01", Status.INVALID_PAYLOAD),
    (RequestType.STATUS, b"x", Status.INVALID_PAYLOAD),
    (RequestType.MLKEM_KEYGEN, KeyGenerateRequest(Algorithm.ML_DSA_65).encode(), Status.UNSUPPORTED_ALGORITHM),
    (RequestType.KEY_DESCRIBE, KeyIdRequest(0x12345678).encode(), Status.KEY_NOT_FOUND),
    (RequestType.AES_ENCRYPT, AesEncryptRequest(0x12345678, b"", b"x").encode(), Status.KEY_NOT_FOUND),
], ids=lambda v: v.name if hasattr(v, "name") else None)
def test_bad_payloads(raw, rtype, payload, expected):
    assert status_of(raw, pack_request(rtype, payload)) == expected


def test_the_service_survives_all_of_it(raw):
    assert status_of(raw, pack_request(RequestType.RANDOM, RandomRequest(8).encode())) == Status.SUCCESS


def expect(status, fn, *args, **kw):
    with pytest.raises(ServiceStatusError) as e:
        fn(*args, **kw)
    assert e.value.status == status, e.value


def test_wrong_key_kind_and_policy(client):
    sig_key = client.generate_key(Algorithm.ML_DSA_44).key_id
    expect(Status.UNSUPPORTED_ALGORITHM, client.encrypt, sig_key, b"x")
    verify_only = client.generate_key(Algorithm.ML_DSA_44, KeyUsage.VERIFY)
    expect(Status.PERMISSION_DENIED, client.mldsa_sign, verify_only.key_id, b"x")
    enc_only = client.generate_key(Algorithm.AES_256_GCM, KeyUsage.ENCRYPT).key_id
    expect(Status.PERMISSION_DENIED, client.decrypt, enc_only, client.encrypt(enc_only, b"x"))
    pub = client.import_key(Algorithm.ML_DSA_44, KeyFormat.PUBLIC, verify_only.public_key)
    expect(Status.PERMISSION_DENIED, client.mldsa_sign, pub.key_id, b"x")
    expect(Status.INVALID_PAYLOAD, client.import_key, Algorithm.ML_DSA_44, KeyFormat.PUBLIC,
           verify_only.public_key, KeyUsage.SIGN)


def test_invocation_limit(make_service):
    svc = make_service(limits={"gcm_invocation_limit": 3})
    with Client(svc.socket) as c:
        key = c.generate_key(Algorithm.AES_256_GCM).key_id
        for _ in range(3):
            c.encrypt(key, b"x")
        expect(Status.KEY_EXHAUSTED, c.encrypt, key, b"x")
        assert c.describe_key(key).uses == 3


def test_key_quota(make_service):
    svc = make_service(limits={"max_keys_per_client": 2})
    with Client(svc.socket) as c:
        first = c.generate_key(Algorithm.AES_256_GCM).key_id
        c.generate_key(Algorithm.AES_256_GCM)
        expect(Status.QUOTA_EXCEEDED, c.generate_key, Algorithm.AES_256_GCM)
        expect(Status.QUOTA_EXCEEDED, c.mlkem_keygen)  # every way of making a key counts
        c.delete_key(first)  # a deletion frees its place, and only one
        c.generate_key(Algorithm.AES_256_GCM)
        expect(Status.QUOTA_EXCEEDED, c.generate_key, Algorithm.AES_256_GCM)


def test_rate_limit_per_identity(make_service):
    svc = make_service(limits={"rate_limit": {"requests_per_second": 50, "burst": 5, "cooldown_ms": 200}})
    with Client(svc.socket) as a, Client(svc.socket) as b:
        statuses = [a.transact(RequestType.RANDOM, RandomRequest(1).encode())[0] for _ in range(20)]
        assert statuses[:5] == [Status.SUCCESS] * 5
        assert Status.RATE_LIMITED in statuses[5:]
        # another connection of the same uid draws from the same bucket (other uids: tests/hostile)
        assert b.transact(RequestType.RANDOM, RandomRequest(1).encode())[0] == Status.RATE_LIMITED
