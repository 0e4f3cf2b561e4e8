#!/bin/bash
# WvdS Crypto Service — installer, run from the unpacked OEM delivery.
#
#   sudo ./install.sh                  install or upgrade (FHS paths, service users, systemd units)
#   ./install.sh --prefix DIR          everything below DIR, for the current user (no users, no systemd)
#   ./install.sh --dry-run             check everything, show what would be done, change nothing
#   sudo ./install.sh --uninstall      remove the programs; keep configuration, keys and state
#   sudo ./install.sh --uninstall --purge    remove configuration, keys, state and the users too
#
# Layout (with --prefix DIR every path is below DIR):
#   /opt/wvds/releases/<version>-<id>/   one directory per installed release (bin/<arch>, lib/<arch>, ...)
#   /opt/wvds/current -> releases/...    the active release, switched atomically (rename of a symlink)
#   /opt/wvds/bin/                       stable links to the active release's programs
#   /etc/opt/wvds/                       crypto_service.json, est_service.json, keystore.secret, ssl/openssl.cnf
#   /var/opt/wvds/                       keystore/ (crypto_service), est/ (est_service)
#
# Every check runs before anything is changed; every change until the switch happens in
# a new release directory. Any failure exits non-zero with a message and leaves the
# previous installation as it was. Existing configuration, keys, certificates and the
# key-store secret are never overwritten: a changed default config is written beside
# the existing one as *.new.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi  # started as 'sh install.sh'
set -euo pipefail
umask 022
export LC_ALL=C

PROG=install.sh
PROGRAMS="wvds_crypto_service wvds_est_service wvdsctl"
SVC_GROUP=wvds
SVC_USER=wvds
EST_USER=wvds-est

say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

PREFIX=""
DRY_RUN=0
MODE=install
PURGE=0
START=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
        --prefix=*) PREFIX=${1#--prefix=}; shift ;;
        --dry-run|-n) DRY_RUN=1; shift ;;
        --uninstall) MODE=uninstall; shift ;;
        --purge) PURGE=1; shift ;;
        --no-start) START=0; shift ;;
        -h|--help) usage 0 ;;
        *) printf '%s: error: unknown option %s\n' "$PROG" "$1" >&2; usage 2 >&2 ;;
    esac
done
[ "$PURGE" = 0 ] || [ "$MODE" = uninstall ] || die "--purge goes with --uninstall"

# --- where we are and what we install ---------------------------------------------------------------
SRC=$(cd "$(dirname "$0")" && pwd -P)
[ -f "$SRC/SHA256SUMS" ] || die "$SRC/SHA256SUMS is missing: run install.sh from the unpacked delivery"
[ -f "$SRC/VERSION" ] || die "$SRC/VERSION is missing: not a complete WvdS delivery"
VERSION=$(head -n 1 "$SRC/VERSION")
case "$VERSION" in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) die "$SRC/VERSION does not hold a version ('$VERSION')" ;;
esac

if [ -n "$PREFIX" ]; then
    case "$PREFIX" in
        /*) ;;
        *) PREFIX="$(pwd -P)/$PREFIX" ;;
    esac
    case "$PREFIX" in
        *[!A-Za-z0-9/._+-]*) die "--prefix may only contain letters, digits and / . _ + - ('$PREFIX')" ;;
    esac
    PREFIX=${PREFIX%/}
    PRIVILEGED=0
else
    [ "$(id -u)" = 0 ] || [ "$DRY_RUN" = 1 ] || die "run as root (or with --prefix DIR for an unprivileged install)"
    PRIVILEGED=1
fi
OPT="$PREFIX/opt/wvds"
ETC="$PREFIX/etc/opt/wvds"
VAR="$PREFIX/var/opt/wvds"
RUN="$PREFIX/run/wvds"
UNITDIR="$PREFIX/etc/systemd/system"

# run CMD...: change something (or, with --dry-run, say what would change)
run() {
    if [ "$DRY_RUN" = 1 ]; then
        say "  would run: $*"
    else
        "$@"
    fi
}

# --- the machine --------------------------------------------------------------------------------------
machine=$(uname -m)
case "$machine" in
    x86_64|amd64) ARCH=x86_64 ;;
    aarch64|arm64|armv8*) ARCH=aarch64 ;;
    *) ARCH="" ;;
esac
shipped=$(sed -n 's|^[0-9a-f]\{64\}  lib/\([^/]*\)/libcrypto\.so\.3$|\1|p' "$SRC/SHA256SUMS" | sort | tr '\n' ' ')
[ -n "$ARCH" ] || die "unsupported architecture '$machine': this delivery is for ${shipped:-no architecture}"
case " $shipped " in
    *" $ARCH "*) ;;
    *) die "this delivery has no files for $ARCH (it has: ${shipped:-none}); use the delivery built for $ARCH" ;;
esac
for tool in sha256sum tar sed awk df du mktemp mv ln install head flock realpath readlink; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing on this machine (Debian: coreutils, tar, sed)"
done

# --- uninstall ------------------------------------------------------------------------------------------
systemd_here() { [ "$PRIVILEGED" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

uninstall() {
    say "Removing WvdS Crypto Service from ${PREFIX:-/}"
    if systemd_here; then
        for unit in wvds-est.service wvds-crypto.service; do
            if [ -f "$UNITDIR/$unit" ]; then
                run systemctl disable --now "$unit" || warn "could not stop $unit"
                run rm -f "$UNITDIR/$unit"
            fi
        done
        run systemctl daemon-reload
    else
        run rm -f "$UNITDIR/wvds-crypto.service" "$UNITDIR/wvds-est.service"
    fi
    [ -e "$OPT" ] && run rm -rf "$OPT"
    if [ "$PURGE" = 1 ]; then
        run rm -rf "$ETC" "$VAR" "$RUN"
        if [ "$PRIVILEGED" = 1 ]; then
            for u in "$EST_USER" "$SVC_USER"; do
                if getent passwd "$u" >/dev/null; then run userdel "$u" || warn "could not remove user $u"; fi
            done
            if getent group "$SVC_GROUP" >/dev/null; then run groupdel "$SVC_GROUP" || warn "could not remove group $SVC_GROUP"; fi
        fi
        say "Removed the programs, configuration, keys, state and service users."
    else
        say "Removed the programs. Kept (remove with --uninstall --purge):"
        [ -e "$ETC" ] && say "  $ETC  configuration, key-store secret"
        [ -e "$VAR" ] && say "  $VAR  keys (keystore/) and EST state (est/)"
    fi
    exit 0
}
[ "$MODE" = uninstall ] && uninstall

# --- verify the delivery ------------------------------------------------------------------------------
say "WvdS Crypto Service $VERSION for $ARCH -> ${PREFIX:-/}"
if grep -v -q '^[0-9a-f]\{64\}  [A-Za-z0-9_][A-Za-z0-9_./+-]*$' "$SRC/SHA256SUMS" \
        || grep -q '\(^\|/\)\.\.\(/\|$\)' "$SRC/SHA256SUMS"; then
    die "$SRC/SHA256SUMS is malformed"
fi
release_id="$VERSION-$(sha256sum "$SRC/SHA256SUMS" | cut -c1-12)"
RELEASE="$OPT/releases/$release_id"
has_daemons=0
[ -f "$SRC/bin/$ARCH/wvds" ] && [ -L "$SRC/bin/$ARCH/wvds_crypto_service" ] && has_daemons=1

# the files of this architecture and the common ones, as listed in SHA256SUMS: what is checked and installed
filelist=$(mktemp "${TMPDIR:-/tmp}/wvds-install.XXXXXX")
sums=$(mktemp "${TMPDIR:-/tmp}/wvds-sums.XXXXXX")
STAGE=""
cleanup() {
    rm -f "$filelist" "$sums"
    if [ -n "$STAGE" ] && [ -d "$STAGE" ]; then rm -rf "$STAGE"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
{
    echo SHA256SUMS
    awk '{print $2}' "$SRC/SHA256SUMS" | grep -v -e '^bin/' -e '^lib/' || true
    awk '{print $2}' "$SRC/SHA256SUMS" | grep -e "^bin/$ARCH/" -e "^lib/$ARCH/"
} | sort -u > "$filelist"
awk 'NR == FNR { want[$0] = 1; next } ($2 in want)' "$filelist" "$SRC/SHA256SUMS" > "$sums"
# Symbolic links must stay inside the release: a link out of it would make what is installed depend on
# a file that no checksum covers and that may change after the check.
links_leaving() {
    (cd "$1" && while IFS= read -r name; do
        [ -L "$name" ] || continue
        target=$(realpath -m --relative-base="$1" "$1/$name")
        case "$target" in /*) printf '%s -> %s\n' "$name" "$(readlink "$name")" ;; esac
    done < "$filelist")
}
verify_tree() {  # $1: the tree; $2: what it is, for the message
    out=$(links_leaving "$1")
    if [ -n "$out" ]; then
        printf '%s\n' "$out" | sed 's/^/  /' >&2
        die "$2: symbolic links leave the release (nothing was installed)"
    fi
    if ! bad=$(cd "$1" && sha256sum --strict --quiet -c "$sums" 2>&1); then
        printf '%s\n' "$bad" | sed 's/^/  /' >&2
        die "checksum mismatch in $2: the delivery is damaged or was modified; unpack the tarball again (nothing was installed)"
    fi
}
verify_tree "$SRC" "the delivery"
say "  checksums: the $(wc -l < "$sums") files for $ARCH match SHA256SUMS"

# --- space ----------------------------------------------------------------------------------------------
existing_parent() {
    d=$1
    while [ ! -d "$d" ]; do d=$(dirname "$d"); done
    printf '%s\n' "$d"
}
# shellcheck disable=SC2046  # one path per line, no blanks (checked above)
need_kb=$(cd "$SRC" && du -kc $(cat "$filelist") 2>/dev/null | tail -n 1 | awk '{print $1}')
need_kb=$((need_kb + 2048))  # fipsmodule.cnf, configs, directories, margin
avail_kb=$(df -Pk "$(existing_parent "$OPT")" | awk 'NR==2 {print $4}')
if [ -d "$RELEASE" ] && [ -f "$RELEASE/.complete" ]; then
    need_kb=2048
fi
[ "$avail_kb" -ge "$need_kb" ] || die "not enough space below $(existing_parent "$OPT"): $need_kb KiB needed, $avail_kb KiB free (nothing was installed)"
say "  space: $need_kb KiB needed, $avail_kb KiB free"

# --- users ----------------------------------------------------------------------------------------------
if [ "$PRIVILEGED" = 1 ]; then
    command -v useradd >/dev/null 2>&1 || die "useradd is missing (Debian package passwd)"
    if ! getent group "$SVC_GROUP" >/dev/null; then
        run groupadd --system "$SVC_GROUP" || die "cannot create group $SVC_GROUP"
    fi
    for u in "$SVC_USER" "$EST_USER"; do
        if ! getent passwd "$u" >/dev/null; then
            run useradd --system --gid "$SVC_GROUP" --home-dir "$VAR" --no-create-home \
                --shell /usr/sbin/nologin --comment "WvdS Crypto Service ($u)" "$u" || die "cannot create user $u"
        fi
    done
    ALLOW_UID=0
    ALLOW_GID=$(getent group "$SVC_GROUP" | cut -d: -f3 || true)
    [ -n "$ALLOW_GID" ] || ALLOW_GID=990  # dry run on a machine without the group
    OWNER="$SVC_USER:$SVC_GROUP"
    EST_OWNER="$EST_USER:$SVC_GROUP"
else
    ALLOW_UID=$(id -u)
    ALLOW_GID=$(id -g)
    OWNER=""
    EST_OWNER=""
fi

# render FILE: a shipped config/unit with this installation's paths and ids
render() {
    sed -e 's|/etc/opt/wvds|@ETC@|g' -e 's|/var/opt/wvds|@VAR@|g' -e 's|/opt/wvds|@OPT@|g' \
        -e 's|/run/wvds|@RUN@|g' \
        -e "s|@ETC@|$ETC|g" -e "s|@VAR@|$VAR|g" -e "s|@OPT@|$OPT|g" -e "s|@RUN@|$RUN|g" \
        -e "s|\"allow_uids\": \[0\]|\"allow_uids\": [$ALLOW_UID]|" \
        -e "s|\"allow_gids\": \[990\]|\"allow_gids\": [$ALLOW_GID]|" "$1"
}

# openssl_cnf RELEASE [wvds]: the OpenSSL configuration for a release directory (or the current link).
# Only the FIPS and base providers (+ the wvds provider with "wvds"), fips=yes as the default property
# query: nothing outside the FIPS provider can be fetched. fipsmodule.cnf is generated on this machine
# by 'openssl fipsinstall' for each installed release.
openssl_cnf() {
    if [ "${2:-}" = wvds ]; then
        printf '%s\n' "# OpenSSL configuration for programs that use keys held by crypto_service (est_service's" \
            "# re-enrollment with the current certificate, the OEM gateway's TLS): the FIPS configuration plus" \
            "# the wvds provider. crypto_service itself uses openssl.cnf, without wvds. Written by install.sh."
    else
        printf '%s\n' "# OpenSSL configuration of the WvdS Crypto Service (FIPS mode). Written by install.sh."
    fi
    cat <<EOF
config_diagnostics = 1
openssl_conf = openssl_init

.include $1/lib/$ARCH/fipsmodule.cnf

[openssl_init]
providers = provider_sect
alg_section = algorithm_sect

[provider_sect]
fips = fips_sect
base = base_sect
EOF
    if [ "${2:-}" = wvds ]; then echo "wvds = wvds_sect"; fi
    cat <<EOF

[base_sect]
activate = 1

[fips_sect]
module = $1/lib/$ARCH/fips.so
EOF
    if [ "${2:-}" = wvds ]; then
        printf '\n[wvds_sect]\nmodule = %s\nactivate = 1\n' "$1/lib/$ARCH/wvds.so"
        printf '\n[algorithm_sect]\ndefault_properties = fips=yes,?provider!=wvds\n'
    else
        printf '\n[algorithm_sect]\ndefault_properties = fips=yes\n'
    fi
}

# fips_check DIR: the FIPS module of the release in DIR is installed for this machine and works.
# (Each process that loads the module runs its self-tests: seconds under emulation, so few processes.)
fips_check() {
    rel=$1
    ossl="$rel/bin/$ARCH/openssl"
    out=$(OPENSSL_CONF=/dev/null "$ossl" fipsinstall -module "$rel/lib/$ARCH/fips.so" \
        -in "$rel/lib/$ARCH/fipsmodule.cnf" -verify 2>&1) || { printf '%s\n' "$out" | sed 's/^/  /' >&2; return 1; }
    case "$out" in *"VERIFY PASSED"*) ;; *) printf '%s\n' "$out" | sed 's/^/  /' >&2; return 1 ;; esac
    cnf=$(mktemp "${TMPDIR:-/tmp}/wvds-fips-check.XXXXXX") || return 1
    openssl_cnf "$rel" > "$cnf"
    out=$(OPENSSL_CONF=$cnf "$ossl" list -providers -digest-algorithms 2>&1) || {
        rm -f "$cnf"; printf '%s\n' "$out" | sed 's/^/  /' >&2; return 1; }
    rm -f "$cnf"
    case "$out" in *"OpenSSL FIPS Provider"*"status: active"*) ;; *)
        printf '%s\n' "$out" | sed -n '1,/^Legacy/p' | sed 's/^/  /' >&2; return 1 ;; esac
    # the digests on offer come from the FIPS provider only: MD5 (not approved) must not be among them
    provided=$(printf '%s\n' "$out" | grep ' @ ' || true)
    case "$provided" in *" @ fips"*) ;; *) echo "  no digest is provided by the FIPS provider" >&2; return 1 ;; esac
    if printf '%s\n' "$provided" | grep -qi 'md5'; then
        echo "  MD5 is available: a non-FIPS provider is active" >&2; return 1
    fi
}

# --- stage the release ---------------------------------------------------------------------------------
# one installer at a time
if [ "$DRY_RUN" = 0 ]; then
    mkdir -p "$OPT/releases" || die "cannot create $OPT/releases"
    exec 9>"$OPT/.install.lock"
    flock -n 9 || die "another install.sh is running on $OPT"
fi
current_target=""
[ -L "$OPT/current" ] && current_target=$(readlink "$OPT/current")
if [ -f "$RELEASE/.complete" ]; then
    say "  release $release_id is already installed; checking it"
    if ! (cd "$RELEASE" && sha256sum --quiet --strict -c "$sums" >/dev/null 2>&1); then
        die "the installed release $RELEASE was modified; remove it (or uninstall) and install again"
    fi
    fips_check "$RELEASE" || die "the FIPS module of $RELEASE does not pass its check"
elif [ "$DRY_RUN" = 1 ]; then
    say "  would install $(wc -l < "$filelist") files into $RELEASE"
    say "  would run: $SRC/bin/$ARCH/openssl fipsinstall -module $RELEASE/lib/$ARCH/fips.so -out $RELEASE/lib/$ARCH/fipsmodule.cnf"
else
    rm -rf "$OPT"/releases/.staging-*  # left by an interrupted run (we hold the lock)
    STAGE=$(mktemp -d "$OPT/releases/.staging-$release_id.XXXXXX") || die "cannot create a staging directory in $OPT/releases"
    if ! (cd "$SRC" && tar -cf - -T "$filelist") | tar -C "$STAGE" -xf - --no-same-owner 2>"$STAGE.err"; then
        err=$(cat "$STAGE.err"); rm -f "$STAGE.err"
        die "copying the files into $STAGE failed (disk full?): $err"
    fi
    rm -f "$STAGE.err"
    # What is installed is the staged copy: check it again (the delivery may have changed since its check).
    verify_tree "$STAGE" "the staged copy $STAGE"
    chmod -R u=rwX,go=rX "$STAGE" || die "cannot set permissions in $STAGE"
    # The FIPS module configuration is made here, on the machine that uses it (never shipped).
    say "  running openssl fipsinstall (FIPS module self-tests) ..."
    if ! out=$(OPENSSL_CONF=/dev/null "$STAGE/bin/$ARCH/openssl" fipsinstall -module "$STAGE/lib/$ARCH/fips.so" \
            -out "$STAGE/lib/$ARCH/fipsmodule.cnf" 2>&1) || ! printf '%s' "$out" | grep -q "INSTALL PASSED"; then
        printf '%s\n' "$out" | sed 's/^/  /' >&2
        die "openssl fipsinstall failed: the FIPS module cannot be used on this machine (nothing was changed)"
    fi
    fips_check "$STAGE" || die "the freshly installed FIPS module does not pass its check (nothing was changed)"
    say "  FIPS module installed and verified (self-tests passed, only FIPS algorithms on offer)"
    date -u +%Y-%m-%dT%H:%M:%SZ > "$STAGE/.complete" || die "cannot write into $STAGE (disk full?)"
    rm -rf "$RELEASE"
    mv "$STAGE" "$RELEASE" || die "cannot move $STAGE to $RELEASE"
    STAGE=""
fi

# --- configuration, secret, state (never overwritten) -------------------------------------------------
# put_config SRC_TEXT DEST MODE OWNER: create DEST if missing; if it differs from the new default, leave it
# and write the default beside it as DEST.new
put_config() {
    text=$1 dest=$2 mode=$3 owner=$4
    if [ -e "$dest" ]; then
        if [ "$(cat "$dest")" != "$text" ]; then
            if [ ! -e "$dest.new" ] || [ "$(cat "$dest.new")" != "$text" ]; then
                run sh -c 'printf "%s\n" "$1" > "$2"' sh "$text" "$dest.new"
            fi
            say "  kept $dest (yours); the new default is in $dest.new"
        fi
        return 0
    fi
    if [ "$DRY_RUN" = 1 ]; then say "  would write $dest"; return 0; fi
    tmp="$dest.tmp.$$"
    printf '%s\n' "$text" > "$tmp" || die "cannot write $dest"
    chmod "$mode" "$tmp"
    [ -z "$owner" ] || chown "$owner" "$tmp"
    mv "$tmp" "$dest" || die "cannot write $dest"
    say "  wrote $dest"
}

make_dir() {  # make_dir DIR MODE OWNER: create if missing; an existing directory is left as it is
    [ -d "$1" ] && return 0
    run install -d -m "$2" "$1" || die "cannot create $1"
    [ -z "$3" ] || run chown "$3" "$1"
}

make_dir "$PREFIX/etc/opt" 0755 ""
make_dir "$ETC" 0750 "${OWNER:+root:$SVC_GROUP}"
make_dir "$ETC/ssl" 0755 ""
make_dir "$ETC/est" 0750 "${EST_OWNER:+root:$SVC_GROUP}"
make_dir "$PREFIX/var/opt" 0755 ""
make_dir "$VAR" 0755 ""
make_dir "$VAR/keystore" 0700 "$OWNER"
make_dir "$VAR/est" 0700 "$EST_OWNER"

put_config "$(openssl_cnf "$OPT/current")" "$ETC/ssl/openssl.cnf" 0644 ""
if [ -f "$SRC/lib/$ARCH/wvds.so" ]; then
    put_config "$(openssl_cnf "$OPT/current" wvds)" "$ETC/ssl/openssl-wvds.cnf" 0644 ""
fi
put_config "$(render "$SRC/config/crypto_service.json")" "$ETC/crypto_service.json" 0640 "${OWNER:+root:$SVC_GROUP}"
put_config "$(render "$SRC/config/est_service.json")" "$ETC/est_service.json" 0640 "${OWNER:+root:$SVC_GROUP}"

# The file key store's device secret: 32 random bytes, made once, never replaced.
if [ -e "$ETC/keystore.secret" ]; then
    say "  kept $ETC/keystore.secret"
elif [ "$DRY_RUN" = 1 ]; then
    say "  would create $ETC/keystore.secret (32 bytes from /dev/urandom, mode 0600)"
else
    tmp="$ETC/.keystore.secret.$$"
    (umask 077 && head -c 32 /dev/urandom > "$tmp") || die "cannot create the key-store secret"
    [ "$(wc -c < "$tmp")" -eq 32 ] || { rm -f "$tmp"; die "could not read 32 bytes from /dev/urandom"; }
    [ -z "$OWNER" ] || chown "$OWNER" "$tmp"
    mv "$tmp" "$ETC/keystore.secret" || die "cannot create $ETC/keystore.secret"
    say "  created $ETC/keystore.secret (0600)"
fi

# --- switch ---------------------------------------------------------------------------------------------
switch_to() {  # switch_to RELEASE_DIR: atomically point current (and bin/) at it
    run ln -sfn "releases/$(basename "$1")" "$OPT/.current.new"
    run mv -T "$OPT/.current.new" "$OPT/current" || die "cannot switch $OPT/current"
    run install -d -m 0755 "$OPT/bin"
    for name in $PROGRAMS openssl wvds-keyref; do
        if [ -e "$1/bin/$ARCH/$name" ] || [ "$DRY_RUN" = 1 ]; then
            run ln -sfn "../current/bin/$ARCH/$name" "$OPT/bin/.$name.new"
            run mv -T "$OPT/bin/.$name.new" "$OPT/bin/$name"
        else
            run rm -f "$OPT/bin/$name"
        fi
    done
}
previous=""
if [ -n "$current_target" ] && [ "$current_target" != "releases/$release_id" ] && [ -d "$OPT/$current_target" ]; then
    previous="$OPT/$current_target"
    run ln -sfn "$current_target" "$OPT/.previous.new"
    run mv -T "$OPT/.previous.new" "$OPT/previous"
fi
switch_to "$RELEASE"
say "  $OPT/current -> releases/$release_id"

# --- services -------------------------------------------------------------------------------------------
hand_start() {
    if [ "$has_daemons" = 0 ]; then
        say ""
        say "This delivery contains no daemon binaries for $ARCH (see README_OEM.md); nothing to start."
        return 0
    fi
    say ""
    say "Start crypto_service by hand:"
    if [ "$PRIVILEGED" = 1 ]; then
        say "  install -d -m 0750 -o $SVC_USER -g $SVC_GROUP $RUN"
        say "  runuser -u $SVC_USER -- env OPENSSL_CONF=$ETC/ssl/openssl.cnf $OPT/bin/wvds_crypto_service --config $ETC/crypto_service.json &"
    else
        say "  mkdir -p $RUN"
        say "  OPENSSL_CONF=$ETC/ssl/openssl.cnf $OPT/bin/wvds_crypto_service --config $ETC/crypto_service.json &"
    fi
    say "then check it:  WVDS_SOCKET=$RUN/crypto.sock $OPT/bin/wvdsctl status"
}

if [ -n "$PREFIX" ]; then
    run install -d -m 0755 "$UNITDIR"
    for unit in wvds-crypto.service wvds-est.service; do
        put_config "$(render "$SRC/systemd/$unit")" "$UNITDIR/$unit" 0644 ""
    done
    run install -d -m 0750 "$RUN"
    hand_start
elif systemd_here && [ "$has_daemons" = 1 ]; then
    for unit in wvds-crypto.service wvds-est.service; do
        if [ "$DRY_RUN" = 1 ]; then say "  would write $UNITDIR/$unit"; continue; fi
        if ! { render "$SRC/systemd/$unit" > "$UNITDIR/.$unit.new" && mv "$UNITDIR/.$unit.new" "$UNITDIR/$unit"; }; then
            die "cannot write $UNITDIR/$unit"
        fi
    done
    run systemctl daemon-reload
    run systemctl enable --quiet wvds-crypto.service || warn "could not enable wvds-crypto.service"
    if [ "$START" = 1 ] && [ "$DRY_RUN" = 0 ]; then
        if ! systemctl restart wvds-crypto.service; then
            if [ -n "$previous" ] && [ -d "$previous" ]; then
                warn "wvds-crypto.service does not start with release $release_id; going back to $(basename "$previous")"
                switch_to "$previous"
                systemctl restart wvds-crypto.service || true
            fi
            die "wvds-crypto.service failed to start: see 'journalctl -u wvds-crypto.service'"
        fi
        say "  wvds-crypto.service enabled and (re)started"
        if systemctl is-active --quiet wvds-est.service; then
            systemctl restart wvds-est.service || warn "wvds-est.service failed to restart"
        fi
    fi
    say "  wvds-est.service installed, not enabled: edit $ETC/est_service.json, then 'systemctl enable --now wvds-est'"
else
    say "  no systemd here: units not installed (they are in $OPT/current/systemd/ as templates)"
    make_dir "$RUN" 0750 "$OWNER"
    hand_start
fi

# --- keep the current and the previous release --------------------------------------------------------
if [ "$DRY_RUN" = 0 ]; then
    keep_prev=""
    [ -L "$OPT/previous" ] && keep_prev=$(basename "$(readlink "$OPT/previous")")
    for d in "$OPT"/releases/*/; do
        [ -d "$d" ] || continue
        name=$(basename "$d")
        if [ "$name" != "$release_id" ] && [ "$name" != "$keep_prev" ]; then
            rm -rf "$d"
        fi
    done
fi

say ""
if [ "$DRY_RUN" = 1 ]; then
    say "Dry run: nothing was changed."
else
    say "Installed WvdS Crypto Service $VERSION ($ARCH) in $OPT/current. Documentation: $OPT/current/README_OEM.md"
fi
