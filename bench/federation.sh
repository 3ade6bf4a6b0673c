#!/usr/bin/env bash
# bench/federation: how long a bundle change in one trust domain takes to be in use in another.
# Two real `lanyard server`s on loopback: b.test serves its bundle on an https_spiffe bundle
# endpoint with refresh hint HINT; a.test federates with it, and a workload of a.test keeps its
# identities as files with `lanyard helper` (Workload API stream). Each round rotates b.test's
# CA (the next CA joins b.test's bundle at once) and measures the time until that CA is in the
# helper's federated/b.test.pem, i.e. delivered by a.test's Workload API. Printed next to the
# target (a quarter of the refresh hint plus one second) and to anchors measured in the same
# run: one raw fetch of the endpoint with curl, and the polling interval's own expectation
# (a change lands on average half a polling interval, hint/8, before the next fetch).
# Usage: bench/federation.sh [HINT_SECONDS] [ROUNDS]   (defaults 8 and 4; BUILD=build)
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
LANYARD=${LANYARD:-$BUILD/lanyard}
HINT=${1:-8}
ROUNDS=${2:-4}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lanyard-bench-fed.XXXXXX")
chmod 755 "$tmp"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
die() { echo "bench/federation: $*" >&2; exit 1; }
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral range: no outgoing socket holds it
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}
now_ms() { date +%s%3N; }
fps() { openssl crl2pkcs7 -nocrl -certfile "$1" 2>/dev/null | openssl pkcs7 -print_certs 2>/dev/null |
        grep -c 'BEGIN CERTIFICATE'; }

DA="$tmp/a"; DB="$tmp/b"; PB=$(free_port)
"$LANYARD" --data "$DA" ca init --trust-domain a.test >/dev/null || die "ca init a.test"
"$LANYARD" --data "$DB" ca init --trust-domain b.test >/dev/null || die "ca init b.test"
"$LANYARD" --data "$DB" bundle show >"$tmp/b.json"
"$LANYARD" --data "$DA" federation add --trust-domain b.test --url "https://127.0.0.1:$PB/" \
    --profile https_spiffe --endpoint-id spiffe://b.test/lanyard/server --bootstrap-bundle "$tmp/b.json" \
    >/dev/null || die "federation add"
"$LANYARD" --data "$DA" entry create --id spiffe://a.test/bench --selector "unix:uid:$(id -u)" \
    --federates-with b.test >/dev/null || die "entry create"
"$LANYARD" --data "$DB" server --workload-socket "$tmp/b.sock" --health-listen "" \
    --bundle-endpoint "127.0.0.1:$PB" --bundle-refresh-hint "${HINT}s" --log-level warn 2>"$tmp/b.log" &
PIDS+=($!)
"$LANYARD" --data "$DA" server --workload-socket "$tmp/a.sock" --health-listen "" --log-level warn \
    2>"$tmp/a.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$tmp/a.sock" ] && ss -Htln "sport = :$PB" | grep -q . && break; sleep 0.1; done
"$LANYARD" helper --socket "$tmp/a.sock" --dir "$tmp/files" --log-level warn 2>"$tmp/helper.log" &
PIDS+=($!)
F="$tmp/files/federated/b.test.pem"
for _ in $(seq 100); do [ -s "$F" ] && break; sleep 0.1; done
[ -s "$F" ] || die "the helper got no federated bundle: $(tail -3 "$tmp/helper.log" "$tmp/a.log")"

# Anchor: one fetch of the endpoint (TLS + HTTP), as an outside client sees it.
"$LANYARD" --data "$DB" bundle show --format pem >"$tmp/b-ca.pem"
fetch_ms=$(curl -s -o /dev/null -k -w '%{time_total}' "https://127.0.0.1:$PB/" | awk '{printf "%.1f", $1 * 1000}')

delays=()
for r in $(seq "$ROUNDS"); do
    before=$(fps "$F")
    t0=$(now_ms)
    "$LANYARD" --data "$DB" ca rotate >/dev/null 2>"$tmp/rotate.err" || die "ca rotate: $(cat "$tmp/rotate.err")"
    t1=
    for _ in $(seq 4000); do
        if [ "$(fps "$F")" -gt "$before" ]; then t1=$(now_ms); break; fi
        sleep 0.005
    done
    [ -n "$t1" ] || die "round $r: the new CA never reached a.test's workload"
    delays+=($((t1 - t0)))
    # The next round needs the rotation finished (the next CA signing): one refresh hint. A
    # random part of a polling interval more, so the rounds do not all fall at one phase of
    # a.test's fetch schedule.
    [ "$r" -lt "$ROUNDS" ] && sleep "$(awk -v h="$HINT" -v r="$RANDOM" 'BEGIN { printf "%.3f", h + 2 + (r % 1000) / 1000 * h / 4 }')"
done
sorted=$(printf '%s\n' "${delays[@]}" | sort -n)
median=$(printf '%s\n' "$sorted" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
max=$(printf '%s\n' "$sorted" | tail -1)
target=$((HINT * 1000 / 4 + 1000))
echo "bundle change in b.test -> in use by a.test's workloads (refresh hint ${HINT}s, https_spiffe, $ROUNDS changes):"
echo "  each change: ${delays[*]} ms"
echo "  median ${median} ms, max ${max} ms (target <= hint/4 + 1 s = ${target} ms)"
echo "  anchor, one raw fetch of the bundle endpoint (curl, TLS + HTTP): ${fetch_ms} ms"
echo "  anchor, expected wait for a quarter-hint poll alone: mean $((HINT * 1000 / 8)) ms, worst $((HINT * 1000 / 4)) ms"
[ "$max" -le "$target" ] && echo "federation delay: within target" || echo "federation delay: OVER target"
