"""The suite on a machine where the delivery is installed and its service is running.

README_OEM.md invites `sudo ./install.sh` on an x86_64 PC. After it, /etc/opt/wvds/ssl/openssl.cnf -
the OPENSSLDIR compiled into our OpenSSL - is a FIPS-only configuration with this machine's module
paths, /opt/wvds/bin holds the delivered `openssl` and programs, and a crypto_service owns
/run/wvds/crypto.sock. None of it may change what the tests see: every program they run is given
its OpenSSL configuration, module directory and tool paths (tests/conftest.py, support/targets.py).

This test makes such a machine without touching this one: a private mount namespace (unshare)
whose /etc, /opt, /var/opt and /run are overlays on temporary directories. Inside it install.sh
runs for real (users, FHS paths, fipsinstall), the installed crypto_service is started the way its
systemd unit starts it, /opt/wvds/bin is put first on PATH, and a representative slice of the suite
runs in a second pytest: both architectures' OpenSSL (fipsinstall, FIPS self-tests), the service
from source and its C client, the wvds provider over TLS, extract_certs, EST enrollment, and the
native programs of both architectures.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from support.targets import ROOT

NESTED = "WVDS_TEST_INSIDE_INSTALLED_MACHINE"

# One module or a few tests of each kind that reads OpenSSL's configuration or looks for a tool.
SLICE = [
    "tests/openssl/test_openssl_build.py",
    "tests/packaging/test_extract_certs.py",
    "tests/service/test_startup.py",
    "tests/c/test_example.py",
    "tests/provider/test_tls.py",
    "tests/est/test_flows.py",  # tests/service/test_startup.py also runs the binaries (its `binaries` marker)
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get(NESTED) == "1", reason="already inside the installed machine"),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                       reason="needs root for a private mount namespace"),
]

SCRIPT = r"""
set -euo pipefail
W=$1; DELIVERY=$2; shift 2
# The installed machine: this machine's /etc, /opt, /var/opt and /run with every change in $W
# (overlays; where the kernel has no overlayfs, copies bound over them).
for d in /etc /opt /var/opt /run; do
    n=$(echo "$d" | tr / _)
    mkdir -p "$W/ovl/$n/up" "$W/ovl/$n/work" "$d"
    if ! mount -t overlay overlay -o "lowerdir=$d,upperdir=$W/ovl/$n/up,workdir=$W/ovl/$n/work" "$d" 2>/dev/null; then
        cp -a "$d/." "$W/ovl/$n/up/" 2>/dev/null || true
        mount --bind "$W/ovl/$n/up" "$d"
    fi
done
echo "== install"
"$DELIVERY/install.sh"
test -e /etc/opt/wvds/ssl/openssl.cnf && test -x /opt/wvds/bin/openssl
echo "== service (as its systemd unit starts it)"
unit=/etc/systemd/system/wvds-crypto.service  # installed with systemd; else the template beside the release
test -e "$unit" || unit=/opt/wvds/current/systemd/wvds-crypto.service
conf=$(sed -n 's/^Environment=OPENSSL_CONF=//p' "$unit")
start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
install -d -o "$user" -g wvds -m 0750 /run/wvds
runuser -u "$user" -- env -i PATH=/usr/bin:/bin OPENSSL_CONF="$conf" $start > "$W/service.log" 2>&1 &
svc=$!
trap 'kill $svc 2>/dev/null || true; wait $svc 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do grep -q "crypto_service ready" "$W/service.log" && break; sleep 0.2; done
grep -q "crypto_service ready" "$W/service.log" || { cat "$W/service.log"; exit 1; }
/opt/wvds/bin/wvdsctl --socket /run/wvds/crypto.sock status
echo "== the suite's slice, with the installation present"
cd "$ROOT"
base=$(mktemp -d /tmp/wvds-im.XXXXXX)  # short: tests put Unix sockets below it (108-byte limit)
env -u OPENSSL_CONF -u OPENSSL_MODULES -u WVDS_OPENSSL PATH="/opt/wvds/bin:$PATH" \
    WVDS_TEST_INSIDE_INSTALLED_MACHINE=1 "$PYTHON" -m pytest -p no:cacheprovider -q \
    --basetemp="$base" "$@" || { rm -rf "$base"; exit 1; }
rm -rf "$base"
kill -0 $svc || { echo "the installed service died during the run"; cat "$W/service.log"; exit 1; }
echo "== installed service still running"
"""


def test_suite_slice_passes_beside_an_installed_delivery(tmp_path, unpacked):
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"no private mount namespace here: {probe.stderr.strip()}")
    env = dict(os.environ, ROOT=str(ROOT), PYTHON=sys.executable)
    work = tmp_path / "machine"
    work.mkdir()
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", SCRIPT, "installed",
                        str(work), str(unpacked), *SLICE],
                       env=env, capture_output=True, text=True, timeout=1800)
    out = r.stdout + r.stderr
    assert r.returncode == 0, textwrap.shorten(out[:2000], 2000) + "\n...\n" + out[-8000:]
    assert "== installed service still running" in out
    summary = [line for line in out.splitlines() if " passed" in line]
    assert summary and " failed" not in summary[-1] and " error" not in summary[-1], out[-8000:]
