"""Generate the C side of the native boundary from wvds.native.spec, and check the C headers against it.

    python -m wvds.native.cheader --check   # exit 1 with a diff if a generated block is stale, or if a
                                            # header's prototypes disagree with the spec (the build runs this)
    python -m wvds.native.cheader --update  # rewrite the generated blocks in place

Generated blocks (between BEGIN/END marker lines): the transport layout in src/c/transport/slots.h and
the whole API of the service library in src/c/service/wvds_srv.h. The OEM header include/wvds_crypto.h
is written by hand for its readers; the functions Python calls from it are checked here, by parsing the
header with pycparser, as are the generated headers themselves (so a hand edit inside a block fails too).
"""
from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from wvds.native import spec

BEGIN = "/* BEGIN GENERATED: python -m wvds.native.cheader */"
END = "/* END GENERATED */"
C_SRC = Path(__file__).resolve().parents[2] / "c"
SLOTS_H = C_SRC / "transport" / "slots.h"
SRV_H = C_SRC / "service" / "wvds_srv.h"
OEM_H = C_SRC / "include" / "wvds_crypto.h"
WIDTH = 110


def _comment(text: str, indent: str = "") -> list[str]:
    if not text:
        return []
    lines = textwrap.wrap(text, WIDTH - len(indent) - 3)
    if len(lines) == 1 and len(lines[0]) <= WIDTH - len(indent) - 6:
        return [f"{indent}/* {lines[0]} */"]
    return [f"{indent}/* {lines[0]}"] + [f"{indent} * {line}" for line in lines[1:]] + [f"{indent} */"]


def _struct(s: spec.Struct) -> list[str]:
    out = _comment(s.doc) + [f"typedef struct {s.name} {{"]
    for ctype, name, note in s.fields:
        decl = f"    {ctype}{'' if ctype.endswith('*') else ' '}{name};"
        out.append(f"{decl:<40}/* {note} */" if note else decl)
    return out + [f"}} {s.name};"]


def _prototype(f: spec.Function) -> list[str]:
    def spaced(ctype: str, name: str) -> str:
        return f"{ctype}{'' if ctype.endswith('*') else ' '}{name}"
    head = f"WVDS_SRV_API {spaced(f.restype, f.name)}("
    args = [spaced(t, n) for t, n in f.args] or ["void"]
    lines, line = [], head
    for i, a in enumerate(args):
        piece = a + (", " if i < len(args) - 1 else ");")
        if len(line) + len(piece.rstrip()) > WIDTH:
            lines.append(line.rstrip())
            line = " " * len(head) + piece
        else:
            line += piece
    return _comment(f.doc) + lines + [line.rstrip()]


def slots_block() -> list[str]:
    out = ["/* The transport layout of docs/transport.md, from src/wvds/native/spec.py. Do not edit by hand. */"]
    for c in spec.TRANSPORT:
        line = f"#define WVDS_{c.name} {c.value}u"
        out.append(f"{line:<44}/* {c.doc} */" if c.doc else line)
    out.append("enum wvds_slot_state { " + ", ".join(f"WVDS_SLOT_{s} = {i}" for i, s in enumerate(spec.SLOT_STATES))
               + " };")
    return out + [""] + _struct(spec.SHM_CONTROL) + [""] + _struct(spec.SLOT_HEADER)


def srv_block() -> list[str]:
    out = ["/* The service library's API, from src/wvds/native/spec.py (crypto_service binds it through ctypes"
           " from the same", " * spec: wvds.native.bind). Do not edit by hand. */"]
    out += [f"typedef struct {name} {name};" for name in spec.OPAQUE]
    for c in spec.SERVICE_CODES:
        line = f"#define WVDS_{c.name} ({c.value})" if c.value < 0 else f"#define WVDS_{c.name} {c.value}"
        out.append(f"{line:<44}/* {c.doc} */" if c.doc else line)
    out += [""] + _struct(spec.OSSL_ENTRY_POINTS)
    for f in spec.functions("service"):
        out += [""] + _prototype(f)
    return out


BLOCKS = {SLOTS_H: slots_block, SRV_H: srv_block}


def _replace_block(text: str, block: list[str], path: Path) -> str:
    try:
        start = text.index(BEGIN) + len(BEGIN)
        end = text.index(END, start)
    except ValueError:
        raise SystemExit(f"{path}: no {BEGIN!r} ... {END!r} block") from None
    return text[:start] + "\n" + "\n".join(block) + "\n" + text[end:]


# --- parsing the headers (pycparser) ------------------------------------------------------------------
_STUBS = {
    "stddef.h": "typedef unsigned long size_t;\n",
    "stdint.h": "".join(f"typedef int {t};\n" for t in (
        "int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t", "uint64_t", "uintptr_t")),
    "stdbool.h": "typedef int bool;\n",
}


def _parse(header: Path):
    """The header's top-level declarations as a pycparser AST (system headers replaced by typedef stubs)."""
    import pycparser
    with tempfile.TemporaryDirectory() as stubs:
        for name, text in _STUBS.items():
            Path(stubs, name).write_text(text)
        cpp = subprocess.run(["cpp", "-P", "-nostdinc", "-undef", f"-I{stubs}", f"-I{OEM_H.parent}",
                              "-D__attribute__(x)=", "-D__GNUC__=4", "-D_Atomic=", str(header)],
                             capture_output=True, text=True)
        if cpp.returncode:
            raise SystemExit(f"cpp {header}: {cpp.stderr}")
    return pycparser.CParser().parse(cpp.stdout, str(header))


def _type(node) -> str:
    from pycparser import c_ast
    if isinstance(node, c_ast.PtrDecl):
        inner = _type(node.type)
        ptr = inner + "*" if inner.endswith("*") else inner + " *"
        return ptr + (" const" if "const" in node.quals else "")
    if isinstance(node, c_ast.TypeDecl):
        quals = "const " if "const" in node.quals else ""
        t = node.type
        name = " ".join(t.names) if isinstance(t, c_ast.IdentifierType) else f"struct {t.name}"
        return quals + name
    raise ValueError(f"unsupported declarator {type(node).__name__}")


def declared(header: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (return type, argument types) of every function the header declares."""
    from pycparser import c_ast
    out = {}
    for ext in _parse(header).ext:
        if isinstance(ext, c_ast.Decl) and isinstance(ext.type, c_ast.FuncDecl):
            fd = ext.type
            args = tuple(_type(p.type) for p in (fd.args.params if fd.args else ()) if _type(p.type) != "void")
            out[ext.name] = (_type(fd.type), args)
    return out


def struct_fields(header: Path, name: str) -> list[str]:
    from pycparser import c_ast
    for ext in _parse(header).ext:
        if isinstance(ext, c_ast.Typedef) and ext.name == name:
            return [f"{_type(d.type.type if isinstance(d.type, c_ast.ArrayDecl) else d.type)} {d.name}"
                    + (f"[{d.type.dim.value}]" if isinstance(d.type, c_ast.ArrayDecl) else "")
                    for d in ext.type.type.decls]
    raise KeyError(f"{header.name}: no typedef {name}")


def _spec_fields(s: spec.Struct) -> list[str]:
    return [f"{t.replace('_Atomic ', '')} {n}" for t, n, _ in s.fields]


def disagreements() -> list[str]:
    """Every way the headers differ from the spec (prototypes and shared structs)."""
    problems = []
    for header, library in ((SRV_H, "service"), (OEM_H, "client")):
        have = declared(header)
        for f in spec.functions(library):
            want = (f.restype, tuple(t for t, _ in f.args))
            if have.get(f.name) != want:
                problems.append(f"{header.name}: {f.name} is {have.get(f.name)}, spec says {want}")
        if library == "service":  # the generated header declares the spec's functions and nothing else
            problems += [f"{header.name}: {n} is not in the spec" for n in set(have) - {f.name for f in
                                                                                       spec.functions(library)}]
    for header, s in ((OEM_H, spec.CLIENT_OPTIONS), (SRV_H, spec.OSSL_ENTRY_POINTS)):
        if struct_fields(header, s.name) != _spec_fields(s):
            problems.append(f"{header.name}: {s.name} is {struct_fields(header, s.name)}, spec says {_spec_fields(s)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--update", action="store_true")
    args = ap.parse_args(argv)
    stale = False
    for path, make in BLOCKS.items():
        old = path.read_text()
        new = _replace_block(old, make(), path)
        if new == old:
            continue
        if args.update:
            path.write_text(new)
            print(f"updated {path}")
        else:
            stale = True
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path),
                                                       f"{path} (generated)"))
    if stale:
        print("stale generated block: run python -m wvds.native.cheader --update", file=sys.stderr)
        return 1
    if args.check or args.update:
        problems = disagreements()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
