"""wvdsctl: every crypto_service operation from the command line.

Binary inputs come from files (--in FILE, '-' for stdin) or hex (--hex); outputs
go to files (--out) or are printed as hex. --json prints one JSON object.
Exit status: 0 success, 1 the service refused (status name on stderr),
2 usage error, 3 transport failure (service not reachable, timeout, ...).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from wvds.algorithms import cli_names
from wvds.client import Client, ServiceStatusError, TransportFailure
from wvds.protocol.constants import SLH_DSA, Algorithm, HashAlg, KeyFormat, KeyUsage
from wvds.protocol.payloads import KeyRef

DEFAULT_SOCKET = os.environ.get("WVDS_SOCKET", "/run/wvds/crypto.sock")
ALGS = cli_names(aliases=True)
FORMATS = {f.name.lower(): f for f in KeyFormat}
USAGES = {u.name.lower().replace("_", "-"): u for u in KeyUsage}


class UsageError(Exception):
    pass


def key_id(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a key id: {text!r} (decimal or 0x hex)") from None
    if not 0 < v < 2**32:
        raise argparse.ArgumentTypeError(f"key id out of range: {text}")
    return v


def algorithm(text: str) -> Algorithm:
    try:
        return ALGS[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"unknown algorithm {text!r}; one of {', '.join(sorted(ALGS))}") from None


def usage(text: str) -> int:
    out = 0
    for name in filter(None, text.lower().split(",")):
        if name not in USAGES:
            raise argparse.ArgumentTypeError(f"unknown usage {name!r}; one of {', '.join(sorted(USAGES))}")
        out |= USAGES[name]
    return out


def read_input(file: str | None, hexstr: str | None, what: str, required: bool = True) -> bytes:
    if file is not None and hexstr is not None:
        raise UsageError(f"{what}: give a file or hex, not both")
    if hexstr is not None:
        try:
            return bytes.fromhex(hexstr)
        except ValueError:
            raise UsageError(f"{what}: not valid hex") from None
    if file is not None:
        if file == "-":
            return sys.stdin.buffer.read()
        try:
            with open(file, "rb") as f:
                return f.read()
        except OSError as e:
            raise UsageError(f"{what}: cannot read {file}: {e.strerror}") from None
    if required:
        raise UsageError(f"{what}: missing (give --{what}-file/--{what}-hex or --in/--hex)")
    return b""


def add_io(p: argparse.ArgumentParser, name: str = "in", required: bool = True) -> None:
    flag = "in" if name == "in" else f"{name}-file"
    hexflag = "hex" if name == "in" else f"{name}-hex"
    p.add_argument(f"--{flag}", dest=f"{name}_file", metavar="FILE", help=f"{name} from FILE ('-' = stdin)")
    p.add_argument(f"--{hexflag}", dest=f"{name}_hex", metavar="HEX", help=f"{name} as hex")
    p.set_defaults(**{f"{name}_required": required})


def get(args, name: str) -> bytes:
    return read_input(getattr(args, f"{name}_file"), getattr(args, f"{name}_hex"), name.replace("_", "-"),
                      getattr(args, f"{name}_required", True))


def pubref(args) -> KeyRef:
    if args.key is not None:
        return KeyRef(key_id=args.key)
    if args.pubkey_alg is None:
        raise UsageError("name the key: KEY_ID, or --pubkey-alg with --pubkey-file/--pubkey-hex")
    return KeyRef(algorithm=args.pubkey_alg, public_key=get(args, "pubkey"))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="wvdsctl", description="Talk to the WvdS crypto_service.")
    ap.add_argument("--socket", default=DEFAULT_SOCKET, help=f"service socket (default {DEFAULT_SOCKET}; $WVDS_SOCKET)")
    ap.add_argument("--timeout", type=int, default=10_000, help="per-request timeout in ms")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--out", help="write the binary result to this file instead of printing hex")
    ap.add_argument("--version", action="store_true", help="print versions and exit")
    sub = ap.add_subparsers(dest="cmd")

    sub.add_parser("status", help="service status (versions, FIPS state, limits)")
    p = sub.add_parser("random", help="random bytes from the FIPS DRBG")
    p.add_argument("length", type=int)

    for name, help_ in (("generate", "generate a key"), ("kem-keygen", "generate an ML-KEM key pair")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("algorithm", type=algorithm)
        p.add_argument("--usage", type=usage, default=0, help="comma-separated: " + ",".join(USAGES)
                       + " (AES keys are replay-protected; 'replayable' for data decrypted again and again)")
        p.add_argument("--label", default="")
    p = sub.add_parser("import", help="import key material")
    p.add_argument("algorithm", type=algorithm)
    p.add_argument("format", choices=sorted(FORMATS))
    p.add_argument("--usage", type=usage, default=0)
    p.add_argument("--label", default="")
    add_io(p)
    for name in ("export-public", "delete", "describe"):
        sub.add_parser(name, help=f"{name.replace('-', ' ')} a key").add_argument("key", type=key_id)
    p = sub.add_parser("export", help="export key material (only if the key's policy allows)")
    p.add_argument("key", type=key_id)
    p.add_argument("format", choices=sorted(FORMATS))
    sub.add_parser("list", help="list the keys you can see")

    for name in ("encrypt", "decrypt"):
        p = sub.add_parser(name, help=f"AES-256-GCM {name} (sealed form: nonce || ciphertext || tag)")
        p.add_argument("key", type=key_id)
        add_io(p)
        add_io(p, "aad", required=False)
    p = sub.add_parser("sign", help="ML-DSA or SLH-DSA sign (by the key's algorithm)")
    p.add_argument("key", type=key_id)
    p.add_argument("--context", default="", help="context string (text)")
    add_io(p)
    p = sub.add_parser("ecdsa-sign", help="ECDSA sign (DER signature)")
    p.add_argument("key", type=key_id)
    p.add_argument("--hash", choices=["default", "sha256", "sha384", "sha512"], default="default")
    p.add_argument("--prehashed", action="store_true")
    add_io(p)
    for name in ("verify", "ecdsa-verify"):
        p = sub.add_parser(name, help=f"{'ML-DSA or SLH-DSA' if name == 'verify' else 'ECDSA'} verify")
        p.add_argument("key", type=key_id, nargs="?")
        p.add_argument("--pubkey-alg", type=algorithm)
        add_io(p, "pubkey", required=False)
        add_io(p)
        add_io(p, "sig")
        if name == "verify":
            p.add_argument("--context", default="")
        else:
            p.add_argument("--hash", choices=["default", "sha256", "sha384", "sha512"], default="default")
            p.add_argument("--prehashed", action="store_true")
    p = sub.add_parser("kem-encaps", help="ML-KEM encapsulate (to a key id or an inline public key)")
    p.add_argument("key", type=key_id, nargs="?")
    p.add_argument("--pubkey-alg", type=algorithm)
    add_io(p, "pubkey", required=False)
    p.add_argument("--return-secret", action="store_true")
    p = sub.add_parser("kem-decaps", help="ML-KEM decapsulate")
    p.add_argument("key", type=key_id)
    add_io(p, "ct")
    p.add_argument("--return-secret", action="store_true")
    return ap


def run(args, c: Client) -> dict[str, Any]:
    """Execute one command; return the result as a dict (bytes values become hex)."""
    cmd = args.cmd
    if cmd == "status":
        return c.status()
    if cmd == "random":
        return {"data": c.random(args.length)}
    if cmd in ("generate", "kem-keygen"):
        r = (c.generate_key if cmd == "generate" else c.mlkem_keygen)(args.algorithm, args.usage, args.label)
        return {"key_id": f"0x{r.key_id:08x}", "public_key": r.public_key}
    if cmd == "import":
        r = c.import_key(args.algorithm, FORMATS[args.format], get(args, "in"), args.usage, args.label)
        return {"key_id": f"0x{r.key_id:08x}", "public_key": r.public_key}
    if cmd == "export-public":
        r = c.export_public(args.key)
        return {"algorithm": r.algorithm.name, "data": r.public_key}
    if cmd == "export":
        return {"data": c.export_key(args.key, FORMATS[args.format])}
    if cmd == "delete":
        c.delete_key(args.key)
        return {"deleted": f"0x{args.key:08x}"}
    if cmd == "describe":
        d = c.describe_key(args.key)
        return {"key_id": f"0x{d.key_id:08x}", "algorithm": d.algorithm.name, "usage": str(KeyUsage(d.usage)),
                "owner_uid": d.owner_uid, "created": d.created, "uses": d.uses, "label": d.label}
    if cmd == "list":
        return {"keys": [{"key_id": f"0x{k:08x}", "algorithm": a.name} for k, a in c.list_keys()]}
    if cmd == "encrypt":
        return {"data": c.encrypt(args.key, get(args, "in"), get(args, "aad"))}
    if cmd == "decrypt":
        return {"data": c.decrypt(args.key, get(args, "in"), get(args, "aad"))}
    if cmd == "sign":
        sign = c.slhdsa_sign if c.describe_key(args.key).algorithm in SLH_DSA else c.mldsa_sign
        return {"data": sign(args.key, get(args, "in"), args.context.encode())}
    if cmd == "ecdsa-sign":
        flags = 1 if args.prehashed else 0
        return {"data": c.ecdsa_sign(args.key, get(args, "in"), HashAlg[args.hash.upper()], flags)}
    if cmd == "verify":
        ref = pubref(args)
        alg = ref.algorithm if ref.inline else c.describe_key(ref.key_id).algorithm
        verify = c.slhdsa_verify if alg in SLH_DSA else c.mldsa_verify
        return {"valid": verify(ref, get(args, "in"), get(args, "sig"), args.context.encode())}
    if cmd == "ecdsa-verify":
        flags = 1 if args.prehashed else 0
        ok = c.ecdsa_verify(pubref(args), get(args, "in"), get(args, "sig"), HashAlg[args.hash.upper()], flags)
        return {"valid": ok}
    if cmd == "kem-encaps":
        r = c.mlkem_encaps(pubref(args), args.return_secret)
        out = {"ciphertext": r.ciphertext}
        return out | ({"secret": r.secret} if r.secret else {"aes_key_id": f"0x{r.key_id:08x}"})
    if cmd == "kem-decaps":
        r = c.mlkem_decaps(args.key, get(args, "ct"), args.return_secret)
        return {"secret": r.secret} if r.secret else {"aes_key_id": f"0x{r.key_id:08x}"}
    raise UsageError(f"unknown command {cmd}")


def emit(args, result: dict[str, Any]) -> None:
    if args.out is not None and isinstance(result.get("data"), bytes):
        with open(args.out, "wb") as f:
            f.write(result.pop("data"))
        result["written"] = args.out
    plain = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in result.items()}
    if args.json:
        print(json.dumps(plain, indent=2, sort_keys=True))
    elif list(plain) == ["data"]:
        print(plain["data"])
    else:
        for k, v in plain.items():
            print(f"{k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.version:
        from wvds.programs import version_text
        print(version_text("wvdsctl"))
        return 0
    if not args.cmd:
        ap.print_usage(sys.stderr)
        return 2
    try:
        with Client(args.socket, timeout_ms=args.timeout) as c:
            result = run(args, c)
    except UsageError as e:
        print(f"wvdsctl: {e}", file=sys.stderr)
        return 2
    except ServiceStatusError as e:
        print(f"wvdsctl: {e.status.name}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": e.status.name, "status": int(e.status)}))
        return 1
    except TransportFailure as e:
        print(f"wvdsctl: {e}", file=sys.stderr)
        return 3
    emit(args, result)
    if result.get("valid") is False:
        print("wvdsctl: SIGNATURE_INVALID", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
