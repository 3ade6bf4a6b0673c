#!/usr/bin/env bash
# lanyard's gRPC transport (broker/grpc, broker/loop, broker/grpc_client) against real clients:
# the test-only Workload API stub server (tests/helpers/wapi_stub_server.c) is driven by
# @grpc/grpc-js with the standard workloadapi.proto (tests/interop/wapi_client.mjs), by raw
# HTTP/2 and raw bytes for the malformed cases, and by our own C client (wapi_c_client.c).
. "$LANYARD_ROOT/tests/lib.sh"
IOP=$LANYARD_ROOT/tests/interop
STUB=$BUILD/tests/helpers/wapi_stub_server
CCLI=$BUILD/tests/helpers/wapi_c_client
STUB_PIDS=()

kill_stubs() { local p; for p in "${STUB_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; return 0; }
trap 'rc=$?; kill_stubs; (exit $rc); t_cleanup' EXIT

# start_stub NAME ARGS...: starts a stub on $T_TMP/NAME.sock; sets STUB_PID and SOCK.
start_stub() {
    local name=$1 i; shift
    SOCK=$T_TMP/$name.sock
    "$STUB" --socket "$SOCK" "$@" >"$T_TMP/$name.out" 2>"$T_TMP/$name.err" &
    STUB_PID=$!
    STUB_PIDS+=("$STUB_PID")
    for i in $(seq 1 100); do
        grep -q '^ready$' "$T_TMP/$name.out" 2>/dev/null && return 0
        kill -0 "$STUB_PID" 2>/dev/null || break
        sleep 0.05
    done
    return 1
}
# stop_stub NAME: SIGTERM, then the stub must exit 0 (under ASan: no leak, no error).
stop_stub() {
    local name=$1 rc
    kill -TERM "$STUB_PID"
    wait "$STUB_PID"; rc=$?
    if [ "$rc" -eq 0 ]; then ok "$name: stub stops cleanly on SIGTERM"
    else not_ok "$name: stub stops cleanly on SIGTERM" "exit $rc" "$(tail -20 "$T_TMP/$name.err")"; fi
}
# js NAME CASE: one grpc-js / raw HTTP/2 case of wapi_client.mjs against $SOCK
js() {
    local out
    if out=$(timeout 60 node "$IOP/wapi_client.mjs" "$SOCK" "$2" 2>&1); then ok "$1 (${out#PASS })"
    else not_ok "$1" "$(printf '%s' "$out" | tail -5)"; fi
}
# cc NAME MODE REGEX: the C client's result line must match REGEX
cc() {
    local out rc
    out=$(timeout 30 "$CCLI" "$SOCK" "$2" 2>&1); rc=$?
    if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -qE -- "$3"; then ok "$1 ($out)"
    else not_ok "$1" "exit $rc, got: $out" "wanted: $3"; fi
}

if [ -f "$IOP/node_modules/@grpc/grpc-js/package.json" ] && [ -f "$IOP/node_modules/@grpc/proto-loader/package.json" ]; then
    ok "@grpc/grpc-js and @grpc/proto-loader are installed"
else not_ok "@grpc/grpc-js and @grpc/proto-loader are installed" "run: (cd tests/interop && npm ci)"; fi

# ---- main stub: the Workload API served normally --------------------------------------------
if start_stub main; then ok "stub server listens on a Unix socket"
else not_ok "stub server listens on a Unix socket" "$(cat "$T_TMP/main.err")"; exit 1; fi
mode=$(stat -c %a "$SOCK")
if [ "$mode" = 666 ]; then ok "socket mode set (0$mode)"; else not_ok "socket mode set" "mode $mode"; fi

js "grpc-js: FetchX509SVID streams 2 messages ~1 s apart, fields decode, cancel" stream
sleep 0.2
if grep -q 'closed /SpiffeWorkloadAPI/FetchX509SVID after 2 messages' "$T_TMP/main.err"; then
    ok "server learns of the client's cancel (close callback)"
else not_ok "server learns of the client's cancel (close callback)" "$(tail -5 "$T_TMP/main.err")"; fi
js "grpc-js: the stream stays open after its messages" stream_open
js "grpc-js: FetchX509Bundles / FetchJWTBundles" bundles
js "grpc-js: FetchJWTSVID unary" jwt
js "grpc-js: empty audience -> INVALID_ARGUMENT" jwt_no_audience
js "grpc-js: missing workload.spiffe.io -> INVALID_ARGUMENT" no_header
js "grpc-js: unknown method -> UNIMPLEMENTED" unknown
js "grpc-js: 100 concurrent unary + 50 streaming calls" concurrent
js "HTTP/1.1 client is dropped, server keeps serving" http1
js "malformed HTTP/2 frame / bad magic drop only that connection" garbage
js "too-large request is refused" too_large
js "non-gRPC content-type -> HTTP 415" content_type
js "compressed-flag messages are refused" compressed
js "malformed length prefix -> INTERNAL" bad_length

cc "C client: FetchX509SVID stream, 2 messages then cancel" x509 \
    '^msgs=2 gap_ms=(9[0-9][0-9]|1[0-9]{3}) id=spiffe://example.test/stub/workload hint1=stub-1 hint2=stub-2 status=1$'
cc "C client: FetchJWTSVID unary" jwt '^status=0 svid=stub.spiffe://example.test/db.sig '
cc "C client: missing header -> 3 with message" nohdr '^status=3 .*message=security header missing'
cc "C client: unknown method -> 12" unknown '^status=12 '
cc "C client: 100 KiB request -> 8" big '^status=8 '
cc "C client: deadline on an open stream -> 4" timeout '^msgs=1 status=4 elapsed_ms=(2[5-9][0-9]|[3-9][0-9][0-9])$'
cc "C client: three calls on one connection" reuse '^ok_calls=3$'

# Graceful stop with a stream open: GOAWAY, the stream ends UNAVAILABLE, the socket file goes.
timeout 30 node "$IOP/wapi_client.mjs" "$SOCK" unavailable >"$T_TMP/unavail.out" 2>&1 &
npid=$!
sleep 1.5
stop_stub main
if wait "$npid"; then ok "grpc-js: open stream ends with UNAVAILABLE on shutdown ($(cut -c6- "$T_TMP/unavail.out"))"
else not_ok "grpc-js: open stream ends with UNAVAILABLE on shutdown" "$(tail -5 "$T_TMP/unavail.out")"; fi
if [ ! -e "$SOCK" ]; then ok "socket file removed on shutdown"; else not_ok "socket file removed on shutdown"; fi

# ---- deny stub: every caller refused ---------------------------------------------------------
if start_stub deny --deny; then ok "deny stub starts"; else not_ok "deny stub starts" "$(cat "$T_TMP/deny.err")"; fi
js "grpc-js: denied caller -> PERMISSION_DENIED (trailers-only, UTF-8 message)" deny
cc "C client: denied caller -> 7, message percent-decoded" jwt '^status=7 .*message=no identity issued for uid [0-9]+ \(café 100% denied\)$'
stop_stub deny

# ---- connection cap and handshake timeout ----------------------------------------------------
if start_stub cap --max-conns 2 --handshake-ms 500; then ok "capped stub starts"; else not_ok "capped stub starts" "$(cat "$T_TMP/cap.err")"; fi
cc "connection over --max-conns 2 is closed, a slot frees on close" maxconns \
    '^second=0 third=(14|closed) after_close=0$'
js "a connection that never sends HTTP/2 is closed (handshake timeout)" idle
stop_stub cap

# ---- stale socket and wrong file at the path ---------------------------------------------------
start_stub stale >/dev/null || true
kill -9 "$STUB_PID"; wait "$STUB_PID" 2>/dev/null
if [ -S "$T_TMP/stale.sock" ] && start_stub stale; then ok "a stale socket file is replaced at start"
else not_ok "a stale socket file is replaced at start" "$(cat "$T_TMP/stale.err")"; fi
cc "server on the replaced socket answers" jwt '^status=0 '
stop_stub stale
: >"$T_TMP/file.sock"
run "$STUB" --socket "$T_TMP/file.sock"
if [ "$T_RC" -ne 0 ] && printf '%s' "$T_ERR" | grep -q 'not a socket' && [ -f "$T_TMP/file.sock" ]; then
    ok "a regular file at the socket path is refused, not removed"
else not_ok "a regular file at the socket path is refused, not removed" "exit $T_RC: $T_ERR"; fi
