#!/usr/bin/env bash
# bench/gateway: what `lanyard gateway` costs, each figure next to an anchor measured in the
# same run on the same P-256 certificates (the gateway's own SVID, fetched from the Workload
# API, also serves nginx):
#   1. server CPU per full TLS 1.3 mutual-TLS handshake: the gateway vs nginx 1.22 (OpenSSL 3)
#      with ssl_verify_client on, both driven by `openssl s_time -new` with a client SVID and
#      read from /proc (utime+stime of every process of the server) before and after;
#   2. latency the gateway adds per request on a kept-alive connection (bench/gwlat: direct
#      vs through the gateway, mTLS + token + consent + audit on every request);
#   3. policy decisions per second from the consent store with 100,000 records (bench/policy,
#      which also runs the gateway's per-request path: store freshness check + decision).
# Usage: bench/gateway.sh [SECONDS]   (BUILD=build; the s_time run length, default 5)
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
LANYARD=${LANYARD:-$BUILD/lanyard}
SECS=${1:-5}
TD=bench.test
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lanyard-bench-gw.XXXXXX")
chmod 755 "$tmp"
D="$tmp/data"
SOCK="$tmp/workload.sock"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$tmp/nginx/nginx.pid" ] && kill "$(cat "$tmp/nginx/nginx.pid")" 2>/dev/null
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
die() { echo "bench/gateway: $*" >&2; exit 1; }
L() { "$LANYARD" --data "$D" "$@"; }
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral range: no outgoing socket holds it
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}
wait_for() { local i; for i in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# CPU seconds (utime+stime, all threads) of the given processes.
cpu_of() {
    local tck total=0 p f
    tck=$(getconf CLK_TCK)
    for p in "$@"; do
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        # after the command name: state is field 1, utime field 12, stime field 13
        set -- $f
        total=$((total + ${12} + ${13}))
    done
    echo "$total $tck"
}
us_per() { # CPU_BEFORE CPU_AFTER COUNT
    awk -v a="$1" -v b="$2" -v n="$3" -v t="$4" 'BEGIN { if (n > 0) printf "%.0f", (b - a) / t / n * 1e6; else print "nan" }'
}

command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || die "nginx is missing (make deps installs it)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ---- a trust domain, the gateway's identity, a client, consent and a token -------------------
"$LANYARD" --data "$D" server --trust-domain "$TD" --workload-socket "$SOCK" --health-listen "" \
    2>"$tmp/server.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$SOCK" ] && [ -S "$D/admin.sock" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || die "lanyard server did not start: $(tail -3 "$tmp/server.log")"
L entry create --id "spiffe://$TD/gateway" --selector "unix:uid:$(id -u)" --dns localhost >/dev/null ||
    die "entry create failed"
L svid mint --id "spiffe://$TD/client" --out-cert "$tmp/client.pem" --out-key "$tmp/client.key" >/dev/null ||
    die "svid mint failed"
L bundle show --format pem >"$tmp/bundle.pem"
L consent grant --user bench --client "spiffe://$TD/client" --scope tools:echo >/dev/null || die "consent grant failed"
L token mint --user bench --client "spiffe://$TD/client" --audience mcp://bench --ttl 1h \
    --bind-cert "$tmp/client.pem" >"$tmp/token" || die "token mint failed"
# The same SVID the gateway holds, as files for nginx (the server caches one SVID per entry).
"$LANYARD" helper --socket "$SOCK" --dir "$tmp/gwfiles" --once >/dev/null 2>&1 || die "helper --once failed"

GP=$(free_port); UP=$(free_port); NP=$(free_port)
# Started directly, not through L(): $! must be the gateway itself, whose CPU is read below.
"$LANYARD" --data "$D" gateway --listen "127.0.0.1:$GP" --upstream "http://127.0.0.1:$UP" --audience mcp://bench \
    --socket "$SOCK" --log-level warn 2>"$tmp/gw.log" &
GW=$!; PIDS+=($GW)
for _ in $(seq 100); do ss -Htln "sport = :$GP" | grep -q . && break; sleep 0.1; done
ss -Htln "sport = :$GP" | grep -q . || die "the gateway did not start: $(tail -3 "$tmp/gw.log")"
cmp -s <(openssl x509 -in "$tmp/gwfiles/svid.pem" -noout -fingerprint -sha256) \
    <(echo | openssl s_client -connect "127.0.0.1:$GP" -cert "$tmp/client.pem" -key "$tmp/client.key" 2>/dev/null |
      openssl x509 -noout -fingerprint -sha256) || die "nginx would not serve the gateway's certificate"
keyalg=$(openssl x509 -in "$tmp/gwfiles/svid.pem" -noout -text | sed -n 's/^ *Public Key Algorithm: //p' | head -1)

mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body; proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fcgi; uwsgi_temp_path $tmp/nginx/uwsgi; scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$NP ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $tmp/gwfiles/svid.pem;
        ssl_certificate_key $tmp/gwfiles/svid.key;
        ssl_client_certificate $tmp/bundle.pem;
        ssl_verify_client on;
        ssl_session_tickets off;
        ssl_session_cache off;
        location / { return 200 "ok\n"; }
    }
}
EOF
"$NGINX" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx/" 2>"$tmp/nginx/start.err" || die "nginx: $(cat "$tmp/nginx/start.err")"
for _ in $(seq 100); do [ -s "$tmp/nginx/nginx.pid" ] && ss -Htln "sport = :$NP" | grep -q . && break; sleep 0.1; done
# The master and its worker (whose command line no longer names the config file).
NGINX_MASTER=$(cat "$tmp/nginx/nginx.pid")
NGINX_PIDS="$NGINX_MASTER $(pgrep -P "$NGINX_MASTER" | tr '\n' ' ')"

# ---- 1. handshakes ------------------------------------------------------------------------------
s_time() { # PORT -> connections
    openssl s_time -connect "127.0.0.1:$1" -new -cert "$tmp/client.pem" -key "$tmp/client.key" \
        -CAfile "$tmp/bundle.pem" -time "$SECS" 2>/dev/null |
        sed -n 's/^\([0-9]*\) connections in .* real seconds.*/\1/p' | head -1
}
hs_round() { # LABEL PORT PIDS...
    local label=$1 port=$2; shift 2
    local a b n tck
    read -r a tck <<<"$(cpu_of "$@")"
    n=$(s_time "$port")
    read -r b tck <<<"$(cpu_of "$@")"
    echo "$label $(us_per "$a" "$b" "${n:-0}" "$tck") ${n:-0}"
}
# Two rounds each, interleaved, so outside load hits both alike; the lower figure counts.
r1=$(hs_round gw "$GP" "$GW"); r2=$(hs_round nginx "$NP" $NGINX_PIDS)
r3=$(hs_round gw "$GP" "$GW"); r4=$(hs_round nginx "$NP" $NGINX_PIDS)
best() { printf '%s\n%s\n' "$1" "$2" | awk '$3 > 0' | sort -k2 -n | head -1; }
g=$(best "$r1" "$r3"); n=$(best "$r2" "$r4")
gus=$(echo "$g" | awk '{print $2}'); nus=$(echo "$n" | awk '{print $2}')
[ -n "$gus" ] && [ -n "$nus" ] || die "handshake rounds failed: $r1 / $r2 / $r3 / $r4 ($(tail -3 "$tmp/gw.log"))"
echo "mTLS handshake (TLS 1.3, $keyalg certificates, client openssl s_time -new, ${SECS}s per round):"
echo "  lanyard gateway: $gus us server CPU per full handshake ($(echo "$g" | awk '{print $3}') handshakes)"
echo "  anchor, nginx ssl_verify_client on: $nus us server CPU per full handshake ($(echo "$n" | awk '{print $3}') handshakes)"
awk -v a="$gus" -v b="$nus" 'BEGIN { printf "handshake ratio (gateway / nginx): %.2f (target <= 0.50)\n", a / b }'

# ---- 2. added latency per request ---------------------------------------------------------------
echo "per-request latency on a kept-alive connection (tools/call, bearer token, consent, audit):"
"$BUILD/bench/gwlat" --upstream-port "$UP" --gateway "127.0.0.1:$GP" --server-id "spiffe://$TD/gateway" \
    --cert "$tmp/client.pem" --key "$tmp/client.key" --bundle "$tmp/bundle.pem" --token "$tmp/token" \
    --n 20000 | sed 's/^/  /' || die "gwlat failed: $(tail -3 "$tmp/gw.log")"

# ---- 3. policy decisions ------------------------------------------------------------------------
echo "policy decisions from the consent store (100,000 records, one core):"
"$BUILD/bench/policy" | sed 's/^/  /'
