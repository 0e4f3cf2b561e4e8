"""A short coverage-guided run of every fuzz harness, and a replay of every crash ever found.

Each harness runs as its own process (libFuzzer owns the process; the request harness also needs
our OpenSSL in FIPS mode) on a copy of its seed corpus, a few thousand inputs, bounded in time. Any
uncaught exception or broken property is a crash: libFuzzer exits non-zero and the test shows the
traceback. tests/fuzz/crashes/<target>/ holds the inputs that crashed a harness before the bug was
fixed (docs/hardening.md lists them); each must now run clean. The long run is documented in
docs/hardening.md.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from fuzz.fuzzlib import CORPUS, CRASHES, HERE, ROOT

RUNS = 4000
MAX_SECONDS = 20
HARNESSES = {  # corpus/crash directory name -> harness script, extra libFuzzer flags
    "request": ("fuzz_request.py", []),
    "config": ("fuzz_config.py", [f"-dict={HERE / 'config.dict'}"]),
    "keyfile": ("fuzz_keyfile.py", []),
    "est": ("fuzz_est_responses.py", []),
    "extract_certs": ("fuzz_extract_certs.py", []),
    "liboqs": ("fuzz_liboqs_differential.py", []),
    "stream": ("fuzz_stream.py", []),
}
NEEDS_FIPS = {"request", "liboqs"}  # run our OpenSSL in FIPS mode, as the service does


def _env(target: str, fips: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSSL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    env["LD_LIBRARY_PATH"] = fips["LD_LIBRARY_PATH"]  # our OpenSSL 3.6.3, as the daemons run with it
    if target in NEEDS_FIPS:
        env.update(fips)
    return env


def _run(target: str, args: list[str], fips: dict[str, str], cwd) -> subprocess.CompletedProcess:
    script, flags = HARNESSES[target]
    return subprocess.run([sys.executable, str(HERE / script), *flags, *args], env=_env(target, fips), cwd=cwd,
                          capture_output=True, text=True, timeout=MAX_SECONDS * 6)


def _tail(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if not ln.startswith("INFO: Instrumenting")]
    return "\n".join(lines[-60:])


@pytest.mark.parametrize("harness", sorted(HARNESSES))
def test_short_fuzz_run(harness, fuzz_fips_env, tmp_path):
    target = harness
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS / target, corpus)
    seeds = len(list(corpus.iterdir()))
    assert seeds >= 5, f"seed corpus for {target} is missing: python tests/fuzz/make_corpus.py"
    r = _run(target, [f"-runs={RUNS}", f"-max_total_time={MAX_SECONDS}", f"-artifact_prefix={tmp_path}/",
                      "-print_final_stats=1", str(corpus)], fuzz_fips_env, tmp_path)
    assert r.returncode == 0, f"fuzz target {target} crashed:\n{_tail(r)}"
    assert "Done " in r.stderr, _tail(r)
    assert not list(tmp_path.glob("crash-*")), _tail(r)


@pytest.mark.parametrize("harness", sorted(p.name for p in CRASHES.iterdir() if p.is_dir()))
def test_past_crashes_stay_fixed(harness, fuzz_fips_env, tmp_path):
    target = harness
    inputs = sorted(str(p) for p in (CRASHES / target).iterdir())
    r = _run(target, inputs, fuzz_fips_env, tmp_path)
    assert r.returncode == 0, f"a past crash of {target} is back:\n{_tail(r)}"
    assert r.stderr.count("Executed ") == len(inputs), _tail(r)
