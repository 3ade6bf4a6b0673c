#!/usr/bin/env bash
# lanyard demo, part two: two trust domains on one machine (a.test and b.test, each its own
# `lanyard server`, CA and data directory) federate through their bundle endpoints; an MCP client
# in a.test calls an MCP server in b.test through lanyard's gateways with b.test's consent; then
# b.test rotates its CA and a.test holds the new CA before it signs anything. Everything stays
# in build/demo-federation; no key is committed anywhere.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
L="$BUILD/lanyard"
D="$BUILD/demo-federation"
rm -rf "$D"; mkdir -p "$D"; chmod 755 "$D"
HINT=4

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
run()  { printf '   $ %s\n' "${*/#$L/lanyard}"; "$@" 2>&1 | sed 's/^/     /'; return "${PIPESTATUS[0]}"; }
free_port() { node -e 's = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; mcp_everything_stop 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
export LANYARD_ROOT="$root" T_TMP="$D"
. "$root/tests/interop/mcp/everything.sh"

say "10. Two trust domains, each with its own CA and server"
PA=$(free_port); PB=$(free_port)
run "$L" --data "$D/a" ca init --trust-domain a.test
run "$L" --data "$D/b" ca init --trust-domain b.test
note "They exchange bootstrap bundles once, out of band; after that each fetches the other's bundle"
note "from its bundle endpoint, authenticated by the endpoint server's own SVID (https_spiffe)."
"$L" --data "$D/a" bundle show >"$D/a-bootstrap.json"
"$L" --data "$D/b" bundle show >"$D/b-bootstrap.json"
run "$L" --data "$D/a" federation add --trust-domain b.test --url "https://127.0.0.1:$PB/" --profile https_spiffe \
    --endpoint-id spiffe://b.test/lanyard/server --bootstrap-bundle "$D/b-bootstrap.json"
run "$L" --data "$D/b" federation add --trust-domain a.test --url "https://127.0.0.1:$PA/" --profile https_spiffe \
    --endpoint-id spiffe://a.test/lanyard/server --bootstrap-bundle "$D/a-bootstrap.json"
U=$(id -u)
run "$L" --data "$D/a" entry create --id spiffe://a.test/agent/research-bot --selector "unix:uid:$U" --federates-with b.test
run "$L" --data "$D/b" entry create --id spiffe://b.test/mcp/files --selector "unix:uid:$U" --dns localhost --federates-with a.test
for d in a b; do
    p=$PA; [ "$d" = b ] && p=$PB
    "$L" --data "$D/$d" server --workload-socket "$D/$d.sock" --health-listen "" --bundle-endpoint "127.0.0.1:$p" \
        --bundle-refresh-hint "${HINT}s" 2>"$D/$d.log" &
    PIDS+=($!)
done
note "Both servers run, each serving its bundle (refresh hint ${HINT}s) and fetching the other's:"
for _ in $(seq 100); do
    "$L" --data "$D/a" federation list 2>/dev/null | grep -q 'source=endpoint' &&
        "$L" --data "$D/b" federation list 2>/dev/null | grep -q 'source=endpoint' && break
    sleep 0.1
done
run "$L" --data "$D/a" federation list
run "$L" --data "$D/b" federation list

say "11. An MCP client in a.test calls an MCP server in b.test"
mcp_everything_start "$D/everything.log" || { note "server-everything did not start"; exit 1; }
GP=$(free_port); CP=$(free_port)
"$L" --data "$D/b" gateway --listen "127.0.0.1:$GP" --upstream "http://127.0.0.1:$MCP_EVERYTHING_PORT" \
    --audience mcp://b.test/files --id spiffe://b.test/mcp/files --socket "$D/b.sock" 2>"$D/gw-b.log" &
PIDS+=($!)
note "b.test decides who may use its server: alice lets the a.test agent call echo, from a.test only."
run "$L" --data "$D/b" consent grant --user alice --client spiffe://a.test/agent/research-bot --scope tools:echo --source-td a.test
"$L" --data "$D/b" token mint --user alice --client spiffe://a.test/agent/research-bot --audience mcp://b.test/files \
    --ttl 10m >"$D/alice.token"
"$L" --data "$D/a" gateway --client --listen "127.0.0.1:$CP" --upstream "https://127.0.0.1:$GP" \
    --server-id spiffe://b.test/mcp/files --id spiffe://a.test/agent/research-bot --token-file "$D/alice.token" \
    --socket "$D/a.sock" 2>"$D/gw-a.log" &
PIDS+=($!)
for f in gw-a gw-b; do
    for _ in $(seq 100); do grep -q '"gateway.listening"' "$D/$f.log" 2>/dev/null && break; sleep 0.1; done
done
call() {
    node "$root/tests/interop/mcp/client.mjs" --url "http://127.0.0.1:$CP/mcp" call echo "{\"message\":\"$1\"}" 2>/dev/null |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for (const l of s.split("\n").filter(Boolean).map(JSON.parse))
            if (l.op === "call") console.log("     echo: " + (l.ok ? JSON.stringify(l.result.content[0].text) : "REFUSED " + l.status + " " + l.message))})' || true
}
note "The a.test agent's client-mode gateway (mTLS with its a.test SVID) -> b.test's gateway:"
call "hello from a.test"

say "12. b.test rotates its CA"
before=$("$L" --data "$D/a" federation show b.test --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).bundle.sequence))')
run "$L" --data "$D/b" ca rotate
after=$("$L" --data "$D/a" federation show b.test --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).bundle.sequence))')
learned=$(grep '"federation.bundle_updated"' "$D/a.log" | grep "\"sequence\":$after," | head -1 | cut -c8-27)
took=$(grep '"ca.took_over"' "$D/b.log" | tail -1 | cut -c8-27)
note "a.test's copy of b.test's bundle: sequence $before -> $after, learned at $learned;"
note "b.test's new CA started signing at $took: a.test knew it first."
call "after the rotation"
trap - EXIT
cleanup
say "Done (part two)"
note "Two trust domains kept their own CAs, trusted each other through their bundle endpoints,"
note "and followed a CA rotation without a failed call. Files are in $D."
