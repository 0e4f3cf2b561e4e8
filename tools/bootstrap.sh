#!/usr/bin/env bash
# Install everything the build and the tests need, idempotently, and print the
# environment to use. Caches live outside the clone so a fresh clone reuses them.
#
#   source <(tools/bootstrap.sh --env)   # after a run, to get WVDS_* variables
#
# Safe to run any number of times: each step checks before it acts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${WVDS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wvds}
mkdir -p "$cache"
# One bootstrap at a time (parallel builds/tests may call this concurrently).
exec 9>"$cache/.bootstrap.lock"
flock 9

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# --- Debian packages ---------------------------------------------------------
mapfile -t apt_pkgs < <(grep -v '^\s*#' "$here/tools/apt-packages.txt" | awk 'NF{print $1}')
missing=()
for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- binfmt_misc for running aarch64 binaries under qemu-user ---------------
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    log "mounting binfmt_misc"
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || \
        log "warning: cannot mount binfmt_misc (aarch64 tests will call qemu-aarch64-static directly)"
fi
if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    log "registering qemu-aarch64 with binfmt_misc"
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || \
        update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
fi

# --- Python virtual environment with pinned tools ---------------------------
# Debian's own Python, not whatever else is first on PATH: the build must not
# depend on this machine's extras.
req="$here/requirements/dev.txt"
req_hash=$(sha256sum "$req" | cut -c1-16)
venv="$cache/venv-$req_hash"
if [ ! -x "$venv/bin/python" ] || [ ! -e "$venv/.complete" ]; then
    log "creating virtual environment $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip==25.3 >/dev/null 2>&1
    "$venv/bin/python" -m pip install -q --require-virtualenv -r "$req" 2> >(grep -v "is ignored: it is neither" >&2)
    touch "$venv/.complete"
fi

# --- Conan home inside the cache -------------------------------------------
conan_home="$cache/conan2"
if [ ! -e "$conan_home/global.conf" ]; then
    mkdir -p "$conan_home"
    cat > "$conan_home/global.conf" <<CONF
core.download:download_cache=$cache/downloads
core:non_interactive=True
tools.build:jobs=$(nproc)
CONF
fi
# No Conan remote is reachable from the build machines: every recipe is local.
[ -e "$conan_home/remotes.json" ] || echo '{"remotes": []}' > "$conan_home/remotes.json"

cat <<ENV
export WVDS_CACHE='$cache'
export WVDS_VENV='$venv'
export CONAN_HOME='$conan_home'
export CCACHE_DIR='$cache/ccache'
export PATH='$venv/bin':"\$PATH"
ENV
