#!/bin/bash
# The smoke test that runs inside the aarch64 QEMU guest (started by wvds-smoke-boot from the
# payload disk; qemu/run_smoke.py made the payload and reads the results).
#
# Each step reports one JSON line on the results port (argument 1):
#   {"step": NAME, "ok": true|false, "seconds": S, "detail": "last lines of its output"}
# and a final {"done": true, "failed": N, "uptime": S}. The guest powers off afterwards
# (wvds-smoke.service). Steps after a failed one still run where they can, so one run
# shows everything that is wrong.
# shellcheck disable=SC2317  # the step functions are called through step()
set -u
RESULTS=${1:-/dev/stdout}
P=/root/payload
MODEL=$(tr -d '\0' < /proc/device-tree/model)  # where it runs: QEMU's virt machine, or the VM under uvmm (docs/l4re.md)
ETC=/etc/opt/wvds
BIN=/opt/wvds/bin
CTL=(env WVDS_SOCKET=/run/wvds/crypto.sock "$BIN/wvdsctl" --timeout 60000)
failed=0

json_string() {  # stdin -> a JSON string body (the last 2000 bytes)
    tail -c 2000 | tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/ /g' \
        | awk 'BEGIN { ORS = "" } { if (NR > 1) print "\\n"; print }'
}

# step NAME COMMAND...: run it, time it, report it
step() {
    local name=$1 t0 t1 out rc
    shift
    t0=$(date +%s.%N)
    out=$("$@" 2>&1)
    rc=$?
    t1=$(date +%s.%N)
    [ $rc -eq 0 ] || failed=$((failed + 1))
    printf '{"step": "%s", "ok": %s, "seconds": %.2f, "detail": "%s"}\n' "$name" \
        "$([ $rc -eq 0 ] && echo true || echo false)" "$(echo "$t1 - $t0" | awk '{print $1 - $3}')" \
        "$(printf '%s' "$out" | json_string)" > "$RESULTS"
    printf '== %s: rc=%s\n%s\n' "$name" "$rc" "$out" >&2  # the console log, attached on failure
    return $rc
}

wait_for() {  # wait_for SECONDS COMMAND...: until it succeeds (wall clock), then once more with output
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || { "$@"; return 1; }
        sleep 1
    done
}

booted() {
    echo "kernel $(uname -r) $(uname -m); machine '$MODEL';" \
        "clock $(date -u +%FT%TZ); $(nproc) CPUs; up $(cut -d' ' -f1 /proc/uptime) s when the smoke test started"
    [ "$(uname -m)" = aarch64 ]
}

install_delivery() {
    mkdir -p /root/delivery && tar -xzf "$P"/wvds-crypto-svc-*-oem-delivery.tar.gz -C /root/delivery || return 1
    cd /root/delivery/wvds-crypto-svc-*-oem-delivery && ./install.sh
}

fips_provider() {
    # the delivered openssl with the configuration install.sh wrote (fipsinstall ran there)
    OPENSSL_CONF=$ETC/ssl/openssl.cnf "$BIN/openssl" list -providers | tee /dev/stderr | grep -A3 '^  fips' \
        | grep -q 'status: active' || return 1
    # what the daemons promise: one libcrypto, ours; FIPS active with fips=yes; MD5 refused
    OPENSSL_CONF=$ETC/ssl/openssl.cnf /opt/wvds/current/bin/aarch64/wvds --self-check
}

crypto_service_up() {
    systemctl is-enabled wvds-crypto.service && systemctl is-active wvds-crypto.service \
        && wait_for 180 "${CTL[@]}" status
}

status_healthy() {
    local s
    s=$("${CTL[@]}" --json status) || return 1
    echo "$s"
    echo "$s" | grep -q '"self_test_passed": true' && echo "$s" | grep -q '"version": "'
}

gateway() {
    id gw >/dev/null 2>&1 || useradd --create-home --groups wvds gw || return 1
    install -m 0755 "$P/oem_gateway" /home/gw/oem_gateway
    runuser -u gw -- /home/gw/oem_gateway | tee /dev/stderr | grep -q 'oem_gateway: all steps succeeded'
}

est_enroll() {
    install -d -m 0750 -g wvds "$ETC/est"
    install -m 0644 "$P/est/trust-anchor.pem" "$ETC/est/trust-anchor.pem"
    install -m 0600 -o wvds-est -g wvds "$P/est/bootstrap.pw" "$ETC/est/bootstrap.pw"  # as the KB says
    install -m 0640 -g wvds "$P/est/est_service.json" "$ETC/est_service.json"
    systemctl enable --now wvds-est.service || return 1
    wait_for 180 est_valid || { journalctl -u wvds-est.service --no-pager | tail -40; return 1; }
    "$BIN/wvds_est_service" --config "$ETC/est_service.json" status
}

est_valid() {
    "$BIN/wvds_est_service" --config "$ETC/est_service.json" status | grep -q '\[valid\]'
}

restart_keeps_keys() {
    local key before after
    key=$("${CTL[@]}" --json generate aes-256-gcm --label smoke | sed -n 's/.*"key_id": *"\{0,1\}\([0-9a-fx]*\).*/\1/p')
    [ -n "$key" ] || return 1
    printf 'reading 21.5C' > /root/plain
    "${CTL[@]}" --out /root/sealed encrypt "$key" --in /root/plain || return 1
    before=$("${CTL[@]}" list) || return 1
    systemctl restart wvds-crypto.service || return 1
    wait_for 180 "${CTL[@]}" status || return 1
    after=$("${CTL[@]}" list) || return 1
    echo "keys before: $before"; echo "keys after:  $after"
    [ "$before" = "$after" ] || return 1
    "${CTL[@]}" --out /root/back decrypt "$key" --in /root/sealed && cmp /root/plain /root/back || return 1
    # the EST device key is held by crypto_service too: the certificate still has its key
    est_valid
}

l4re_channel() {  # under L4Re only: the native gateway task talks to crypto_service over its port (docs/l4re.md)
    local port=/dev/virtio-ports/wvds.gateway rel=/opt/wvds/current uid gid denied
    wait_for 30 test -e "$port" || { ls -l /dev/virtio-ports/; return 1; }
    # as the KB says: the udev rule (the port is the service user's alone), the drop-in, the config entry
    install -m 0644 "$rel/udev/60-wvds-channel.rules" /etc/udev/rules.d/ || return 1
    udevadm control --reload && udevadm trigger --subsystem-match=virtio-ports && udevadm settle
    ls -lL "$port"
    [ "$(stat -L -c %U:%a "$port")" = wvds:600 ] || return 1
    # nobody else in the VM may speak for the gateway (and the port is free now: the refusal is the mode's)
    if denied=$(runuser -u gw -- sh -c "exec 3<>$port" 2>&1); then
        echo "user gw could open the gateway's port"; return 1
    fi
    echo "user gw: $denied"
    case $denied in *"Permission denied"*) ;; *) return 1 ;; esac
    install -D -m 0644 "$rel/systemd/wvds-crypto-channel.conf" /etc/systemd/system/wvds-crypto.service.d/channel.conf
    uid=$(id -u gw) gid=$(getent group wvds | cut -d: -f3)  # the identity the L4Re configuration vouches for
    local entry="{\"name\": \"l4re-gateway\", \"path\": \"$port\", \"uid\": $uid, \"gid\": $gid}"
    sed -i "0,/{/s|{|{\n  \"channels\": [$entry],|" "$ETC/crypto_service.json"
    systemctl daemon-reload && systemctl restart wvds-crypto.service || return 1
    # the gateway runs its sequence (oem_gateway's steps, then timed round trips) once the service opens
    # the port: GATEWAY_REQUESTS requests; its results are on the L4Re console (the test reads them there)
    wait_for 600 channel_served
    "${CTL[@]}" status | grep '^channels:'
}

GATEWAY_REQUESTS=168  # l4re/gateway/main.cc: 13 steps, 3 x 50 timed round trips, 5 keys deleted
channel_served() {
    local line
    line=$("${CTL[@]}" status | grep '^channels:') || return 1
    echo "$line" | grep -q "\"requests\": ${GATEWAY_REQUESTS}[,}]" && echo "$line" | grep -q '"framing_errors": 0[,}]'
}

step boot booted
step install install_delivery
step fips_provider fips_provider
step crypto_service crypto_service_up
step wvdsctl_status status_healthy
step gateway gateway
step est_enroll est_enroll
step restart_keeps_keys restart_keeps_keys
[ "$MODEL" != "WvdS L4Re VM" ] || step l4re_channel l4re_channel
printf '{"done": true, "failed": %d, "uptime": %s}\n' "$failed" "$(cut -d' ' -f1 /proc/uptime)" > "$RESULTS"
exit 0
