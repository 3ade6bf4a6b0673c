#!/usr/bin/env bash
# End to end: a real `lanyard server` on a fresh data directory, registration entries made through
# its admin socket, and an independent Workload API client (@grpc/grpc-js with the standard proto)
# fetching X509-SVIDs, bundles and JWT-SVIDs; what it receives is checked with openssl, Go's
# crypto/x509 and node's crypto. Also: PermissionDenied for an unregistered caller, InvalidArgument
# without the security header, rotation on an open stream before half-life, a deleted entry ending
# the stream, the health endpoint, a clean SIGTERM, and logs free of keys and tokens.
. "$LANYARD_ROOT/tests/lib.sh"
TD=wapi.lanyard.test
D="$T_TMP/data"
RUN="$T_TMP/run"
SOCK="$RUN/workload.sock"
NODE="node $LANYARD_ROOT/tests/interop/wapi_broker.mjs"
chmod 755 "$T_TMP"; mkdir -p "$RUN"; chmod 755 "$RUN"
# A port below the kernel's ephemeral range (32768 and up), so no outgoing connection holds it,
# and not listened on right now.
while :; do
    PORT=$(( 20000 + RANDOM % 12000 ))
    ss -Htan "sport = :$PORT" | grep -q . || break
done
LOG="$T_TMP/server.log"

"$LANYARD" --data "$D" server --trust-domain "$TD" --workload-socket "$SOCK" \
    --health-listen "127.0.0.1:$PORT" 2>"$LOG" &
SPID=$!
stop_server() { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; }
trap 'stop_server; t_cleanup' EXIT
for _ in $(seq 100); do [ -S "$SOCK" ] && [ -S "$D/admin.sock" ] && break; sleep 0.1; done
[ -S "$SOCK" ] && ok "server started and listens on the Workload API socket" || { not_ok "server started" "$(cat "$LOG")"; exit 1; }
mode=$(stat -c %a "$D/admin.sock"); [ "$mode" = 600 ] && ok "admin socket is owner-only (0600)" || not_ok "admin socket is owner-only" "mode $mode"

# No entry yet: the caller gets PermissionDenied, never a default identity (WAPI-7).
run $NODE status "$SOCK" FetchX509SVID
printf '%s' "$T_OUT" | grep -q '"code":7' && ok "unregistered caller: FetchX509SVID gives PermissionDenied" || not_ok "unregistered caller: PermissionDenied" "$T_OUT"
run $NODE status "$SOCK" FetchX509SVID nohdr
printf '%s' "$T_OUT" | grep -q '"code":3' && ok "missing workload.spiffe.io header gives InvalidArgument" || not_ok "missing header gives InvalidArgument" "$T_OUT"
run $NODE status "$SOCK" FetchJWTSVID hdr
printf '%s' "$T_OUT" | grep -q '"code":3' && ok "FetchJWTSVID without an audience gives InvalidArgument" || not_ok "FetchJWTSVID without audience" "$T_OUT"
run $NODE status "$SOCK" FetchWITSVID
printf '%s' "$T_OUT" | grep -q '"code":12' && ok "FetchWITSVID gives Unimplemented (WAPI-9)" || not_ok "FetchWITSVID Unimplemented" "$T_OUT"

# Two identities for this uid, registered through the running server (admin socket).
UID_NOW=$(id -u)
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/mcp/client" --selector "unix:uid:$UID_NOW" --ttl 20s --hint internal
expect_rc "entry create through the running server" 0
E1=$(printf '%s' "$T_OUT" | head -1)
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/mcp/other" --selector "unix:uid:$UID_NOW" --selector "unix:path:$(readlink -f "$(command -v node)")" --hint external
expect_rc "second entry (uid + executable path) created" 0
grep -q '"event":"entry.created"' "$LOG" && ok "the server logged both creations (so they went through it)" || not_ok "created through the server" "$(tail -5 "$LOG")"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/mcp/client" --selector "unix:uid:$UID_NOW"
expect_fail_with "a duplicate entry is refused by the server" 2 "already exists"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/x" --selector "unix:colour:blue"
expect_fail_with "an invalid selector is refused" 1 "selector|type"

# FetchX509SVID: both identities, PKCS#8 keys, the bundle; independent verifiers agree.
mkdir -p "$T_TMP/got"
run $NODE x509 "$SOCK" "$T_TMP/got"
J=$T_OUT
nodeq() { node -e "const j=JSON.parse(process.argv[1]); process.stdout.write(String($1))" "$J"; }
[ "$(nodeq 'j.n')" = 2 ] && ok "FetchX509SVID returns both identities" || not_ok "two identities" "$J"
[ "$(nodeq 'j.svids.map(s=>s.spiffe_id+"="+s.hint).sort().join(",")')" = "spiffe://$TD/mcp/client=internal,spiffe://$TD/mcp/other=external" ] \
    && ok "SPIFFE IDs and hints as registered" || not_ok "IDs and hints" "$J"
[ "$(nodeq 'j.svids.every(s=>s.key_matches && s.certs===1 && s.bundle_certs>=1)')" = true ] \
    && ok "each key is PKCS#8 DER and matches its certificate; bundle included" || not_ok "keys and bundles" "$J"
check "openssl verify -x509_strict accepts the SVIDs against the delivered bundle" \
    openssl verify -x509_strict -purpose sslclient -CAfile "$T_TMP/got/bundle.pem" "$T_TMP/got/svid0.pem" "$T_TMP/got/svid1.pem"
GOBIN="$T_TMP/x509verify"
( cd "$LANYARD_ROOT" && GO111MODULE=off GOFLAGS='' GOPROXY=off GOPATH="$T_TMP/gopath" GOCACHE="${BUILD}/gocache" \
    go build -o "$GOBIN" ./tests/interop/gox509 ) >"$T_TMP/gobuild.log" 2>&1
run "$GOBIN" "$T_TMP/got/bundle.pem" "$T_TMP/got/svid0.pem"
if [ "$T_RC" -eq 0 ] && printf '%s' "$T_OUT" | grep -q "^spiffe://$TD/mcp/"; then ok "Go crypto/x509 verifies the SVID and reads its single URI SAN"
else not_ok "Go crypto/x509 verifies the SVID" "$T_OUT $T_ERR" "$(cat "$T_TMP/gobuild.log")"; fi

# Bundles and JWTs.
run $NODE bundles "$SOCK"
J=$T_OUT
[ "$(nodeq 'j.x509["spiffe://'$TD'"]>=1 && j.jwt["spiffe://'$TD'"].keys.every(k=>k.kid && !k.use && !k.x5c)')" = true ] \
    && ok "FetchX509Bundles and FetchJWTBundles carry this trust domain (JWKS with kids, no x509 keys)" || not_ok "bundles" "$J"
run $NODE jwt "$SOCK" "spiffe://$TD/mcp/server" "spiffe://$TD/mcp/client"
J=$T_OUT
TOKEN=$(nodeq 'j.svids[0].token')
[ "$(nodeq 'j.code+":"+j.svids.length+":"+j.svids[0].spiffe_id')" = "0:1:spiffe://$TD/mcp/client" ] && ok "FetchJWTSVID for a named identity" || not_ok "FetchJWTSVID" "$J"
run "$LANYARD" --data "$D" jwt verify --audience "spiffe://$TD/mcp/server" "$TOKEN"
[ "$T_RC" -eq 0 ] && [ "$(printf '%s' "$T_OUT" | head -1)" = "spiffe://$TD/mcp/client" ] && ok "the JWT-SVID verifies with lanyard jwt verify" || not_ok "jwt verify" "$T_ERR"
run $NODE validate "$SOCK" "spiffe://$TD/mcp/server" "$TOKEN"
J=$T_OUT
[ "$(nodeq 'j.code+":"+j.spiffe_id+":"+j.claims.aud')" = "0:spiffe://$TD/mcp/client:spiffe://$TD/mcp/server" ] && ok "ValidateJWTSVID returns the ID and claims" || not_ok "ValidateJWTSVID" "$J"
run $NODE validate "$SOCK" "spiffe://$TD/other" "$TOKEN"
printf '%s' "$T_OUT" | grep -q '"code":3' && ok "ValidateJWTSVID for the wrong audience gives InvalidArgument" || not_ok "validate wrong audience" "$T_OUT"
run $NODE jwt "$SOCK" aud "spiffe://$TD/not/mine"
printf '%s' "$T_OUT" | grep -q '"code":7' && ok "FetchJWTSVID for an identity the caller lacks gives PermissionDenied" || not_ok "jwt other identity" "$T_OUT"

# Another uid on the same socket gets nothing (root only: needs setpriv).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    run setpriv --reuid=65534 --regid=65534 --clear-groups $NODE status "$SOCK" FetchX509SVID
    printf '%s' "$T_OUT" | grep -q '"code":7' && ok "a process of another uid gets PermissionDenied" || not_ok "other uid denied" "$T_OUT $T_ERR"
else
    ok "a process of another uid gets PermissionDenied # SKIP not root"
fi

# An entry with a name selector created while a stream is open reaches that stream, although
# the stream's caller was attested before any entry needed user or group names.
$NODE watchids "$SOCK" 4000 >"$T_TMP/ids.json" &
IPID=$!
sleep 1.5
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/mcp/by-name" --selector "unix:user:$(id -un)"
EN=$(printf '%s' "$T_OUT" | head -1)
wait "$IPID"
J=$(cat "$T_TMP/ids.json")
if [ "$(nodeq 'j.first.length+":"+j.last.includes("spiffe://'$TD'/mcp/by-name")')" = "2:true" ]; then
    ok "an entry with a unix:user selector reaches a stream opened before it existed"
else not_ok "name-selector entry reaches an open stream" "$J"; fi
"$LANYARD" --data "$D" entry delete "$EN" >/dev/null

# Rotation: a 20 s SVID is re-issued on the open stream before its half-life.
run $NODE rotate "$SOCK" 20000
J=$T_OUT
if [ "$(nodeq 'j.messages.length')" = 2 ] && [ "$(nodeq 'j.messages[1].serial!==j.messages[0].serial')" = true ] &&
   [ "$(nodeq 'j.messages[1].at < j.messages[0].nb + (j.messages[0].na-j.messages[0].nb)/2')" = true ]; then
    ok "a rotated SVID arrives on the open stream before the first one's half-life"
else not_ok "rotation on the stream" "$J"; fi

# Deleting the entry ends the caller's entitlement on open streams.
$NODE watch "$SOCK" 6000 >"$T_TMP/watch.json" &
WPID=$!
sleep 1.5
"$LANYARD" --data "$D" entry delete "$E1" >/dev/null
E2=$("$LANYARD" --data "$D" entry list | awk '{print $1}' | head -1)
"$LANYARD" --data "$D" entry delete "$E2" >/dev/null
wait "$WPID"
grep -q '"status":7' "$T_TMP/watch.json" && ok "deleting the entries ends the open stream with PermissionDenied" || not_ok "stream after delete" "$(cat "$T_TMP/watch.json")"

run "$LANYARD" --data "$D" server status
printf '%s' "$T_OUT" | grep -q "^trust_domain: $TD" && ok "server status over the admin socket" || not_ok "server status" "$T_OUT $T_ERR"
run curl -s -o "$T_TMP/h.json" -w '%{http_code}' "http://127.0.0.1:$PORT/healthz"
[ "$T_OUT" = 200 ] && grep -q '"status":"ok"' "$T_TMP/h.json" && ok "health endpoint answers 200 ok" || not_ok "health" "$T_OUT $(cat "$T_TMP/h.json")"
run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nope"
[ "$T_OUT" = 404 ] && ok "health endpoint: unknown path 404" || not_ok "health 404" "$T_OUT"

# Garbage on the admin socket and on the Workload API socket: the server keeps serving.
printf 'GET / HTTP/1.1\r\n\r\n' | timeout 3 node -e "const s=require('net').connect(process.argv[1]);process.stdin.pipe(s);s.on('data',()=>{});s.on('close',()=>process.exit(0));setTimeout(()=>process.exit(0),2000)" "$D/admin.sock"
head -c 3000 /dev/urandom | timeout 3 node -e "const s=require('net').connect(process.argv[1]);process.stdin.pipe(s);s.on('error',()=>{});setTimeout(()=>process.exit(0),500)" "$SOCK"
run "$LANYARD" --data "$D" server status
expect_rc "the server still answers after garbage on both sockets" 0

# Clean stop, and nothing secret in the log.
kill -TERM "$SPID"; wait "$SPID"; RC=$?
[ "$RC" = 0 ] && ok "SIGTERM stops the server with exit 0" || not_ok "SIGTERM exit" "rc $RC"
[ ! -e "$SOCK" ] && [ ! -e "$D/admin.sock" ] && ok "sockets removed on stop" || not_ok "sockets removed" "$(ls -la "$RUN" "$D")"
if grep -q "PRIVATE KEY" "$LOG" || grep -qF "${TOKEN%%.*}" "$LOG" || grep -qF "$(sed -n 2p "$T_TMP/got/key0.pem")" "$LOG"; then
    not_ok "the log holds no key or token"
else ok "the log holds no key or token"; fi
node -e "require('fs').readFileSync(process.argv[1],'utf8').trim().split('\n').forEach(l=>JSON.parse(l))" "$LOG" \
    && ok "every log line is JSON" || not_ok "log lines are JSON" "$(head -5 "$LOG")"
trap 't_cleanup' EXIT
