"""The protocol block of wvds_crypto.h is generated from src/wvds/protocol and src/wvds/version.py."""
import os
import re
import subprocess
import sys

from wvds.protocol import cheader
from wvds.protocol.constants import MAX_PAYLOAD, RequestType, Status
from wvds.version import VERSION

from support.clib import C_SRC
from support.targets import ROOT

HEADER = C_SRC / "include" / "wvds_crypto.h"


def test_generated_block_is_current():
    r = subprocess.run([sys.executable, "-m", "wvds.protocol.cheader", "--check", str(HEADER)], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, f"stale block; run python -m wvds.protocol.cheader --update {HEADER}\n{r.stdout}"


def test_check_reports_a_stale_block_with_a_diff(tmp_path):
    stale = tmp_path / "wvds_crypto.h"
    stale.write_text(HEADER.read_text().replace('"0.2.0"', '"0.0.1"').replace(f'"{VERSION}"', '"0.0.1"'))
    assert cheader.main(["--check", str(stale)]) == 1
    assert cheader.main(["--update", str(stale)]) == 0
    assert stale.read_text() == HEADER.read_text()


def test_block_carries_every_wire_value():
    text = HEADER.read_text()
    assert f'#define WVDS_PRODUCT_VERSION "{VERSION}"' in text
    assert f"#define WVDS_MAX_PAYLOAD {MAX_PAYLOAD}u" in text
    for t in RequestType:
        assert re.search(rf"WVDS_REQ_{t.name} = 0x{t.value:02X}\b", text), t
    for s in Status:
        assert re.search(rf"\bWVDS_{s.name} = 0x{s.value:02X}\b", text), s
    assert text.count(cheader.BEGIN) == 1 and text.count(cheader.END) == 1


def test_header_compiles_as_c89_and_cpp(tmp_path):
    """OEMs include it from any C dialect or from C++."""
    src = tmp_path / "use.c"
    src.write_text('#include "wvds_crypto.h"\nint main(void) { return wvds_status_name(WVDS_SUCCESS) == 0; }\n')
    for cmd in (["gcc", "-std=c89", "-pedantic", "-Wall", "-Wextra", "-Werror", "-c"],
                ["g++", "-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-c"]):
        r = subprocess.run([*cmd, "-I", str(HEADER.parent), str(src), "-o", str(tmp_path / "use.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_python_client_spin_constant_matches_the_header():
    """WVDS_NO_SPIN sits in the hand-written part of the header; the Python client passes it on one CPU."""
    from wvds.client.client import NO_SPIN
    assert f"#define WVDS_NO_SPIN 0x{NO_SPIN:X}u" in HEADER.read_text()
