"""Writes the seed corpus under tests/fuzz/corpus/<target>/ (committed; rerun after protocol changes).

Seeds are valid inputs (plus a few classic near-misses) for every branch the harnesses know:
every request type against the fixed keys of fuzz_request.py (with real ciphertexts and signatures
made here with pyca/cryptography from the same fixed key material), config files of both daemons,
key files and store headers, and EST answers (HTTP responses, PKCS#7, csrattrs, certificates).
The fuzzer takes it from there.

    python tests/fuzz/make_corpus.py
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import struct

from fuzzlib import BASE_IDS, BASE_KEYS, CORPUS  # (also puts src/ on sys.path)

from wvds.protocol.constants import Algorithm, HashAlg, KeyFormat, RequestType
from wvds.protocol.header import pack_request
from wvds.protocol import payloads as p

ID = dict(zip(("aes", "aes_replay", "aes_enc", "dsa44", "dsa65", "dsa87", "kem512", "kem768", "kem1024", "p256",
               "p384", "aes_shared"), BASE_IDS))


def _write(target: str, seeds: dict[str, bytes]) -> None:
    d = CORPUS / target
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for name, data in seeds.items():
        (d / name).write_bytes(data)


def request_seeds() -> dict[str, bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, mldsa, mlkem
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    mat = {i: BASE_KEYS[i][4] for i in range(len(BASE_KEYS))}
    nonce = bytes(range(12))
    sealed = nonce + AESGCM(mat[0]).encrypt(nonce, b"plaintext", b"aad")
    dsa44 = mldsa.MLDSA44PrivateKey.from_seed_bytes(mat[3])
    dsa_pub = dsa44.public_key().public_bytes_raw()
    dsa_sig = dsa44.sign(b"message", b"ctx")
    kem768 = mlkem.MLKEM768PrivateKey.from_seed_bytes(mat[7])
    kem_pub = kem768.public_key().public_bytes_raw()
    _secret, kem_ct = kem768.public_key().encapsulate()
    p256 = ec.derive_private_key(int.from_bytes(mat[9], "big"), ec.SECP256R1())
    from cryptography.hazmat.primitives import serialization
    p256_pub = p256.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    ec_sig = p256.sign(b"data", ec.ECDSA(hashes.SHA256()))
    ref = p.KeyRef
    R = RequestType
    frames = {
        "aes_encrypt": (R.AES_ENCRYPT, p.AesEncryptRequest(ID["aes"], b"aad", b"plaintext").encode()),
        "aes_encrypt_shared": (R.AES_ENCRYPT, p.AesEncryptRequest(ID["aes_shared"], b"", b"x" * 40).encode()),
        "aes_decrypt": (R.AES_DECRYPT, p.AesDecryptRequest(ID["aes"], b"aad", sealed).encode()),
        "aes_decrypt_replay": (R.AES_DECRYPT, p.AesDecryptRequest(ID["aes_replay"], b"", sealed).encode()),
        "mldsa_sign": (R.MLDSA_SIGN, p.MldsaSignRequest(ID["dsa65"], b"message", b"ctx").encode()),
        "mldsa_verify_id": (R.MLDSA_VERIFY, p.MldsaVerifyRequest(ref(ID["dsa44"]), b"message", dsa_sig,
                                                                 b"ctx").encode()),
        "mldsa_verify_inline": (R.MLDSA_VERIFY, p.MldsaVerifyRequest(ref(0, Algorithm.ML_DSA_44, dsa_pub), b"message",
                                                                     dsa_sig, b"ctx").encode()),
        "mlkem_keygen": (R.MLKEM_KEYGEN, p.KeyGenerateRequest(Algorithm.ML_KEM_512, 0, "k").encode()),
        "mlkem_encaps_id": (R.MLKEM_ENCAPS, p.MlkemEncapsRequest(ref(ID["kem768"]), 0).encode()),
        "mlkem_encaps_release": (R.MLKEM_ENCAPS, p.MlkemEncapsRequest(ref(ID["kem512"]), 1).encode()),
        "mlkem_encaps_inline": (R.MLKEM_ENCAPS, p.MlkemEncapsRequest(ref(0, Algorithm.ML_KEM_768, kem_pub),
                                                                     1).encode()),
        "mlkem_decaps": (R.MLKEM_DECAPS, p.MlkemDecapsRequest(ID["kem768"], kem_ct, 0).encode()),
        "mlkem_decaps_release": (R.MLKEM_DECAPS, p.MlkemDecapsRequest(ID["kem512"], b"\0" * 768, 1).encode()),
        "ecdsa_sign": (R.ECDSA_SIGN, p.EcdsaSignRequest(ID["p256"], b"data").encode()),
        "ecdsa_sign_prehashed": (R.ECDSA_SIGN, p.EcdsaSignRequest(ID["p384"], hashlib.sha384(b"d").digest(),
                                                                  HashAlg.SHA384, 1).encode()),
        "ecdsa_verify_id": (R.ECDSA_VERIFY, p.EcdsaVerifyRequest(ref(ID["p256"]), b"data", ec_sig).encode()),
        "ecdsa_verify_inline": (R.ECDSA_VERIFY, p.EcdsaVerifyRequest(ref(0, Algorithm.ECDSA_P256, p256_pub), b"data",
                                                                     ec_sig).encode()),
        "random": (R.RANDOM, p.RandomRequest(32).encode()),
        "key_generate_aes": (R.KEY_GENERATE, p.KeyGenerateRequest(Algorithm.AES_256_GCM, 0x103, "gen").encode()),
        "key_generate_p256": (R.KEY_GENERATE, p.KeyGenerateRequest(Algorithm.ECDSA_P256, 0, "").encode()),
        "key_import_aes": (R.KEY_IMPORT, p.KeyImportRequest(Algorithm.AES_256_GCM, KeyFormat.RAW, b"k" * 32).encode()),
        "key_import_public": (R.KEY_IMPORT, p.KeyImportRequest(Algorithm.ML_DSA_44, KeyFormat.PUBLIC,
                                                               dsa_pub).encode()),
        "key_import_seed": (R.KEY_IMPORT, p.KeyImportRequest(Algorithm.ML_KEM_512, KeyFormat.SEED,
                                                             b"s" * 64).encode()),
        "key_export_public": (R.KEY_EXPORT_PUBLIC, p.KeyIdRequest(ID["dsa87"]).encode()),
        "key_export_seed": (R.KEY_EXPORT, p.KeyExportRequest(ID["dsa65"], KeyFormat.SEED).encode()),
        "key_export_expanded": (R.KEY_EXPORT, p.KeyExportRequest(ID["p384"], KeyFormat.RAW).encode()),
        "key_delete": (R.KEY_DELETE, p.KeyIdRequest(ID["kem1024"]).encode()),
        "key_list": (R.KEY_LIST, p.KeyListRequest(0).encode()),
        "key_describe": (R.KEY_DESCRIBE, p.KeyIdRequest(ID["aes_enc"]).encode()),
        "status": (R.STATUS, b""),
    }
    seeds = {}
    for name, (rtype, payload) in frames.items():
        frame = pack_request(rtype, payload)
        for who, peer in (("owner", 0), ("stranger", 1), ("grantee", 2)):
            seeds[f"{name}-{who}"] = bytes([peer]) + frame
    # byte 0 bit 7: the header goes in as it is (no length fix-up by the harness)
    seeds["bad_magic"] = b"\x80" + b"\x00\x01\x50\x00\x00\x00\x00\x00"
    seeds["length_lies"] = b"\x80" + b"\xc7\x01\x01\x00\xff\xff\x00\x00" + b"\x01\x01\x00\x00"
    seeds["oversize"] = b"\x80" + b"\xc7\x01\x38\x00" + struct.pack("<I", 65537)
    return seeds


def config_seeds() -> dict[str, bytes]:
    crypto = {
        "socket": {"path": "/run/wvds/crypto.sock", "mode": "0660"},
        "access": {"allow_uids": [0], "allow_gids": [990]},
        "grants": [{"owner_uid": 991, "label": "device-key", "gids": [990], "usage": ["verify", "sign"]}],
        "limits": {"max_clients": 64, "slots_per_client": 8, "workers": 0, "max_keys_per_client": 1024,
                   "gcm_invocation_limit": 4294967296, "replay_window": 100000, "spin_us": 50,
                   "rate_limit": {"requests_per_second": 1000, "burst": 100, "cooldown_ms": 100}},
        "openssl": {"config": "/etc/opt/wvds/ssl/openssl.cnf", "modules": "/opt/wvds/lib/ossl-modules"},
        "keystore": {"backend": "file", "directory": "/var/lib/wvds/keystore",
                     "secret_file": "/etc/opt/wvds/keystore.secret"},
        "log": {"level": "info"},
    }
    est = {
        "crypto_service": {"socket": "/run/wvds/crypto.sock", "timeout_ms": 10000},
        "state_dir": "/var/lib/wvds/est",
        "servers": {"ca": {"url": "https://est.example:8443", "label": "arbitrary", "trust_anchor": "/dev/null",
                           "server_name": "est.example", "timeout_s": 30, "max_response_bytes": 1048576,
                           "tls": {"min_version": "1.2", "max_version": "1.3", "groups": ["X25519MLKEM768"]},
                           "auth": {"bootstrap": {"username": "dev", "password_file": "/dev/null"},
                                    "reenroll": {"client_cert": "/dev/null", "client_key": "/dev/null"}}}},
        "certificates": [{"name": "device", "server": "ca", "key_algorithm": "ECDSA-P256",
                          "subject": [["CN", "gw"], ["O", "WvdS"], ["2.5.4.5", "42"]],
                          "san": {"dns": ["gw.local"], "ip": ["192.0.2.7"], "uri": ["urn:x"], "email": ["a@b"]},
                          "key_label": "est:device", "renew_at": 0.66, "jitter": 0.05, "rekey": True,
                          "honour_csrattrs": True, "retry": {"initial_s": 60, "max_s": 3600},
                          "poll": {"default_s": 30, "min_s": 1, "max_s": 3600, "max_total_s": 86400,
                                   "max_polls": 100}, "bootstrap_on_expiry": True, "clock_skew_s": 300}],
        "log": {"level": "debug"},
    }
    minimal_est = {"servers": {"s": {"url": "https://h", "bootstrap_ca_fingerprint": "ab" * 32}},
                   "certificates": [{"name": "c", "subject": {"CN": "x"}}]}
    return {"crypto-full": b"\x00" + json.dumps(crypto).encode(),
            "crypto-minimal": b"\x00" + json.dumps({"access": {"allow_uids": [0]}}).encode(),
            "crypto-memory": b"\x00" + json.dumps({"access": {"allow_gids": [1]}, "keystore": {"backend": "memory"}},
                                                  indent=1).encode(),
            "est-full": b"\x01" + json.dumps(est).encode(),
            "est-minimal": b"\x01" + json.dumps(minimal_est).encode()}


def keyfile_seeds() -> dict[str, bytes]:
    from wvds.keystore import fileformat as ff
    from wvds.keystore.base import KeyRecord
    seal = lambda aad, pt: b"\0" * 12 + pt + b"\0" * 16  # noqa: E731  (the harness's stand-in KEK)
    out = {}
    for i, (alg, usage, label, form, material) in enumerate(BASE_KEYS[:4]):
        rec = KeyRecord(0x01020304, Algorithm(alg), usage, 1000, label, 1795659424, KeyFormat(form), material,
                        4096 * i, False)
        out[f"key-{i}"] = b"\x00" + ff.encode_key(rec, bytes(range(16)), seal)
    header = ff.new_header(bytes(range(16)), 1795659424, {"source": "secret_file"})
    out["header"] = b"\x01" + ff.encode_header(header, seal)
    header = ff.new_header(bytes(range(16)), 1, {"source": "passphrase", "kdf": "PBKDF2-HMAC-SHA256",
                                                 "salt": "00" * 16, "iterations": 600000})
    out["header-passphrase"] = b"\x01" + ff.encode_header(header, seal)
    return out


def est_seeds() -> dict[str, bytes]:
    from asn1crypto import core
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, mldsa
    from cryptography.hazmat.primitives.serialization import pkcs7 as pyca_pkcs7
    from cryptography.x509.oid import NameOID

    from wvds.est_service import asn1

    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    ca_key = ec.derive_private_key(7, ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fuzz CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = mldsa.MLDSA65PrivateKey.from_seed_bytes(b"\x05" * 32)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw-0001"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "WvdS")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(0x1234)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("gw.local")]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    der = lambda c: c.public_bytes(serialization.Encoding.DER)  # noqa: E731
    p7 = pyca_pkcs7.serialize_certificates([leaf, ca], serialization.Encoding.DER)
    b64 = base64.b64encode(p7)
    wrapped = b"\r\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + b"\r\n"

    # csrattrs: legacy OIDs + extensionRequest, and an RFC 9908 template
    legacy = asn1.CsrAttrs([
        asn1.AttrOrOID(name="oid", value=core.ObjectIdentifier(asn1.CHALLENGE_PASSWORD)),
        asn1.AttrOrOID(name="oid", value=core.ObjectIdentifier("2.5.4.5")),
        asn1.AttrOrOID(name="attribute", value=asn1.AnyAttribute({
            "type": asn1.EC_PUBLIC_KEY, "values": [core.ObjectIdentifier("1.3.132.0.34")]})),
        asn1.AttrOrOID(name="attribute", value=asn1.AnyAttribute({
            "type": asn1.EXTENSION_REQUEST,
            "values": [asn1.AnyExtensions([asn1.AnyExtension({"extn_id": "2.5.29.37", "critical": False,
                                                              "extn_value": b"\x30\x00"})])]})),
    ]).dump()
    template = asn1.CertificationRequestInfoTemplate({
        "version": 0,
        "subject": asn1.RDNSequenceTemplate([asn1.RelativeDistinguishedNameTemplate([
            asn1.SingleAttributeTemplate({"type": "2.5.4.3"})])]),
        "subject_pk_info": asn1.SubjectPublicKeyInfoTemplate({"algorithm": asn1.AlgorithmIdentifier({
            "algorithm": "2.16.840.1.101.3.4.3.18"})}),
        "attributes": asn1.AnyAttributes([asn1.AnyAttribute({
            "type": asn1.EXT_REQ_TEMPLATE,
            "values": [asn1.ExtensionTemplates([asn1.ExtensionTemplate({"extn_id": "2.5.29.17"})])]})]),
    })
    rfc9908 = asn1.CsrAttrs([asn1.AttrOrOID(name="attribute", value=asn1.AnyAttribute({
        "type": asn1.CRI_TEMPLATE, "values": [template]}))]).dump()

    def http(status: str, headers: list[str], body: bytes) -> bytes:
        head = f"HTTP/1.1 {status}\r\n" + "".join(h + "\r\n" for h in headers)
        return head.encode() + b"\r\n" + body

    seeds = {
        "http-200": http("200 OK", ["Content-Type: application/pkcs7-mime; smime-type=certs-only",
                                   "Content-Transfer-Encoding: base64", f"Content-Length: {len(wrapped)}"], wrapped),
        "http-202": http("202 Accepted", ["Retry-After: 30", "Content-Length: 0"], b""),
        "http-202-date": http("202 Accepted", ["Retry-After: Wed, 21 Oct 2026 07:28:00 GMT"], b""),
        "http-chunked": http("200 OK", ["Transfer-Encoding: chunked"], b"5\r\nMIIB1\r\n0\r\n\r\n"),
        "http-401": http("401 Unauthorized", ["Content-Type: text/plain", "WWW-Authenticate: Basic"], b"no"),
        "http-302": http("302 Found", ["Location: https://elsewhere/"], b""),
        "http-500": http("500 Internal Server Error", ["Content-Length: 5"], b"oops\n"),
    }
    out = {f"{k}": b"\x00" + v for k, v in seeds.items()}
    out["pkcs7-b64"] = b"\x01" + wrapped
    out["pkcs7-der"] = b"\x01" + p7
    out["pkcs7-pem"] = b"\x01" + b"-----BEGIN PKCS7-----\n" + wrapped + b"-----END PKCS7-----\n"
    out["csrattrs-legacy"] = b"\x02" + base64.b64encode(legacy)
    out["csrattrs-rfc9908"] = b"\x02" + base64.b64encode(rfc9908)
    out["cert-leaf"] = b"\x03" + der(leaf)
    out["cert-ca"] = b"\x03" + der(ca)
    return out


def extract_certs_seeds() -> dict[str, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, mldsa
    from cryptography.hazmat.primitives.serialization import pkcs7 as pyca_pkcs7
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    ca_key = ec.derive_private_key(11, ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tool CA"), x509.NameAttribute(NameOID.COUNTRY_NAME,
                                                                                                  "DE")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(7).not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA384()))
    leaf_key = mldsa.MLDSA44PrivateKey.from_seed_bytes(b"\x07" * 32)
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(0xABCDEF)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("gw.local"), x509.IPAddress(
                __import__("ipaddress").ip_address("192.0.2.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA384()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    der = lambda c: c.public_bytes(serialization.Encoding.DER)  # noqa: E731
    p7 = pyca_pkcs7.serialize_certificates([leaf, ca], serialization.Encoding.DER)
    p7_pem = pyca_pkcs7.serialize_certificates([leaf, ca], serialization.Encoding.PEM)
    p12_key = ec.derive_private_key(13, ec.SECP256R1())
    p12_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                .public_key(p12_key.public_key()).serial_number(9).not_valid_before(now)
                .not_valid_after(now + dt.timedelta(days=1)).sign(p12_key, hashes.SHA256()))
    p12 = pkcs12.serialize_key_and_certificates(b"k", p12_key, p12_cert, [ca],
                                                serialization.BestAvailableEncryption(b"fuzz"))
    p12_certs_only = pkcs12.serialize_key_and_certificates(b"c", None, None, [ca, leaf],
                                                           serialization.BestAvailableEncryption(b"fuzz"))
    return {"pem-chain": b"\x00" + pem(leaf) + pem(ca), "der-cert": b"\x00" + der(ca),
            "pkcs7-der": b"\x00" + p7, "pkcs7-pem": b"\x00" + p7_pem,
            "pkcs7-base64": b"\x00" + base64.encodebytes(p7),
            "pem-mixed": b"\x00" + pem(leaf) + b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "pkcs12": b"\x00" + p12, "pkcs12-certs": b"\x00" + p12_certs_only,  # byte 0 even: pyca, odd: openssl
            "pkcs12-openssl": b"\x01" + p12, "pkcs12-certs-openssl": b"\x01" + p12_certs_only}


def liboqs_seeds() -> dict[str, bytes]:
    """One per algorithm and mutation kind (fuzz_liboqs_differential.py); the rest is the fuzzer's."""
    out = {}
    for pick in range(6):
        for kind in range(4):
            out[f"alg{pick}-case{kind}"] = bytes([pick]) + bytes([kind * 61 + pick] * 40) + bytes([kind]) * 8 \
                + b"message %d" % kind * 20
    return out


def stream_seeds() -> dict[str, bytes]:
    """fuzz_stream.py: byte 0 even puts a good frame in front; frames back to back, truncated, garbage."""
    rnd = pack_request(RequestType.RANDOM, struct.pack("<I", 16))
    enc = pack_request(RequestType.AES_ENCRYPT, struct.pack("<IH", 0x101, 3) + b"aad" + b"p" * 300)
    return {
        "one": b"\x01" + rnd, "two": b"\x01" + rnd + enc, "after-good": b"\x00" + enc,
        "truncated-header": b"\x01" + rnd[:5], "truncated-payload": b"\x01" + enc[:100],
        "bad-magic": b"\x00\x01\x01\x38\x00\x04\x00\x00\x00abcd", "bad-version": b"\x01" + rnd[:1] + b"\x09" + rnd[2:],
        "too-large": b"\x00" + rnd[:4] + struct.pack("<I", 65537), "text": b"\x01GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "bad-type-flags": b"\x00" + rnd[:2] + b"\x7e\x80" + rnd[4:],
    }


def main() -> None:
    _write("extract_certs", extract_certs_seeds())
    _write("liboqs", liboqs_seeds())
    _write("request", request_seeds())
    _write("config", config_seeds())
    _write("keyfile", keyfile_seeds())
    _write("est", est_seeds())
    _write("stream", stream_seeds())
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
