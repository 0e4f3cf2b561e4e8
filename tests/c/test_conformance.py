"""The C library against the Python protocol definitions, byte for byte.

tests/c/conformance/api_client.c calls every function of wvds_crypto.h; the fake service
(fake_service.py) serves it through the library's wvds_srv_* functions via ctypes, decodes each
request with wvds.protocol.payloads (whose re-encoding must equal the bytes sent) and answers with
payloads.py encodings. Here the recorded requests are compared with what the client asked for;
the client itself checks what the library made of the answers. An aarch64 client (qemu-user)
talks to the x86_64 service through the same shared memory.
"""
import struct
import time

from support.clib import C_SRC, compile_c
from support.targets import ROOT
from wvds.protocol.constants import Algorithm, EcdsaFlags, HashAlg, KemFlags, KeyFormat, KeyUsage, RequestType, Status
from wvds.protocol.payloads import (AesDecryptRequest, AesEncryptRequest, EcdsaSignRequest, KeyExportRequest,
                                    KeyGenerateRequest, KeyIdRequest, KeyImportRequest, KeyListRequest, KeyRef,
                                    MldsaSignRequest, MlkemDecapsRequest, MlkemEncapsRequest, RandomRequest)

CLIENT = ROOT / "tests" / "c" / "conformance" / "api_client.c"


def build_client(arch, clib, tmp_path):
    return compile_c(arch, [CLIENT], tmp_path / f"api_client-{arch}",
                     ["-O2", f"-I{C_SRC / 'include'}", f"-L{clib.parent}", f"-Wl,-rpath,{clib.parent}"],
                     ["-ll4re_crypto_service"])


def test_every_call_matches_payloads_py(arch, clib, runner, fake_service, tmp_path):
    client = build_client(arch, clib, tmp_path)
    r = runner.run(client, fake_service.path, check=False, timeout=300)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0 and out.endswith("0 failed\n"), out + r.stderr.decode(errors="replace")
    assert fake_service.errors == []
    ex = fake_service.exchanges
    by_type = lambda t: [e for e in ex if e.type == t]  # noqa: E731

    # Everything but the stream chunks arrives in call order (the client makes one call at a time).
    single = [e for e in ex if not (e.type in (RequestType.AES_ENCRYPT, RequestType.AES_DECRYPT)
                                    and e.request.aad.startswith(b"WVDS-STREAM-v1"))]
    assert [e.type for e in single] == [
        RequestType.KEY_GENERATE, RequestType.KEY_GENERATE, RequestType.KEY_GENERATE, RequestType.MLKEM_KEYGEN,
        RequestType.AES_ENCRYPT, RequestType.AES_DECRYPT, RequestType.AES_DECRYPT,
        RequestType.MLDSA_SIGN, RequestType.MLDSA_VERIFY, RequestType.MLDSA_VERIFY, RequestType.MLDSA_VERIFY,
        RequestType.ECDSA_SIGN, RequestType.ECDSA_SIGN, RequestType.ECDSA_VERIFY, RequestType.ECDSA_VERIFY,
        RequestType.MLKEM_ENCAPS, RequestType.MLKEM_DECAPS, RequestType.AES_ENCRYPT, RequestType.AES_DECRYPT,
        RequestType.MLKEM_ENCAPS, RequestType.MLKEM_DECAPS, RequestType.RANDOM,
        RequestType.KEY_IMPORT, RequestType.KEY_IMPORT, RequestType.KEY_EXPORT_PUBLIC, RequestType.KEY_EXPORT,
        RequestType.KEY_DELETE, RequestType.KEY_DELETE, RequestType.KEY_LIST, RequestType.KEY_LIST,
        RequestType.KEY_DESCRIBE, RequestType.STATUS, RequestType.RANDOM,
        RequestType.KEY_GENERATE, RequestType.SLHDSA_SIGN, RequestType.SLHDSA_VERIFY, RequestType.SLHDSA_VERIFY]
    req = [e.request for e in single]

    assert req[0:4] == [KeyGenerateRequest(Algorithm.AES_256_GCM, KeyUsage.ENCRYPT | KeyUsage.DECRYPT, "aes-key"),
                        KeyGenerateRequest(Algorithm.ML_DSA_44, 0, "dsa €"),
                        KeyGenerateRequest(Algorithm.ECDSA_P256, KeyUsage.SIGN | KeyUsage.VERIFY, ""),
                        KeyGenerateRequest(Algorithm.ML_KEM_512,
                                           KeyUsage.ENCAPS | KeyUsage.DECAPS | KeyUsage.RELEASE_SECRET, "kem")]
    sealed = single[4].response
    assert req[4] == AesEncryptRequest(1, b"hdr", b"hello world")
    assert req[5] == AesDecryptRequest(1, b"hdr", sealed) and single[5].status == Status.SUCCESS
    assert req[6] == AesDecryptRequest(1, b"hdX", sealed) and single[6].status == Status.DECRYPTION_FAILED

    dsa_pk = fake_service.crypto.keys[2].public
    signature = single[7].response
    assert req[7] == MldsaSignRequest(2, b"message", b"ctx")
    assert (req[8].key, req[8].context, req[8].message, req[8].signature) == (KeyRef(key_id=2), b"ctx", b"message",
                                                                              signature)
    assert req[9].key == KeyRef(algorithm=Algorithm.ML_DSA_44, public_key=dsa_pk)
    assert req[10].context == b"" and single[10].status == Status.SIGNATURE_INVALID

    assert req[11] == EcdsaSignRequest(3, b"data", HashAlg.SHA384, 0)
    assert req[12] == EcdsaSignRequest(3, b"\x5a" * 32, HashAlg.SHA256, EcdsaFlags.PREHASHED)
    assert (req[13].key, req[13].hash_alg, req[13].signature) == (KeyRef(key_id=3), HashAlg.SHA384,
                                                                  single[11].response)
    assert (req[14].key.algorithm, req[14].key.public_key, req[14].flags) == (
        Algorithm.ECDSA_P256, fake_service.crypto.keys[3].public, EcdsaFlags.PREHASHED)

    assert req[15] == MlkemEncapsRequest(KeyRef(key_id=4), 0)
    ct = single[15].response[6:6 + 768]
    assert req[16] == MlkemDecapsRequest(4, ct, 0)
    assert (req[17].key_id, req[18].key_id) == (5, 6)  # the two AES keys the KEM produced
    assert req[19] == MlkemEncapsRequest(KeyRef(algorithm=Algorithm.ML_KEM_512,
                                                public_key=fake_service.crypto.keys[4].public), KemFlags.RETURN_SECRET)
    assert req[20].flags == KemFlags.RETURN_SECRET and req[20].key_id == 4
    assert req[21] == RandomRequest(40)

    assert req[22] == KeyImportRequest(Algorithm.AES_256_GCM, KeyFormat.RAW, b"\x42" * 32, KeyUsage.ENCRYPT,
                                       "imported")
    assert req[23] == KeyImportRequest(Algorithm.ML_DSA_44, KeyFormat.PUBLIC, dsa_pk, KeyUsage.VERIFY, "")
    assert req[24:28] == [KeyIdRequest(2), KeyExportRequest(7, KeyFormat.RAW), KeyIdRequest(8), KeyIdRequest(8)]
    assert single[27].status == Status.KEY_NOT_FOUND
    assert req[28:31] == [KeyListRequest(0), KeyListRequest(5), KeyIdRequest(2)]
    assert req[31] is None and req[32] == RandomRequest(8)

    assert req[33] == KeyGenerateRequest(Algorithm.SLH_DSA_SHA2_128F, 0, "slh")
    slh = struct.unpack_from("<I", single[33].response)[0]
    assert req[34] == MldsaSignRequest(slh, b"message", b"ctx") and len(single[34].response) == 17088
    assert (req[35].key, req[35].signature) == (KeyRef(key_id=slh), single[34].response)
    assert req[36].key == KeyRef(algorithm=Algorithm.SLH_DSA_SHA2_128F, public_key=fake_service.crypto.keys[slh].public)
    assert req[36].message == b"messagE" and single[36].status == Status.SIGNATURE_INVALID

    # The stream: two chunks each way, AAD = label || stream id || index || final || caller's AAD.
    for t in (RequestType.AES_ENCRYPT, RequestType.AES_DECRYPT):
        chunks = sorted((e.request for e in by_type(t) if e.request.aad.startswith(b"WVDS-STREAM-v1")),
                        key=lambda q: q.aad[30:38])
        assert len(chunks) == 2
        ids = {c.aad[14:30] for c in chunks}
        assert len(ids) == 1 and len(ids.pop()) == 16
        assert [struct.unpack("<QB", c.aad[30:39]) for c in chunks] == [(0, 0), (1, 1)]
        assert all(c.aad[39:] == b"s" and c.key_id == 1 for c in chunks)
    plain = sorted((e.request for e in by_type(RequestType.AES_ENCRYPT) if e.request.aad.startswith(b"WVDS")),
                   key=lambda q: q.aad[30:38])
    assert [len(c.plaintext) for c in plain] == [61440, 70000 - 61440]

    # the client closed: wvds_srv_next reports the hangup (on the service's thread, maybe a moment later)
    deadline = time.monotonic() + 10
    while not fake_service.sessions_ended and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake_service.sessions_ended == [-2]


def test_missing_service_gives_err_connect(arch, clib, runner, tmp_path):
    client = build_client(arch, clib, tmp_path)
    r = runner.run(client, str(tmp_path / "nobody.sock"), check=False)
    assert r.returncode != 0 and b"FAILED connect" in r.stdout and b"WVDS_ERR_CONNECT" in r.stdout
    env = runner.env(WVDS_SOCKET=str(tmp_path / "nobody-either.sock"))
    r = runner.run(client, env=env, check=False)
    assert r.returncode != 0 and b"WVDS_ERR_CONNECT" in r.stdout
