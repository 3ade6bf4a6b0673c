#!/usr/bin/env bash
# Federation end to end with real processes: two `lanyard server`s side by side (a.test and
# b.test, each with its own CA and data directory) serve their bundles on bundle endpoints of
# both profiles (a.test https_web with a web certificate made by OpenSSL, b.test https_spiffe
# with its own SVID) and fetch each other's. An MCP client in a.test calls server-everything in
# b.test through the gateway pair (client mode with a.test's SVID, server mode with b.test's),
# with b.test's consent for the a.test client. b.test's CA rotates while calls run: a.test
# holds the new CA before it signs anything and no call fails. A client of a trust domain that
# is not federated is refused at the handshake.
. "$LANYARD_ROOT/tests/lib.sh"
MCP="$LANYARD_ROOT/tests/interop/mcp"
. "$MCP/everything.sh"
CLIENT=(node "$MCP/client.mjs")
DA="$T_TMP/a"; DB="$T_TMP/b"
RUN="$T_TMP/run"; mkdir -p "$RUN"; chmod 755 "$RUN"
SA="$RUN/a.sock"; SB="$RUN/b.sock"
HINT=4
AGENT=spiffe://a.test/agent/research
GWID=spiffe://b.test/mcp/gateway
AUD=mcp://b.test/everything
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    mcp_everything_stop
}
trap 'cleanup; t_cleanup' EXIT
A() { "$LANYARD" --data "$DA" "$@"; }
B() { "$LANYARD" --data "$DB" "$@"; }
wait_log() { local i; for i in $(seq $((${3:-20} * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
jsonq() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);
    let r; try { r = eval(process.argv[1]); } catch (e) { r = "EVAL-ERROR " + e.message; }
    process.stdout.write(typeof r === "string" ? r : JSON.stringify(r))})' "$1"; }
fp() { openssl x509 -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f'; }

# ---- two trust domains and a web PKI for a.test's https_web endpoint -----------------------------
A ca init --trust-domain a.test >/dev/null && B ca init --trust-domain b.test >/dev/null &&
    ok "two trust domains, each with its own CA" || { not_ok "ca init"; exit 1; }
W="$T_TMP/web"; mkdir -p "$W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" -out "$W/ca.pem" \
    -days 2 -subj "/CN=federation test web CA" >/dev/null 2>&1 &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/web.key" -out "$W/web.csr" \
        -subj "/CN=localhost" >/dev/null 2>&1 &&
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$W/ext.cnf" &&
    openssl x509 -req -in "$W/web.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
        -extfile "$W/ext.cnf" -out "$W/web.pem" >/dev/null 2>&1 &&
    ok "a web certificate for localhost from an OpenSSL CA (a.test's https_web endpoint)" ||
    { not_ok "web PKI"; exit 1; }

PA=$(mcp_free_port); PB=$(mcp_free_port)
B bundle show >"$T_TMP/b-bootstrap.json"
run A federation add --trust-domain b.test --url "https://127.0.0.1:$PB/" --profile https_spiffe \
    --endpoint-id spiffe://b.test/lanyard/server --bootstrap-bundle "$T_TMP/b-bootstrap.json"
expect_rc "a.test federates with b.test over https_spiffe (bootstrap bundle given)" 0
run B federation add --trust-domain a.test --url "https://localhost:$PA/" --profile https_web --ca "$W/ca.pem"
expect_rc "b.test federates with a.test over https_web (the web CA given)" 0

"$LANYARD" --data "$DA" server --workload-socket "$SA" --health-listen "" --bundle-endpoint "127.0.0.1:$PA" \
    --bundle-endpoint-profile https_web --web-cert "$W/web.pem" --web-key "$W/web.key" \
    --bundle-refresh-hint "${HINT}s" 2>"$T_TMP/a.log" &
PIDS+=($!)
"$LANYARD" --data "$DB" server --workload-socket "$SB" --health-listen "" --bundle-endpoint "127.0.0.1:$PB" \
    --bundle-refresh-hint "${HINT}s" 2>"$T_TMP/b.log" &
PIDS+=($!)
wait_log "$T_TMP/a.log" '"federation.endpoint_listening"' && wait_log "$T_TMP/b.log" '"federation.endpoint_listening"' &&
    ok "both servers run side by side, each with its bundle endpoint" ||
    { not_ok "servers start" "$(tail -3 "$T_TMP/a.log" "$T_TMP/b.log")"; exit 1; }

# An outside client reads each endpoint: curl with the web CA, and with b.test's bundle.
run curl -sS --cacert "$W/ca.pem" "https://localhost:$PA/"
printf '%s' "$T_OUT" | jsonq 'j.keys.length > 0 && j.spiffe_refresh_hint === '"$HINT"' && typeof j.spiffe_sequence' \
    | grep -qx number && ok "curl reads a.test's bundle from its https_web endpoint (refresh hint ${HINT}s, sequence)" \
    || not_ok "a.test endpoint" "$T_OUT $T_ERR"
B bundle show --format pem >"$T_TMP/b-ca.pem"
run curl -sS --cacert "$T_TMP/b-ca.pem" "https://127.0.0.1:$PB/"
[ "$T_RC" != 0 ] && printf '%s' "$T_ERR" | grep -qi 'subject\|name\|match' \
    && ok "b.test's https_spiffe endpoint has no web name (curl's host-name check refuses it)" \
    || not_ok "b.test endpoint is SPIFFE-authenticated" "rc $T_RC $T_ERR"
echo | openssl s_client -connect "127.0.0.1:$PB" -CAfile "$T_TMP/b-ca.pem" -verify_return_error 2>/dev/null |
    openssl x509 -noout -ext subjectAltName 2>/dev/null | grep -q 'URI:spiffe://b.test/lanyard/server' &&
    ok "b.test's endpoint presents spiffe://b.test/lanyard/server, verified by OpenSSL against b.test's CA" ||
    not_ok "endpoint SVID"

fetched() { # DATA TD: 0 once TD's bundle came from its endpoint
    "$LANYARD" --data "$1" federation show "$2" --json 2>/dev/null | jsonq 'j.bundle.source + " " + Boolean(j.last_success_at)' |
        grep -qx 'endpoint true'
}
for _ in $(seq 100); do fetched "$DA" b.test && fetched "$DB" a.test && break; sleep 0.1; done
fetched "$DA" b.test && ok "a.test fetched b.test's bundle (https_spiffe)" || not_ok "a fetched b" "$(A federation show b.test)"
fetched "$DB" a.test && ok "b.test fetched a.test's bundle (https_web)" || not_ok "b fetched a" "$(B federation show a.test)"
[ "$(A federation show b.test --json | jsonq 'j.bundle.refresh_hint')" = "$HINT" ] &&
    ok "the fetched bundle carries b.test's refresh hint" || not_ok "refresh hint" "$(A federation show b.test)"

# ---- identities: the agent in a.test, the gateway in b.test, each trusting the other domain ----------
U=$(id -u)
A entry create --id "$AGENT" --selector "unix:uid:$U" --federates-with b.test >/dev/null &&
    B entry create --id "$GWID" --selector "unix:uid:$U" --dns localhost --federates-with a.test >/dev/null &&
    ok "entries: the a.test agent federates with b.test, the b.test gateway with a.test" || not_ok "entries"
"$LANYARD" helper --socket "$SA" --dir "$T_TMP/agentfiles" --once >/dev/null 2>&1
[ "$(fp <"$T_TMP/agentfiles/federated/b.test.pem")" = "$(fp <"$T_TMP/b-ca.pem")" ] &&
    ok "a.test's Workload API hands the agent b.test's CA as a federated bundle" ||
    not_ok "federated bundle on the Workload API" "$(ls -R "$T_TMP/agentfiles")"
B consent grant --user alice --client "$AGENT" --scope tools:echo --source-td a.test >/dev/null &&
    B token mint --user alice --client "$AGENT" --audience "$AUD" --ttl 1h >"$T_TMP/token" &&
    ok "b.test: alice consents to the a.test agent calling echo; a token for it" || not_ok "consent/token"

mcp_everything_start "$T_TMP/everything.log" || { not_ok "server-everything starts"; exit 1; }
GP=$(mcp_free_port); CP=$(mcp_free_port)
"$LANYARD" --data "$DB" gateway --listen "127.0.0.1:$GP" --upstream "http://127.0.0.1:$MCP_EVERYTHING_PORT" \
    --audience "$AUD" --id "$GWID" --socket "$SB" 2>"$T_TMP/gw-b.log" &
PIDS+=($!)
"$LANYARD" --data "$DA" gateway --client --listen "127.0.0.1:$CP" --upstream "https://127.0.0.1:$GP" \
    --server-id "$GWID" --id "$AGENT" --token-file "$T_TMP/token" --socket "$SA" 2>"$T_TMP/gw-a.log" &
PIDS+=($!)
wait_log "$T_TMP/gw-b.log" '"gateway.listening"' && wait_log "$T_TMP/gw-a.log" '"gateway.listening"' &&
    ok "b.test's gateway and a.test's client-mode gateway listen" ||
    { not_ok "gateways" "$(tail -3 "$T_TMP/gw-b.log" "$T_TMP/gw-a.log")"; exit 1; }

O="$T_TMP/call.out"
"${CLIENT[@]}" --url "http://127.0.0.1:$CP/mcp" list-tools call echo '{"message":"across domains"}' \
    call get-sum '{"a":1,"b":2}' >"$O" 2>"$O.err"
q() { node -e 'const L = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
    const op = (n, i = 0) => L.filter((x) => x.op === n)[i]; let r;
    try { r = eval(process.argv[2]); } catch (e) { r = "EVAL-ERROR " + e.message; }
    process.stdout.write(typeof r === "string" ? r : JSON.stringify(r))' "$1" "$2"; }
[ "$(q "$O" '[op("list-tools").result.tools.map((t) => t.name).join(","), op("call", 0).result.content[0].text, op("call", 1).status].join(" | ")')" \
    = "echo | Echo: across domains | 403" ] &&
    ok "the MCP client in a.test calls server-everything in b.test: echo allowed, get-sum refused (403), tools filtered" ||
    not_ok "cross-domain MCP call" "$(head -c 800 "$O") $(head -c 300 "$O.err")"
B audit list --json | jsonq 'j.some((r) => r.decision === "allow" && r.client_id === "'"$AGENT"'" && r.target === "echo")' |
    grep -qx true && ok "b.test's audit log records the a.test client's allowed call" || not_ok "audit across domains"

# ---- a trust domain nobody federates with ----------------------------------------------------------
"$LANYARD" --data "$T_TMP/c" ca init --trust-domain c.test >/dev/null
"$LANYARD" --data "$T_TMP/c" svid mint --id spiffe://c.test/agent/x --out-cert "$T_TMP/c.pem" --out-key "$T_TMP/c.key" >/dev/null
run curl -sS -o /dev/null --cacert "$T_TMP/b-ca.pem" --cert "$T_TMP/c.pem" --key "$T_TMP/c.key" \
    --resolve "localhost:$GP:127.0.0.1" "https://localhost:$GP/mcp" -d '{}'
[ "$T_RC" != 0 ] && ok "a c.test client (not federated) is refused at the handshake (curl exit $T_RC)" ||
    not_ok "c.test refused"
sleep 0.3
B audit list --json | jsonq 'j.some((r) => r.method === "tls-handshake" && /c\.test/.test(r.reason))' | grep -qx true &&
    ok "b.test's gateway records why: no bundle for c.test" || not_ok "c.test refusal audited" "$(grep -i handshake "$T_TMP/gw-b.log" | tail -2)"
A svid mint --id "$AGENT" --out-cert "$T_TMP/agent.pem" --out-key "$T_TMP/agent.key" >/dev/null
run curl -sS -o /dev/null -w '%{http_code}' --cacert "$T_TMP/b-ca.pem" --cert "$T_TMP/agent.pem" --key "$T_TMP/agent.key" \
    --resolve "localhost:$GP:127.0.0.1" "https://localhost:$GP/mcp" -d '{}'
[ "$T_OUT" = 401 ] && ok "an a.test client gets through the handshake (401 only for its missing token)" ||
    not_ok "a.test handshake" "rc $T_RC out $T_OUT $T_ERR"

# ---- b.test's CA rotates while calls run -------------------------------------------------------------
seq0=$(A federation show b.test --json | jsonq 'j.bundle.sequence')
O="$T_TMP/rot.out"
ops=(); for i in $(seq 40); do ops+=(call echo "{\"message\":\"r$i\"}" sleep 300); done
"${CLIENT[@]}" --url "http://127.0.0.1:$CP/mcp" "${ops[@]}" >"$O" 2>"$O.err" &
CPID=$!
# Fresh connections meanwhile too (each a new handshake through both gateways).
( for i in $(seq 12); do
      "${CLIENT[@]}" --url "http://127.0.0.1:$CP/mcp" call echo "{\"message\":\"fresh$i\"}" >>"$T_TMP/fresh.out" 2>/dev/null
      sleep 0.7
  done ) &
FPID=$!
sleep 1
run B ca rotate
ROT_OUT=$T_OUT
wait "$CPID"; wait "$FPID"
printf '%s' "$ROT_OUT" | grep -q 'signs now' && ok "b.test's CA rotated through its server (next CA published, then took over)" \
    || not_ok "ca rotate" "$ROT_OUT $T_ERR"
n_ok=$(q "$O" 'L.filter((x) => x.op === "call" && x.ok && /Echo: r/.test(x.result.content[0].text)).length')
n_fresh=$(grep -c '"Echo: fresh' "$T_TMP/fresh.out")
[ "$n_ok" = 40 ] && [ "$n_fresh" = 12 ] &&
    ok "no call failed during the rotation (40 on one session, 12 on fresh connections)" ||
    not_ok "calls during rotation" "session $n_ok/40, fresh $n_fresh/12" "$(grep -v '"ok":true' "$O" | head -3)"
seq1=$(A federation show b.test --json | jsonq 'j.bundle.sequence')
[ "$seq1" -gt "$seq0" ] && ok "a.test holds b.test's new bundle (sequence $seq0 -> $seq1)" || not_ok "sequence moved" "$seq0 $seq1"
# When did a.test learn it, and when did the new CA start signing?
learned=$(grep '"federation.bundle_updated"' "$T_TMP/a.log" | grep '"trust_domain":"b.test"' |
    grep "\"sequence\":$((seq0 + 1))," | head -1 | jsonq 'Date.parse(j.ts) / 1000')
took=$(grep '"ca.took_over"' "$T_TMP/b.log" | tail -1 | jsonq 'Date.parse(j.ts) / 1000')
[ -n "$learned" ] && [ -n "$took" ] && [ "$learned" -lt "$took" ] &&
    ok "a.test learned the new CA $((took - learned)) s before it signed anything in b.test" ||
    not_ok "new CA known before it signs" "learned=$learned took_over=$took"
# The gateway now presents an SVID of the new CA, which the old bundle alone does not verify.
echo | openssl s_client -connect "127.0.0.1:$GP" -cert "$T_TMP/agent.pem" -key "$T_TMP/agent.key" 2>/dev/null |
    openssl x509 >"$T_TMP/gw-now.pem" 2>/dev/null
A bundle show --trust-domain b.test >"$T_TMP/b-now.json"
if [ -s "$T_TMP/gw-now.pem" ] && ! openssl verify -CAfile "$T_TMP/b-ca.pem" "$T_TMP/gw-now.pem" >/dev/null 2>&1 &&
   A svid verify --bundle "b.test=$T_TMP/b-now.json" "$T_TMP/gw-now.pem" >/dev/null 2>&1; then
    ok "b.test's gateway now presents an SVID from the new CA (a.test's copy of b.test's bundle verifies it, the old CA does not)"
else
    not_ok "gateway SVID re-issued by the new CA" "$(openssl x509 -in "$T_TMP/gw-now.pem" -noout -issuer -dates 2>&1)"
fi

# ---- what the logs say ------------------------------------------------------------------------------
leak=0
for f in "$T_TMP"/*.log; do
    grep -qE 'eyJ[A-Za-z0-9_-]{10,}\.' "$f" && { leak=1; echo "# JWT-shaped text in $f"; }
    grep -q 'PRIVATE KEY' "$f" && { leak=1; echo "# key in $f"; }
done
[ "$leak" = 0 ] && ok "no token or key in any server or gateway log" || not_ok "secrets in logs"
