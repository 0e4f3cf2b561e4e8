"""Generate the OpenSSL provider's algorithm tables from the algorithm registry (wvds.algorithms).

    python -m wvds.algorithms_c                      # print the blocks
    python -m wvds.algorithms_c --check  <file>...   # exit 1 with a diff if a file's block is stale
    python -m wvds.algorithms_c --update <file>...   # rewrite the blocks in place

Each table sits between BEGIN/END marker lines in the C file that uses it, chosen by the file's name
(a file with several tables names each in its BEGIN line): keymgmt.c (wvdsp_alg_info: key type,
group, sizes, security), keyref.c (the key reference names), and for the post-quantum signature
keys provider.c (their OpenSSL names with OIDs, the keymgmt/signature/decoder entries), decoder.c
(their decoders) and provider.h (the decoders' declarations). EC keys have one keymgmt, signature
and decoder for both curves, written by hand. packaging/SConscript.provider runs --check before it
builds the provider.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from wvds.algorithms import AlgorithmInfo, signing_keys

BEGIN = "/* BEGIN GENERATED: python -m wvds.algorithms_c */"
END = "/* END GENERATED */"
WIDTH = 115  # an OSSL_ALGORITHM entry longer than this gets its description on a line of its own


def _c_str(text: str) -> str:
    return f'"{text}"' if text else "NULL"


def keymgmt_rows() -> list[str]:
    rows = ["    /* algorithm, keytype, group, public, max signature, bits, security bits, category */"]
    for i in signing_keys():
        rows.append(f"    {{WVDS_ALG_{i.algorithm.name}, {_c_str(i.keytype)}, {_c_str(i.provider_group)}, "
                    f"{i.public_size}, {i.signature_size}, {i.bits}, {i.security_bits}, {i.security_category}}},")
    return rows


def keyref_rows() -> list[str]:
    return [f"    {{WVDS_ALG_{i.algorithm.name}, {_c_str(i.keyref_name)}}}," for i in signing_keys()]


# -- the post-quantum signature keys in provider.c, decoder.c, provider.h ------------------------------

def _pq_keys() -> list[AlgorithmInfo]:
    return [i for i in signing_keys() if i.family != "EC"]


def _cname(i: AlgorithmInfo) -> str:
    """The C identifier part: "mldsa44", "slhdsa_sha2_128s"."""
    return i.algorithm.name.lower().replace("ml_dsa_", "mldsa").replace("slh_dsa_", "slhdsa_")


def _names_macro(i: AlgorithmInfo) -> str:
    return f"{_cname(i).upper()}_NAMES"


def _row(head: str, description: str) -> list[str]:
    """One OSSL_ALGORITHM entry: on one line if it fits, else the description on the next."""
    line = f'    {{{head}, "{description}"}},'
    return [line] if len(line) <= WIDTH else [f"    {{{head},", f'     "{description}"}},']


def provider_names() -> list[str]:
    """The names each key type answers to: as OpenSSL's own implementation (libssl and the X.509 code
    recognise keys by name), its OID and the OID's name."""
    return [f'#define {_names_macro(i)} "{":".join([i.keytype, *i.openssl_aliases, i.oid, "id-" + i.keytype.lower()])}"'
            for i in _pq_keys()]


def provider_keymgmt() -> list[str]:
    return [line for i in _pq_keys() for line in _row(f"{_names_macro(i)}, WVDS_PROPS, wvdsp_mldsa_keymgmt_functions",
                                                      f"{i.keytype} key held by crypto_service")]


def provider_signature() -> list[str]:
    return [line for i in _pq_keys()
            for line in _row(f"{_names_macro(i)}, WVDS_PROPS, wvdsp_mldsa_signature_functions",
                             f"{i.keytype} with a key held by crypto_service")]


def provider_decoder() -> list[str]:
    return [line for i in _pq_keys()
            for line in _row(f"{_names_macro(i)}, REF_PROPS, wvdsp_{_cname(i)}_decoder_functions",
                             f"key reference to {i.keytype} key")]


def decoders() -> list[str]:
    return [f'KEY_DECODER({_cname(i)}, "{i.keytype}")' for i in _pq_keys()]


def decoder_declarations() -> list[str]:
    return [f"extern const OSSL_DISPATCH wvdsp_{_cname(i)}_decoder_functions[];" for i in _pq_keys()]


# file name -> its tables: (name in the BEGIN line, "" if the file has one table; lines)
BLOCKS = {
    "keymgmt.c": [("", keymgmt_rows)],
    "keyref.c": [("", keyref_rows)],
    "provider.c": [("names", provider_names), ("keymgmt", provider_keymgmt), ("signature", provider_signature),
                   ("decoder", provider_decoder)],
    "decoder.c": [("", decoders)],
    "provider.h": [("", decoder_declarations)],
}


def _begin(name: str) -> str:
    return BEGIN if not name else BEGIN.replace(" */", f" ({name}) */")


def block(file_name: str, name: str = "") -> str:
    lines = dict(BLOCKS[file_name])[name]()
    return "\n".join([_begin(name), *lines, END]) + "\n"


def splice(text: str, new_block: str) -> str:
    """`text` with the generated block that has new_block's BEGIN line (marker lines included) replaced."""
    begin = new_block.split("\n", 1)[0]
    if text.count(begin) != 1:
        raise ValueError(f"expected exactly one '{begin}' line")
    head, rest = text.split(begin, 1)
    if END not in rest:
        raise ValueError(f"no '{END}' line after '{begin}'")
    _, tail = rest.split(END, 1)
    return head + new_block + tail.removeprefix("\n")


def generate(file_name: str, text: str) -> str:
    """`text` (the file's current content) with every table of the file regenerated."""
    if text.count(BEGIN[:-3]) != len(BLOCKS[file_name]):
        raise ValueError(f"expected {len(BLOCKS[file_name])} generated block(s)")
    for name, _ in BLOCKS[file_name]:
        text = splice(text, block(file_name, name))
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wvds.algorithms_c", description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff if a file's block is stale")
    mode.add_argument("--update", action="store_true", help="rewrite the files' blocks")
    ap.add_argument("files", nargs="*", type=Path, help=f"C files: {', '.join(BLOCKS)}")
    args = ap.parse_args(argv)
    if not args.files:
        for file_name, tables in BLOCKS.items():
            for name, _ in tables:
                sys.stdout.write(f"/* {file_name} */\n{block(file_name, name)}")
        return 0
    stale = 0
    for path in args.files:
        if path.name not in BLOCKS:
            print(f"{path}: no generated table for this file (known: {', '.join(BLOCKS)})", file=sys.stderr)
            return 2
        current = path.read_text()
        try:
            wanted = generate(path.name, current)
        except ValueError as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        if wanted == current:
            continue
        if args.update:
            path.write_text(wanted)
            print(f"{path}: generated block updated")
            continue
        sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), wanted.splitlines(True),
                                                   str(path), f"{path} (generated)"))
        print(f"{path}: generated block is stale; run python -m wvds.algorithms_c --update {path}", file=sys.stderr)
        stale = 1
    return stale


if __name__ == "__main__":
    sys.exit(main())
