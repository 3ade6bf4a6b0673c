#!/usr/bin/env bash
# The MCP peer harness of the gateway tests, checked against the real peers directly (no
# gateway yet): server-everything over plain HTTP driven by tests/interop/mcp/client.mjs
# (MCP SDK client), streamed progress, session reuse by id, termination; the recording proxy
# (transparent for headers, Host and SSE, including chained twice); the SDK's JSON-response
# example server; the conformance suite's per-check summary, identical direct and through the
# recorder, and its dns-rebinding check turning with a Host rewrite; and the client's mutual
# TLS plumbing against openssl s_server with lanyard-minted SVIDs (POST and GET stream both
# present the client certificate).
. "$LANYARD_ROOT/tests/lib.sh"
MCP="$LANYARD_ROOT/tests/interop/mcp"
. "$MCP/everything.sh"
. "$MCP/conformance.sh"
CLIENT=(node "$MCP/client.mjs")
REC_PIDS=()
SSL_PID=
cleanup() {
    local p
    for p in "${REC_PIDS[@]}" $SSL_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    mcp_everything_stop; mcp_json_stop
}
trap 'cleanup; t_cleanup' EXIT

# q FILE EXPR: evaluates the JS expression EXPR over the JSON lines of FILE: L is every line,
# op(NAME[, N]) the N-th line (default first) whose "op" is NAME. Strings print raw.
q() {
    node -e 'const L = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
             const op = (n, i = 0) => L.filter((x) => x.op === n)[i];
             let r; try { r = eval(process.argv[2]); } catch (e) { r = "EVAL-ERROR " + e.message; }
             process.stdout.write(typeof r === "string" ? r : JSON.stringify(r));' "$1" "$2"
}
# is NAME FILE EXPR WANT: q FILE EXPR must print WANT.
is() {
    local got; got=$(q "$2" "$3")
    if [ "$got" = "$4" ]; then ok "$1"; else not_ok "$1" "got:  ${got:0:600}" "want: $4" "from: $3"; fi
}
# client OUT ARGS...: runs client.mjs, stdout to OUT, stderr to OUT.err, exit code in $C_RC.
client() { local out=$1; shift; "${CLIENT[@]}" "$@" >"$out" 2>"$out.err"; C_RC=$?; }
# start_recorder LOG UPSTREAM [--rewrite-host]: sets REC_PORT.
start_recorder() {
    local log=$1 up=$2 out="$1.out"; shift 2
    node "$MCP/recorder.mjs" 0 "$up" "$log" "$@" >"$out" 2>&1 &
    REC_PIDS+=($!)
    REC_PORT=
    for _ in $(seq 100); do
        REC_PORT=$(sed -n 's/^recorder listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
        [ -n "$REC_PORT" ] && return 0
        sleep 0.05
    done
    return 1
}

# ---- server-everything on loopback, scrubbed environment -------------------------------------
if mcp_everything_start "$T_TMP/everything.log"; then ok "server-everything answers on $MCP_EVERYTHING_URL"
else not_ok "server-everything starts" "$(tail -20 "$T_TMP/everything.log")"; exit 1; fi
listen=$(ss -Hltn "sport = :$MCP_EVERYTHING_PORT" | awk '{print $4}' | sort -u | tr '\n' ' ')
[ "$listen" = "127.0.0.1:$MCP_EVERYTHING_PORT " ] && ok "bind-loopback.cjs keeps it on 127.0.0.1 only" \
    || not_ok "listens on loopback only" "ss: $listen"

E=$MCP_EVERYTHING_URL
client "$T_TMP/env.out" --url "$E" call get-env '{}' terminate
is "get-env shows only the scrubbed environment (no secrets reach the peer)" "$T_TMP/env.out" \
    'Object.keys(JSON.parse(op("call").result.content[0].text)).sort().join(",")' \
    "HOME,LANG,LANYARD_BIND_HOST,PATH,PORT"

# ---- one session: connect, tools, resources, progress, terminate -----------------------------
O="$T_TMP/main.out"
client "$O" --url "$E" --caps '{}' list-tools call echo '{"message":"hello lanyard"}' \
    call get-sum '{"a":2,"b":40}' read demo://resource/dynamic/text/1 get-prompt args-prompt '{"city":"Oslo"}' \
    ping progress 2 3 print-session terminate ping
[ "$C_RC" = 0 ] && ok "client ran every operation (exit 0)" || not_ok "client exit 0" "rc $C_RC" "$(cat "$O.err")"
is "connect: initialize gives a session, the server's name and protocol 2025-11-25" "$O" \
    'const c = op("connect").result; [c.server.name, c.protocol, /^[0-9a-f-]{36}$/.test(c.session)].join(" ")' \
    "mcp-servers/everything 2025-11-25 true"
is "list-tools with capabilities {} gives the 13 documented tools" "$O" \
    'op("list-tools").result.tools.map((t) => t.name).sort().join(" ")' \
    "echo get-annotated-message get-env get-resource-links get-resource-reference get-structured-content get-sum get-tiny-image gzip-file-as-resource simulate-research-query toggle-simulated-logging toggle-subscriber-updates trigger-long-running-operation"
is "call echo" "$O" 'op("call", 0).result.content[0].text' "Echo: hello lanyard"
is "call get-sum" "$O" 'op("call", 1).result.content[0].text' "The sum of 2 and 40 is 42."
is "read a dynamic text resource" "$O" \
    'const c = op("read").result.contents[0]; c.uri + " " + c.mimeType + " " + c.text.startsWith("Resource 1:")' \
    "demo://resource/dynamic/text/1 text/plain true"
is "get-prompt with arguments" "$O" 'op("get-prompt").result.messages[0].content.text' "What's weather in Oslo?"
is "ping" "$O" 'JSON.stringify(op("ping").result)' "{}"
# 3 steps over 2 s: progress about every 667 ms, the result right after the last one. A hop
# that buffered the SSE response would deliver them all at once, at the end.
is "progress: 3 notifications arrive spread out, the first well before the result" "$O" \
    'const r = op("progress").result, p = r.progress, gaps = p.slice(1).map((x, i) => x.ms - p[i].ms);
     [p.map((x) => x.progress + "/" + x.total).join(","), p[0].ms >= 400 && p[0].ms < r.result_ms - 1000,
      gaps.every((g) => g >= 400 && g <= 1200), r.result_ms >= 1800 && r.result_ms - p[2].ms < 400,
      r.tool_result.content[0].text.startsWith("Long running operation completed")].join(" ")' \
    "1/3,2/3,3/3 true true true true"
is "terminate sends DELETE and ends the session; the next request is refused (400)" "$O" \
    'op("terminate").ok + " " + (op("terminate").result.terminated === op("connect").result.session) + " " + op("ping", 1).ok + " " + op("ping", 1).status' \
    "true true false 400"
is "the standalone GET stream opened (200); the only transport error is the refused last ping" "$O" \
    'const t = op("transport-errors"); t.http.filter((h) => h.method === "GET").map((h) => h.status).join(",") + " " + t.errors.map((e) => e.status).join(",")' \
    "200 400"

# ---- session reuse by id (what a hijacker would try), through two chained recorders ----------
# client -> recorder A -> recorder B -> server-everything: B's log shows exactly what A forwarded.
start_recorder "$T_TMP/recB.jsonl" "$E" && PB=$REC_PORT && start_recorder "$T_TMP/recA.jsonl" "http://127.0.0.1:$PB" && PA=$REC_PORT \
    && ok "two recorders chained in front of server-everything" || not_ok "recorders start" "$(cat "$T_TMP"/rec*.out)"
R="http://127.0.0.1:$PA/mcp"
client "$T_TMP/s1.out" --url "$R" --token tok-1 print-session progress 1 2
SID=$(q "$T_TMP/s1.out" 'op("connect").result.session')
is "through the recorders: progress still streams (first notification ~500 ms before the result)" "$T_TMP/s1.out" \
    'const r = op("progress").result; r.progress.length + " " + (r.result_ms - r.progress[0].ms >= 300)' "2 true"
client "$T_TMP/s2.out" --url "$R" --token tok-1 --session "$SID" open-stream call echo '{"message":"reused"}' print-session terminate
is "--session reuses the id without initialize: echo works, GET stream opens, terminate works" "$T_TMP/s2.out" \
    '[op("connect").result.resumed, op("open-stream").ok, op("call").result.content[0].text, op("print-session").result.session === "'"$SID"'", op("terminate").ok].join(" ")' \
    "true true Echo: reused true true"
client "$T_TMP/s3.out" --url "$R" --session "$SID" ping
is "a terminated session id is refused (400 No valid session ID)" "$T_TMP/s3.out" \
    'op("ping").status + " " + op("ping").code + " " + op("ping").rpc_message' "400 -32000 Bad Request: No valid session ID provided"

A="$T_TMP/recA.jsonl"
# The first client's GET stream and its tools/call go out concurrently: compare as a multiset.
is "recorder: one line per request with its HTTP and JSON-RPC method" "$A" \
    'L.map((r) => r.method + ":" + (r.rpc_method ?? "-")).sort().join(" ")' \
    "DELETE:- GET:- GET:- POST:initialize POST:notifications/initialized POST:ping POST:tools/call POST:tools/call"
is "recorder: every request of the reused session carries Mcp-Session-Id and MCP-Protocol-Version, none is initialize" "$A" \
    'const s = L.filter((r) => r.headers["mcp-session-id"] === "'"$SID"'"); [s.length, s.every((r) => r.headers["mcp-protocol-version"] === "2025-11-25"), L.filter((r) => r.rpc_method === "initialize").length].join(" ")' \
    "7 true 1"
is "recorder: Authorization reaches the upstream on POST, GET and DELETE alike" "$A" \
    'const t = L.filter((r) => r.headers.authorization === "Bearer tok-1"); [...new Set(t.map((r) => r.method))].sort().join(",")' \
    "DELETE,GET,POST"
is "recorder: JSON-RPC ids and targets are logged (tools/call echo)" "$A" \
    'const c = L.find((r) => r.rpc_method === "tools/call" && r.rpc_target === "echo"); typeof c.rpc_id + " " + c.status + " " + c.content_type' \
    "number 200 text/event-stream"
curl -sS -o /dev/null -X POST "$R" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'Connection: keep-alive, X-Hop' -H 'X-Hop: dropped' -H 'X-Dup: 1' -H 'X-Dup: 2' -H 'Keep-Alive: timeout=5' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
sleep 0.2
B="$T_TMP/recB.jsonl"
is "recorder forwards the same requests, headers and Host; drops only hop-by-hop ones" "$B" \
    'const A = require("fs").readFileSync("'"$A"'", "utf8").trim().split("\n").map(JSON.parse);
     const hop = new Set(["connection", "keep-alive", "x-hop", "transfer-encoding"]);
     const strip = (h) => JSON.stringify(Object.keys(h).filter((k) => !hop.has(k)).sort().map((k) => [k, h[k]]));
     const last = L[L.length - 1].headers;
     const key = (r) => r.method + " " + r.url + " " + strip(r.headers);
     [L.length === A.length, JSON.stringify(L.map(key).sort()) === JSON.stringify(A.map(key).sort()),
      last["x-hop"] === undefined && last["keep-alive"] === undefined, JSON.stringify(last["x-dup"]), last.host === "127.0.0.1:'"$PA"'"].join(" ")' \
    'true true true ["1","2"] true'

# ---- the SDK's JSON-response example server ---------------------------------------------------
if mcp_json_start "$T_TMP/json.log"; then ok "SDK jsonResponseStreamableHttp example answers on $MCP_JSON_URL (moved from port 3000)"
else not_ok "JSON-response example starts" "$(tail -20 "$T_TMP/json.log")"; fi
J=$MCP_JSON_URL
ct=$(curl -sS -D - -o /dev/null -X POST "$J" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' \
    | tr -d '\r' | sed -n 's/^[Cc]ontent-[Tt]ype: //p')
case "$ct" in application/json*) ok "it answers initialize with application/json, not SSE" ;; *) not_ok "application/json response" "content-type: $ct" ;; esac
client "$T_TMP/json.out" --url "$J" list-tools call greet '{"name":"lanyard"}' terminate
is "client works in JSON-response mode: tools greet, multi-greet; greet answers" "$T_TMP/json.out" \
    'op("list-tools").result.tools.map((t) => t.name).join(",") + " " + op("call").result.content[0].text' \
    "greet,multi-greet Hello, lanyard!"
is "JSON-response server: GET stream is 405 (not an error for the SDK); DELETE has no route (404)" "$T_TMP/json.out" \
    'const t = op("transport-errors"); t.http.filter((h) => h.method !== "POST").map((h) => h.method + ":" + h.status).join(",") + " " + op("terminate").status' \
    "GET:405,DELETE:404 404"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$J" -H 'Host: gateway.example:8443' -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"ping"}')
[ "$code" = 403 ] && ok "JSON-response server refuses a non-localhost Host (403): gateways must rewrite Host for it" \
    || not_ok "non-localhost Host refused" "status $code"

# ---- conformance: direct and through the recorders, summarised per check -------------------
if mcp_conformance_run "$E" "$T_TMP/conf-direct"; then ok "conformance server ran against server-everything (exit $MCP_CONFORMANCE_RC)"
else not_ok "conformance ran" "$(tail -20 "$T_TMP/conf-direct.log")"; fi
mcp_conformance_summary "$T_TMP/conf-direct" >"$T_TMP/sum-direct.txt"
n_sc=$(cut -d' ' -f1 "$T_TMP/sum-direct.txt" | sort -u | wc -l)
n_ck=$(wc -l <"$T_TMP/sum-direct.txt")
if [ "$n_sc" -ge 25 ] && [ "$n_sc" -le 40 ] && [ "$n_ck" -ge "$n_sc" ] && ! grep -qE ' (NO-CHECKS|BAD-CHECKS-JSON)$' "$T_TMP/sum-direct.txt" \
   && ! grep -qvE '^[a-z0-9/-]+ [A-Za-z0-9_-]+ (SUCCESS|FAILURE|WARNING|INFO)$' "$T_TMP/sum-direct.txt"; then
    ok "conformance summary: $n_sc scenarios, $n_ck checks, one sorted 'scenario check status' line each"
else not_ok "conformance summary is sane" "$n_sc scenarios, $n_ck checks" "$(head -40 "$T_TMP/sum-direct.txt")"; fi
grep -qx 'dns-rebinding-protection localhost-host-valid-accepted SUCCESS' "$T_TMP/sum-direct.txt" \
    && grep -qx 'server-initialize server-initialize SUCCESS' "$T_TMP/sum-direct.txt" \
    && ok "summary holds server-initialize and the two dns-rebinding checks" || not_ok "summary content" "$(cat "$T_TMP/sum-direct.txt")"
mcp_conformance_run "$R" "$T_TMP/conf-rec"
mcp_conformance_summary "$T_TMP/conf-rec" >"$T_TMP/sum-rec.txt"
if diff "$T_TMP/sum-direct.txt" "$T_TMP/sum-rec.txt" >"$T_TMP/sum.diff"; then ok "the same per-check results through the two recorders (diff is empty)"
else not_ok "identical conformance results through the recorders" "$(cat "$T_TMP/sum.diff")"; fi

# dns-rebinding-protection against a server that checks Host: passes directly and through a
# Host-preserving hop, fails through a hop that rewrites Host (what a gateway must not hide).
rebind() { # URL DIR: prints the status of localhost-host-rebinding-rejected
    mcp_conformance_run "$1" "$2" --scenario dns-rebinding-protection
    mcp_conformance_summary "$2" | sed -n 's/^dns-rebinding-protection localhost-host-rebinding-rejected //p'
}
start_recorder "$T_TMP/recJ.jsonl" "$J" && PJ=$REC_PORT
start_recorder "$T_TMP/recJR.jsonl" "$J" --rewrite-host && PJR=$REC_PORT
r1=$(rebind "$J" "$T_TMP/rb-direct"); r2=$(rebind "http://127.0.0.1:$PJ/mcp" "$T_TMP/rb-rec"); r3=$(rebind "http://127.0.0.1:$PJR/mcp" "$T_TMP/rb-rewrite")
[ "$r1 $r2 $r3" = "SUCCESS SUCCESS FAILURE" ] && ok "dns-rebinding check: passes direct and Host-preserving, fails once Host is rewritten" \
    || not_ok "dns-rebinding outcomes direct/preserving/rewriting" "$r1 $r2 $r3"
q "$T_TMP/recJ.jsonl" 'L.map((r) => r.headers.host + "|" + r.headers.origin).join(" ")' >"$T_TMP/rb-hosts.txt"
grep -q 'evil.example.com|http://evil.example.com' "$T_TMP/rb-hosts.txt" \
    && ok "the scenario sends Host: evil.example.com and Origin: http://evil.example.com" || not_ok "rebinding headers" "$(cat "$T_TMP/rb-hosts.txt")"

# ---- mutual TLS plumbing of client.mjs, against openssl s_server -----------------------------
D="$T_TMP/lanyard"
"$LANYARD" --data "$D" ca init --trust-domain t.test >/dev/null 2>&1 \
  && "$LANYARD" --data "$D" svid mint --id spiffe://t.test/srv --dns localhost --out-cert "$T_TMP/srv.pem" --out-key "$T_TMP/srv.key" >/dev/null 2>&1 \
  && "$LANYARD" --data "$D" svid mint --id spiffe://t.test/mcp-client --out-cert "$T_TMP/cli.pem" --out-key "$T_TMP/cli.key" >/dev/null 2>&1 \
  && "$LANYARD" --data "$D" bundle show --format pem >"$T_TMP/ca.pem" \
  && ok "server and client SVIDs minted with lanyard" || not_ok "mint SVIDs" "see $D"
TLS=(--servername localhost --ca "$T_TMP/ca.pem")
MTLS=("${TLS[@]}" --cert "$T_TMP/cli.pem" --key "$T_TMP/cli.key")
# s_server OUT [-www]: one connection, a verified client certificate required. Without -www it
# prints the client's certificate and the request it read, and never answers. Its stdin must
# stay open (at EOF it drops the connection): a FIFO held open read-write on fd 7.
mkfifo "$T_TMP/ssl.in" && exec 7<>"$T_TMP/ssl.in"
s_server() {
    local out=$1; shift
    SSL_PORT=$(mcp_free_port)
    openssl s_server -accept "127.0.0.1:$SSL_PORT" -naccept 1 -cert "$T_TMP/srv.pem" -key "$T_TMP/srv.key" \
        -CAfile "$T_TMP/ca.pem" -Verify 1 -verify_return_error "$@" <&7 >"$out" 2>"$out.err" &
    SSL_PID=$!
    for _ in $(seq 50); do grep -q ACCEPT "$out" 2>/dev/null && return 0; sleep 0.05; done
    return 1
}
s_server_done() { kill "$SSL_PID" 2>/dev/null; wait "$SSL_PID" 2>/dev/null; SSL_PID=; }
client_san() { # s_server output -> the client certificate's subjectAltName
    sed -n '/^Client certificate/,/^-----END CERTIFICATE-----/p' "$1" | sed 1d \
        | openssl x509 -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' '
}

s_server "$T_TMP/ss1"
client "$T_TMP/m1.out" --url "https://127.0.0.1:$SSL_PORT/mcp" "${MTLS[@]}" --token tls-tok --timeout 1000 list-tools
s_server_done
[ "$(client_san "$T_TMP/ss1")" = "URI:spiffe://t.test/mcp-client" ] && grep -q '^POST /mcp HTTP/1.1' "$T_TMP/ss1" \
    && grep -qi '^authorization: Bearer tls-tok' "$T_TMP/ss1" \
    && ok "POST (initialize) presents the client SVID: s_server shows spiffe://t.test/mcp-client" \
    || not_ok "POST presents the client certificate" "$(head -c 1500 "$T_TMP/ss1")" "$(cat "$T_TMP/ss1.err")"
[ "$C_RC" = 1 ] && ok "no MCP answer from s_server: connect fails, exit 1" || not_ok "connect fails against s_server" "rc $C_RC"

s_server "$T_TMP/ss2"
client "$T_TMP/m2.out" --url "https://127.0.0.1:$SSL_PORT/mcp" "${MTLS[@]}" --session tls-session --timeout 1000 open-stream
s_server_done
[ "$(client_san "$T_TMP/ss2")" = "URI:spiffe://t.test/mcp-client" ] && grep -q '^GET /mcp HTTP/1.1' "$T_TMP/ss2" \
    && grep -qi '^mcp-session-id: tls-session' "$T_TMP/ss2" \
    && ok "the standalone GET stream presents the client SVID too (the fetch option, not requestInit)" \
    || not_ok "GET presents the client certificate" "$(head -c 1500 "$T_TMP/ss2")" "$(cat "$T_TMP/ss2.err")"

s_server "$T_TMP/ss3" -www
client "$T_TMP/m3.out" --url "https://127.0.0.1:$SSL_PORT/mcp" "${MTLS[@]}" --session tls-session --timeout 3000 open-stream
s_server_done
is "s_server -www: the GET's handshake with the client SVID succeeds (a non-MCP 200 page)" "$T_TMP/m3.out" \
    'op("transport-errors").http.filter((h) => h.method === "GET").map((h) => h.status).join(",")' "200"

s_server "$T_TMP/ss4" -www
client "$T_TMP/m4.out" --url "https://127.0.0.1:$SSL_PORT/mcp" "${TLS[@]}" --timeout 3000 list-tools
s_server_done
if [ "$(q "$T_TMP/m4.out" 'op("connect").ok')" = false ] && grep -q 'peer did not return a certificate' "$T_TMP/ss4.err"; then
    ok "without --cert the handshake is refused (s_server: peer did not return a certificate)"
else not_ok "no client certificate, no handshake" "$(cat "$T_TMP/m4.out")" "$(cat "$T_TMP/ss4.err")"; fi
