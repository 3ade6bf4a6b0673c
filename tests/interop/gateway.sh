#!/usr/bin/env bash
# The MCP gateway end to end, with real processes only: a `lanyard server` (Workload API,
# SQLite store), @modelcontextprotocol/server-everything behind a recording proxy, a server-mode
# `lanyard gateway` in front of it, client-mode gateways for two agents, and the MCP SDK client
# (tests/interop/mcp/client.mjs) both through client mode and directly with client
# certificates. Checks: granted calls succeed, ungranted ones get 403 naming the scope,
# tools/list is filtered (SSE and JSON responses), the confused deputy is refused (another
# client with the user's token, a token for a client without consent, a session of another
# client), each token and certificate refusal has its own reason, the upstream never sees a
# bearer token and sees identity headers the gateway set, progress streams incrementally,
# revocation denies the very next request, the stateless header check, SVID rotation under an
# open connection, the audit trail verifies and detects an edited record, and no token or key
# reaches a log.
. "$LANYARD_ROOT/tests/lib.sh"
MCP="$LANYARD_ROOT/tests/interop/mcp"
. "$MCP/everything.sh"
CLIENT=(node "$MCP/client.mjs")
TD=gw.lanyard.test
D="$T_TMP/data"
RUN="$T_TMP/run"
SOCK="$RUN/workload.sock"
AUD=mcp://everything
GWID="spiffe://$TD/mcp/gateway"
A="spiffe://$TD/agent/a"
B="spiffe://$TD/agent/b"
mkdir -p "$RUN"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    mcp_everything_stop; mcp_json_stop
}
trap 'cleanup; t_cleanup' EXIT

q() {
    node -e 'const L = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
             const op = (n, i = 0) => L.filter((x) => x.op === n)[i];
             let r; try { r = eval(process.argv[2]); } catch (e) { r = "EVAL-ERROR " + e.message; }
             process.stdout.write(typeof r === "string" ? r : JSON.stringify(r));' "$1" "$2"
}
is() {
    local got; got=$(q "$2" "$3")
    if [ "$got" = "$4" ]; then ok "$1"; else not_ok "$1" "got:  ${got:0:700}" "want: $4" "from: $3"; fi
}
client() { local out=$1; shift; "${CLIENT[@]}" --caps '{}' "$@" >"$out" 2>"$out.err"; C_RC=$?; }
wait_log() { # FILE PATTERN [SECONDS]
    local i
    for i in $(seq $((${3:-20} * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
L() { "$LANYARD" --data "$D" "$@"; }
# audit_has JQ-LIKE-JS: the JS predicate over the records of `audit list --json` (variable r).
audit_has() {
    L audit list --json >"$T_TMP/audit.json" 2>"$T_TMP/audit.err" || return 1
    node -e 'const a = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
             process.exit(a.some((r) => eval(process.argv[2])) ? 0 : 1)' "$T_TMP/audit.json" "$1"
}

# ---- the trust domain, its workloads and the upstream ---------------------------------------
"$LANYARD" --data "$D" server --trust-domain "$TD" --workload-socket "$SOCK" --health-listen "" \
    2>"$T_TMP/server.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$SOCK" ] && [ -S "$D/admin.sock" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { not_ok "lanyard server starts" "$(cat "$T_TMP/server.log")"; exit 1; }
U=$(id -u)
L entry create --id "$GWID" --selector "unix:uid:$U" --dns localhost --ttl 30s >/dev/null &&
    L entry create --id "$A" --selector "unix:uid:$U" >/dev/null &&
    L entry create --id "$B" --selector "unix:uid:$U" >/dev/null &&
    ok "entries for the gateway and two agents" || not_ok "entries" "$(cat "$T_TMP/server.log" | tail -5)"
L bundle show --format pem >"$T_TMP/bundle.pem"

mcp_everything_start "$T_TMP/everything.log" || { not_ok "server-everything starts" "$(tail "$T_TMP/everything.log")"; exit 1; }
node "$MCP/recorder.mjs" 0 "$MCP_EVERYTHING_URL" "$T_TMP/upstream.jsonl" >"$T_TMP/recorder.out" 2>&1 &
PIDS+=($!)
wait_log "$T_TMP/recorder.out" "recorder listening" 10
REC_PORT=$(sed -n 's/^recorder listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T_TMP/recorder.out")

# ---- refusals at start: clear errors, exit 2 --------------------------------------------------
run L gateway --listen 127.0.0.1:1 --upstream "http://127.0.0.1:$REC_PORT"
expect_fail_with "server mode without --audience is refused" 2 "audience"
run L gateway --listen 127.0.0.1:9 --upstream "https://127.0.0.1:$REC_PORT" --audience x
expect_fail_with "server mode refuses an https upstream" 2 "plain HTTP|http://"
run L gateway --client --listen 0.0.0.0:9 --upstream "https://127.0.0.1:1" --server-id "$GWID"
expect_fail_with "client mode refuses a non-loopback listener" 2 "loopback"
run L gateway --listen nonsense --upstream "http://127.0.0.1:1" --audience x
expect_fail_with "a bad --listen names the problem" 2 "HOST:PORT"
run L gateway --listen 127.0.0.1:9 --upstream "http://u@127.0.0.1:1/" --audience x
expect_fail_with "an upstream URL with user info is refused" 2 "user info"
run L gateway --client --listen 127.0.0.1:9 --upstream https://127.0.0.1:1 --server-id spiffe://x
expect_fail_with "client mode refuses a --server-id without a path" 2 "server-id"

# ---- the server-mode gateway and two client-mode gateways ------------------------------------
GP=$(mcp_free_port)
"$LANYARD" --data "$D" gateway --listen "127.0.0.1:$GP" --upstream "http://127.0.0.1:$REC_PORT" --audience "$AUD" \
    --id "$GWID" --socket "$SOCK" --log-level debug 2>"$T_TMP/gw.log" &
GW_PID=$!; PIDS+=($GW_PID)
wait_log "$T_TMP/gw.log" '"gateway.listening"' && ok "server gateway listens with its SVID $GWID" \
    || { not_ok "server gateway listens" "$(tail -5 "$T_TMP/gw.log")"; exit 1; }
grep -q "\"spiffe_id\":\"$GWID\"" "$T_TMP/gw.log" && ok "--id picked the gateway's SVID among three" \
    || not_ok "--id picks the SVID" "$(grep listening "$T_TMP/gw.log")"
start_client_gw() { # NAME ID [extra args]: sets ${NAME}_PORT
    local name=$1 id=$2 port; shift 2
    port=$(mcp_free_port)
    "$LANYARD" --data "$D" gateway --client --listen "127.0.0.1:$port" --upstream "https://127.0.0.1:$GP" \
        --server-id "$GWID" --id "$id" --socket "$SOCK" "$@" 2>"$T_TMP/cgw-$name.log" &
    PIDS+=($!)
    printf -v "${name}_PORT" %s "$port"
    wait_log "$T_TMP/cgw-$name.log" '"gateway.listening"'
}
start_client_gw CA "$A" && start_client_gw CB "$B" && ok "client-mode gateways for agent a and agent b listen on loopback" \
    || not_ok "client gateways" "$(tail -3 "$T_TMP"/cgw-*.log)"

# Consent: alice lets agent a use three tools, the static documents and one prompt.
L consent grant --user alice --client "$A" --scope tools:echo --scope tools:get-sum \
    --scope tools:trigger-long-running-operation --scope resources:demo://resource/static/ \
    --scope prompts:simple-prompt >"$T_TMP/grant1" 2>&1 && ok "consent granted: alice -> agent a" \
    || not_ok "consent grant" "$(cat "$T_TMP/grant1")"
L token mint --user alice --client "$A" --audience "$AUD" >"$T_TMP/tokA" &&
    L token mint --user alice --client "$B" --audience "$AUD" >"$T_TMP/tokB" &&
    L token mint --user alice --client "$A" --audience mcp://elsewhere >"$T_TMP/tokA-aud" &&
    ok "tokens minted" || not_ok "token mint" "$(L token mint --user alice --client "$A" --audience x 2>&1)"
TA=$(cat "$T_TMP/tokA"); TB=$(cat "$T_TMP/tokB")

# ---- through client mode: the allowed, the refused, the filtered ------------------------------
O="$T_TMP/a.out"
client "$O" --url "http://127.0.0.1:$CA_PORT/mcp" --token "$TA" list-tools call echo '{"message":"via lanyard"}' \
    call get-env '{}' read demo://resource/static/document/architecture.md read demo://resource/dynamic/text/1 \
    get-prompt simple-prompt progress 2 3 terminate
[ "$C_RC" = 0 ] && ok "agent a connects through its client-mode gateway (session opened)" \
    || not_ok "agent a connects" "rc $C_RC" "$(head -c 600 "$O") $(head -c 600 "$O.err")"
is "tools/list shows only the granted tools (SSE response filtered)" "$O" \
    'op("list-tools").result.tools.map((t) => t.name).sort().join(" ")' "echo get-sum trigger-long-running-operation"
is "a granted tool call succeeds" "$O" 'op("call", 0).result.content[0].text' "Echo: via lanyard"
is "an ungranted tool gets 403 with a JSON-RPC error naming the missing scope" "$O" \
    'const c = op("call", 1); [c.ok, c.status, c.code, /tools:get-env/.test(c.message)].join(" ")' "false 403 -32003 true"
is "a resource under the granted prefix is read" "$O" 'op("read", 0).ok + " " + op("read", 0).result.contents[0].uri' \
    "true demo://resource/static/document/architecture.md"
is "a resource outside the granted prefix is refused" "$O" 'op("read", 1).status + " " + /resources:demo:\/\/resource\/dynamic/.test(op("read", 1).message)' "403 true"
is "a granted prompt is served" "$O" 'op("get-prompt").ok' "true"
is "progress of a long-running tool arrives incrementally, not in one burst" "$O" \
    'const r = op("progress").result, p = r.progress, gaps = p.slice(1).map((x, i) => x.ms - p[i].ms);
     [p.length, p[0].ms < r.result_ms - 900, gaps.every((g) => g > 400)].join(" ")' "3 true true"
# The SDK reports the two refused POSTs above through onerror too; anything else there would be
# the GET stream failing.
is "the GET event stream was allowed too (no transport error besides the two refused POSTs)" "$O" \
    'const t = op("transport-errors"); t.http.filter((h) => h.method === "GET").map((h) => h.status).join(",") + " " +
     t.errors.filter((e) => !(e.status === 403 && /POSTing/.test(e.message))).length + " " + t.errors.length' "200 0 2"

# ---- directly with client certificates --------------------------------------------------------
L svid mint --id "$A" --out-cert "$T_TMP/a.pem" --out-key "$T_TMP/a.key" >/dev/null &&
    L svid mint --id "$A" --out-cert "$T_TMP/a2.pem" --out-key "$T_TMP/a2.key" >/dev/null &&
    L token mint --user alice --client "$A" --audience "$AUD" --bind-cert "$T_TMP/a.pem" >"$T_TMP/tokA-bound" ||
    not_ok "client certificates minted"
DIRECT=(--url "https://127.0.0.1:$GP/mcp" --servername localhost --ca "$T_TMP/bundle.pem")
O="$T_TMP/direct.out"
client "$O" "${DIRECT[@]}" --cert "$T_TMP/a.pem" --key "$T_TMP/a.key" --token-file "$T_TMP/tokA-bound" \
    list-tools call get-sum '{"a":2,"b":40}' call get-env '{}' terminate
is "the SDK client with a client certificate: tools filtered, a granted call works, an ungranted one is 403" "$O" \
    '[op("list-tools").result.tools.length, op("call", 0).result.content[0].text, op("call", 1).status].join(" | ")' \
    "3 | The sum of 2 and 40 is 42. | 403"
O="$T_TMP/wrongcert.out"
client "$O" "${DIRECT[@]}" --cert "$T_TMP/a2.pem" --key "$T_TMP/a2.key" --token-file "$T_TMP/tokA-bound" list-tools
is "a token bound to another certificate is refused with 401" "$O" 'op("connect").status' "401"

# ---- the confused deputy ----------------------------------------------------------------------
O="$T_TMP/deputy1.out"
client "$O" --url "http://127.0.0.1:$CB_PORT/mcp" --token "$TA" call echo '{"message":"x"}'
is "client b presenting alice's token (issued to a) is refused" "$O" \
    'op("connect").status + " " + /another client/.test(op("connect").message)' "401 true"
O="$T_TMP/deputy2.out"
client "$O" --url "http://127.0.0.1:$CB_PORT/mcp" --token "$TB" call echo '{"message":"x"}'
is "client b with its own valid token for alice, who consented only to a, is refused" "$O" \
    'op("connect").status + " " + /no consent/.test(op("connect").message)' "403 true"
O="$T_TMP/sess-a.out"
client "$O" --url "http://127.0.0.1:$CA_PORT/mcp" --token "$TA" print-session
SID=$(q "$O" 'op("print-session").result.session')
O="$T_TMP/deputy3.out"
client "$O" --url "http://127.0.0.1:$CB_PORT/mcp" --token "$TB" --session "$SID" call echo '{"message":"x"}'
is "client b using client a's session is refused" "$O" \
    'op("call").status + " " + /another client/.test(op("call").message)' "403 true"
O="$T_TMP/sess-a2.out"
client "$O" --url "http://127.0.0.1:$CA_PORT/mcp" --token "$TA" --session "$SID" call echo '{"message":"again"}'
is "client a itself can still use its session" "$O" 'op("call").result.content[0].text' "Echo: again"
O="$T_TMP/sess-unknown.out"
client "$O" --url "http://127.0.0.1:$CA_PORT/mcp" --token "$TA" --session made-up-session call echo '{}'
is "an unknown session id gets 404 (the client must re-initialize)" "$O" 'op("call").status' "404"

# ---- token refusals, each with its own reason -------------------------------------------------
O="$T_TMP/noauth.out"
client "$O" --url "http://127.0.0.1:$CA_PORT/mcp" list-tools
is "no token: 401" "$O" 'op("connect").status' "401"
curl -s -o /dev/null -D "$T_TMP/h401" --cacert "$T_TMP/bundle.pem" --cert "$T_TMP/a.pem" --key "$T_TMP/a.key" \
    --resolve "localhost:$GP:127.0.0.1" "https://localhost:$GP/mcp" -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"ping"}'
grep -qi '^www-authenticate: Bearer realm="lanyard"' "$T_TMP/h401" && ok "401 carries WWW-Authenticate: Bearer" \
    || not_ok "WWW-Authenticate on 401" "$(cat "$T_TMP/h401")"
O="$T_TMP/aud.out"
client "$O" --url "http://127.0.0.1:$CA_PORT/mcp" --token-file "$T_TMP/tokA-aud" list-tools
is "a token for another audience: 401" "$O" 'op("connect").status + " " + /audience/.test(op("connect").message)' "401 true"
L token mint --user alice --client "$A" --audience "$AUD" --ttl 10s --at "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" \
    >"$T_TMP/tokA-old" 2>"$T_TMP/tokA-old.err"
O="$T_TMP/expired.out"
client "$O" --url "http://127.0.0.1:$CA_PORT/mcp" --token-file "$T_TMP/tokA-old" list-tools
is "an expired token: 401" "$O" 'op("connect").status + " " + /expired/.test(op("connect").message)' "401 true"
run curl -s -o /dev/null -w '%{http_code}' --cacert "$T_TMP/bundle.pem" --resolve "localhost:$GP:127.0.0.1" \
    "https://localhost:$GP/mcp" -d '{}'
[ "$T_RC" != 0 ] && ok "no client certificate: no connection (curl exit $T_RC)" || not_ok "no client cert refused" "http $T_OUT"
"$LANYARD" --data "$T_TMP/other" ca init --trust-domain other.test >/dev/null 2>&1
"$LANYARD" --data "$T_TMP/other" svid mint --id spiffe://other.test/agent/a --out-cert "$T_TMP/o.pem" --out-key "$T_TMP/o.key" >/dev/null 2>&1
run curl -s -o /dev/null --cacert "$T_TMP/bundle.pem" --cert "$T_TMP/o.pem" --key "$T_TMP/o.key" \
    --resolve "localhost:$GP:127.0.0.1" "https://localhost:$GP/mcp" -d '{}'
[ "$T_RC" != 0 ] && ok "a client certificate of an unknown trust domain: no connection" || not_ok "foreign TD refused"
sleep 0.3
audit_has 'r.reason === "token issued to another client"' && ok "audit reason: token issued to another client" \
    || not_ok "audit: wrong client" "$(head -c 800 "$T_TMP/audit.json")"
audit_has 'r.reason === "token audience mismatch"' && ok "audit reason: token audience mismatch" || not_ok "audit: audience"
audit_has 'r.reason === "token expired"' && ok "audit reason: token expired" || not_ok "audit: expired"
audit_has 'r.reason === "token bound to another certificate"' && ok "audit reason: token bound to another certificate" \
    || not_ok "audit: wrong cert"
audit_has 'r.reason === "missing bearer token"' && ok "audit reason: missing bearer token" || not_ok "audit: missing token"
audit_has 'r.method === "tls-handshake" && /no certificate/.test(r.reason)' && ok "audit reason: no client certificate" \
    || not_ok "audit: no cert" "$(grep handshake "$T_TMP/gw.log" | tail -3)"
audit_has 'r.method === "tls-handshake" && /other\.test/.test(r.reason) && r.target === "spiffe://other.test/agent/a"' \
    && ok "audit reason: no bundle for the client's trust domain other.test" || not_ok "audit: foreign TD" "$(grep handshake "$T_TMP/gw.log" | tail -3)"
audit_has 'r.reason === "session opened by another client" && r.client_id === "'"$B"'"' \
    && ok "audit reason: session opened by another client" || not_ok "audit: session"
audit_has 'r.decision === "deny" && r.method === "tools/call" && r.target === "get-env" && /tools:get-env/.test(r.reason) && r.user === "alice"' \
    && ok "audit: the 403 for get-env, with user, tool and missing scope" || not_ok "audit: get-env deny"
audit_has 'r.decision === "allow" && r.method === "tools/call" && r.target === "echo" && r.client_id === "'"$A"'" && /^[0-9a-f]{64}$/.test(r.cert_sha256) && /^[0-9a-f]{32}$/.test(r.consent_id)' \
    && ok "audit: an allowed call with client, certificate fingerprint and consent record" \
    || not_ok "audit: allow record" "$(node -e 'const a=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(JSON.stringify(a.filter(r=>r.decision==="allow")[0]))' "$T_TMP/audit.json")"

# ---- what the upstream saw --------------------------------------------------------------------
node -e 'const L = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
         const bad = L.filter((r) => "authorization" in r.headers);
         console.log(L.length + " " + bad.length)' "$T_TMP/upstream.jsonl" >"$T_TMP/up.sum"
read -r n_up n_auth <"$T_TMP/up.sum"
[ "${n_up:-0}" -gt 10 ] && [ "$n_auth" = 0 ] && ok "the upstream received $n_up requests and never an Authorization header" \
    || not_ok "no token passthrough" "$(cat "$T_TMP/up.sum")"
curl -s -o /dev/null "http://127.0.0.1:$CA_PORT/mcp" -H "Authorization: Bearer $TA" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H 'X-Lanyard-User: mallory' -H "X-Lanyard-Client-Id: $B" \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
node -e 'const L = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
         const r = L.filter((x) => x.rpc_method === "initialize").pop().headers;
         console.log([r["x-lanyard-user"], r["x-lanyard-client-id"], /^[0-9a-f]{64}$/.test(r["x-lanyard-client-cert-sha256"]),
                      /^[0-9a-f]{32}$/.test(r["x-lanyard-consent-id"]), r.host].join(" "))' "$T_TMP/upstream.jsonl" >"$T_TMP/idh"
[ "$(cat "$T_TMP/idh")" = "alice $A true true 127.0.0.1:$REC_PORT" ] \
    && ok "identity headers are the gateway's own (client-sent X-Lanyard-* dropped), Host rewritten for the upstream" \
    || not_ok "identity headers" "$(cat "$T_TMP/idh")"

# ---- the stateless transport's headers --------------------------------------------------------
run curl -s -w '\n%{http_code}' "http://127.0.0.1:$CA_PORT/mcp" -H "Authorization: Bearer $TA" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'Mcp-Method: tools/list' -d '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}'
printf '%s' "$T_OUT" | tail -1 | grep -qx 400 && printf '%s' "$T_OUT" | grep -q '"code":-32020' \
    && ok "Mcp-Method disagreeing with the body: 400 with JSON-RPC error -32020" || not_ok "header mismatch" "$T_OUT"
run curl -s -w '\n%{http_code}' "http://127.0.0.1:$CA_PORT/mcp" -H "Authorization: Bearer $TA" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'Mcp-Method: tools/call' -H 'Mcp-Name: =?base64?Z2V0LWVudg==?=' \
    -d '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo"}}'
printf '%s' "$T_OUT" | tail -1 | grep -qx 400 && ok "Mcp-Name (base64 sentinel) disagreeing with params.name: 400" \
    || not_ok "name mismatch" "$T_OUT"

# ---- DNS rebinding protection of the client-mode listener -------------------------------------
run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CA_PORT/mcp" -H 'Host: evil.example.com' -d '{}'
[ "$T_OUT" = 403 ] && ok "client mode refuses a foreign Host (DNS rebinding)" || not_ok "foreign Host" "$T_OUT"
run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CA_PORT/mcp" -H 'Origin: http://evil.example.com' -d '{}'
[ "$T_OUT" = 403 ] && ok "client mode refuses a foreign Origin" || not_ok "foreign Origin" "$T_OUT"

# ---- revocation takes effect on the very next request -----------------------------------------
REC=$(L consent grant --user bob --client "$A" --scope tools:get-sum 2>&1)
L token mint --user bob --client "$A" --audience "$AUD" >"$T_TMP/tokBob"
O="$T_TMP/revoke.out"
( sleep 2; L consent revoke "$REC" >"$T_TMP/revoke.log" 2>&1; date +%s%N >"$T_TMP/revoked-at" ) &
RPID=$!
client "$O" --url "http://127.0.0.1:$CA_PORT/mcp" --token-file "$T_TMP/tokBob" call get-sum '{"a":1,"b":1}' sleep 4000 call get-sum '{"a":1,"b":2}'
wait "$RPID"
is "in one session: allowed before the revocation, refused on the next request after it" "$O" \
    'op("call", 0).ok + " " + op("call", 1).status' "true 403"

# ---- JSON responses: the SDK's JSON-response example behind a second gateway ------------------
if mcp_json_start "$T_TMP/json.log"; then
    GP2=$(mcp_free_port)
    "$LANYARD" --data "$D" gateway --listen "127.0.0.1:$GP2" --upstream "http://127.0.0.1:$MCP_JSON_PORT" --audience "$AUD" \
        --id "$GWID" --socket "$SOCK" --audit "$T_TMP/audit2.log" 2>"$T_TMP/gw2.log" &
    PIDS+=($!)
    wait_log "$T_TMP/gw2.log" '"gateway.listening"'
    L consent grant --user alice --client "$A" --scope tools:greet >/dev/null
    O="$T_TMP/json.out"
    client "$O" --url "https://127.0.0.1:$GP2/mcp" --servername localhost --ca "$T_TMP/bundle.pem" \
        --cert "$T_TMP/a.pem" --key "$T_TMP/a.key" --token "$TA" list-tools call greet '{"name":"lanyard"}' \
        call multi-greet '{"name":"x"}'
    is "application/json upstream: tools/list filtered to greet; greet works; multi-greet 403" "$O" \
        '[op("list-tools").result.tools.map((t) => t.name).join(","), /lanyard/.test(JSON.stringify(op("call", 0).result)), op("call", 1).status].join(" ")' \
        "greet true 403"
else
    not_ok "the JSON-response example starts" "$(tail -5 "$T_TMP/json.log")"
fi

# ---- SVID rotation while a connection stays open ----------------------------------------------
O="$T_TMP/rotate.out"
g0=$(grep -c '"gateway.svid_updated"' "$T_TMP/gw.log")
client "$O" "${DIRECT[@]}" --cert "$T_TMP/a.pem" --key "$T_TMP/a.key" --token-file "$T_TMP/tokA-bound" \
    call echo '{"message":"before"}' sleep 14000 call echo '{"message":"after"}'
g1=$(grep -c '"gateway.svid_updated"' "$T_TMP/gw.log")
is "calls before and after the gateway's SVID rotates both succeed" "$O" \
    'op("call", 0).result.content[0].text + " / " + op("call", 1).result.content[0].text' "Echo: before / Echo: after"
[ "$g1" -gt "$g0" ] && ok "the gateway's SVID rotated meanwhile ($g0 -> $g1 updates)" || not_ok "rotation seen" "$g0 $g1"
ok_new=$(echo | openssl s_client -connect "127.0.0.1:$GP" -cert "$T_TMP/a.pem" -key "$T_TMP/a.key" 2>/dev/null |
    openssl x509 -noout -enddate 2>/dev/null)
[ -n "$ok_new" ] && ok "a new connection gets the rotated certificate ($ok_new)" || not_ok "new connection after rotation"

# ---- the audit trail ------------------------------------------------------------------------
kill -TERM "$GW_PID"; wait "$GW_PID" 2>/dev/null
rc=$?
[ "$rc" = 0 ] && ok "SIGTERM stops the gateway cleanly" || not_ok "clean stop" "exit $rc"
run L audit verify
expect_rc "audit verify: the chain is intact" 0
printf '%s' "$T_OUT" | grep -qE '^[0-9]+ records, chain intact' && ok "audit verify reports the record count" || not_ok "verify output" "$T_OUT"
n_allow=$(L audit list --decision allow --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).length))')
n_deny=$(L audit list --decision deny --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).length))')
[ "$n_allow" -gt 10 ] && [ "$n_deny" -gt 10 ] && ok "the audit log holds allow ($n_allow) and deny ($n_deny) decisions" \
    || not_ok "allow and deny records" "$n_allow $n_deny"
cp "$D/audit.log" "$T_TMP/audit.bak"
node -e 'const fs = require("fs"); const b = fs.readFileSync(process.argv[1]);
         const i = b.indexOf(Buffer.from("get-env")); if (i < 0) process.exit(1);
         b[i] = "G".charCodeAt(0); fs.writeFileSync(process.argv[1], b);' "$D/audit.log"
run L audit verify
expect_fail_with "audit verify detects an edited record and names it" 1 "record|seq"

# ---- no secrets in logs or the audit log -------------------------------------------------------
leak=0
for f in "$T_TMP/gw.log" "$T_TMP"/cgw-*.log "$T_TMP/server.log" "$T_TMP/audit.bak" "$T_TMP/upstream.jsonl"; do
    for t in "$TA" "$TB"; do grep -qF "${t:20:40}" "$f" && { leak=1; echo "# token in $f"; }; done
    grep -qE 'eyJ[A-Za-z0-9_-]{10,}\.' "$f" && { leak=1; echo "# JWT-shaped text in $f"; }
    grep -q 'PRIVATE KEY' "$f" && { leak=1; echo "# key in $f"; }
done
[ "$leak" = 0 ] && ok "no token or key in the gateway, server or upstream logs, nor in the audit log" || not_ok "secrets leaked"
