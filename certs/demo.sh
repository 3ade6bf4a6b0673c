#!/usr/bin/env bash
# lanyard demo: creates a throw-away trust domain under build/demo, issues identities for an MCP
# server and an MCP client, verifies them the way a peer would, shows what gets refused, runs
# the broker daemon and lets the client fetch and rotate its identity over the Workload API,
# then puts the MCP gateway in front of the MCP reference server: one allowed call, one refused
# for missing consent, one refused confused-deputy attempt, and the audit trail.
# Everything it creates stays in build/demo; no key is committed anywhere.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
L="$BUILD/lanyard"
D="$BUILD/demo"
TD=demo.lanyard.test
rm -rf "$D"; mkdir -p "$D"
export LANYARD_DATA="$D/data"

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
run()  { printf '   $ %s\n' "${*/#$L/lanyard}"; "$@" 2>&1 | sed 's/^/     /'; return "${PIPESTATUS[0]}"; }

say "1. Create a trust domain ($TD) with its own certificate authority"
note "lanyard keeps its CA key (mode 0600) and an SQLite record of everything it issues in $LANYARD_DATA."
run "$L" ca init --trust-domain "$TD" --ca-ttl 7d
note "key files: $(cd "$LANYARD_DATA/keys" && stat -c '%n %a' * | tr '\n' ' ')"

say "2. Issue a short-lived X509-SVID (1 hour) for an MCP server"
note "Its only URI name is the SPIFFE ID; the DNS name lets ordinary TLS clients reach it too."
run "$L" svid mint --id "spiffe://$TD/mcp/server/files" --dns localhost --ttl 1h \
    --out-cert "$D/server.pem" --out-key "$D/server.key"

say "3. Issue an X509-SVID (15 minutes) for an MCP client, an agent runtime"
run "$L" svid mint --id "spiffe://$TD/agent/research-bot" --ttl 15m \
    --out-cert "$D/client.pem" --out-key "$D/client.key"

say "4. Publish the trust bundle: what peers need to trust this domain"
"$L" bundle show --format spiffe > "$D/bundle.json"
"$L" bundle show --format pem > "$D/bundle.pem"
note "SPIFFE bundle JSON (X.509 CA + JWT key) -> $D/bundle.json"
run "$L" bundle parse --trust-domain "$TD" "$D/bundle.json"

say "5. Verify both identities as a peer would (chain, SPIFFE rules, validity)"
run "$L" svid verify --bundle "$TD=$D/bundle.json" "$D/server.pem"
run "$L" svid verify --bundle "$TD=$D/bundle.json" "$D/client.pem"
note "OpenSSL, which lanyard does not use, agrees:"
run openssl verify -x509_strict -purpose sslclient -CAfile "$D/bundle.pem" "$D/client.pem"

say "6. What gets refused"
note "a certificate checked two hours from now (the client's 15-minute SVID has expired):"
later=$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ)
run "$L" svid verify --at "$later" "$D/client.pem" || note "-> refused (exit $?)"
note "a certificate from a trust domain we do not trust:"
LANYARD_DATA="$D/other" "$L" ca init --trust-domain other.lanyard.test >/dev/null
LANYARD_DATA="$D/other" "$L" svid mint --id spiffe://other.lanyard.test/agent/intruder \
    --out-cert "$D/intruder.pem" --out-key "$D/intruder.key" >/dev/null
run "$L" svid verify --bundle "$TD=$D/bundle.json" "$D/intruder.pem" || note "-> refused (exit $?)"
note "an invalid SPIFFE ID:"
run "$L" id parse "spiffe://$TD/agent/../admin" || note "-> refused (exit $?)"

say "7. A JWT-SVID for the client, for an audience (the MCP server)"
"$L" jwt mint --id "spiffe://$TD/agent/research-bot" --audience "spiffe://$TD/mcp/server/files" \
    --ttl 5m > "$D/client.jwt"
note "token written to $D/client.jwt (a bearer credential: it is never logged)"
run "$L" jwt verify --audience "spiffe://$TD/mcp/server/files" "$D/client.jwt"
note "the same token presented to a different server is refused:"
run "$L" jwt verify --audience "spiffe://$TD/mcp/server/billing" "$D/client.jwt" \
    || note "-> refused (exit $?)"

say "8. Run the broker daemon and let workloads fetch their identities themselves"
note "The daemon serves the standard SPIFFE Workload API on a Unix socket. It attests every"
note "caller from the kernel (uid, executable) and hands out only what a registration entry allows."
mkdir -p "$D/run"; chmod 755 "$D/run"
SOCK="$D/run/workload.sock"
"$L" server --workload-socket "$SOCK" --health-listen "" 2>"$D/server.log" &
SPID=$!
trap 'kill "$SPID" 2>/dev/null; kill "${HPID:-}" 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 50); do [ -S "$SOCK" ] && [ -S "$LANYARD_DATA/admin.sock" ] && break; sleep 0.1; done
run "$L" server status
note "No entry matches this user yet, so the Workload API gives nothing (never a default identity):"
run "$L" helper --socket "$SOCK" --dir "$D/agent" --once --log-level warn || note "-> refused (exit $?)"
note "Register the MCP client agent: any process of uid $(id -u) gets spiffe://$TD/agent/research-bot,"
note "with SVIDs that live 20 seconds (short on purpose, to watch them rotate):"
run "$L" entry create --id "spiffe://$TD/agent/research-bot" --selector "unix:uid:$(id -u)" --ttl 20s
note "lanyard helper fetches the SVID over the Workload API and keeps it on disk for programs"
note "that read files, rewriting the files atomically at every rotation:"
"$L" helper --socket "$SOCK" --dir "$D/agent" --cmd "$D/on-rotate.sh" 2>"$D/helper.log" &
HPID=$!
cat > "$D/on-rotate.sh" <<'ROT'
#!/bin/sh
openssl x509 -in "$(dirname "$0")/agent/svid.pem" -noout -serial -enddate | tr '\n' ' ' >> "$(dirname "$0")/rotations.log"
echo >> "$(dirname "$0")/rotations.log"
ROT
chmod 755 "$D/on-rotate.sh"
for _ in $(seq 100); do [ -s "$D/rotations.log" ] && break; sleep 0.1; done
note "files: $(cd "$D/agent" && ls | tr '\n' ' ')"
run openssl verify -x509_strict -CAfile "$D/agent/bundle.pem" "$D/agent/svid.pem"
note "waiting for the daemon to rotate the SVID twice (it re-issues before half-life)..."
for _ in $(seq 240); do [ "$(wc -l < "$D/rotations.log")" -ge 3 ] && break; sleep 0.1; done
note "every SVID the helper received (serial, expiry):"
sed 's/^/     /' "$D/rotations.log"
kill "$HPID"; wait "$HPID" 2>/dev/null

say "9. An MCP client calls an MCP server through lanyard"
note "Upstream: the MCP reference server (@modelcontextprotocol/server-everything) on loopback."
note "In front of it: 'lanyard gateway', mutual TLS with its own SVID. Beside each agent: a"
note "client-mode gateway, so the unmodified MCP SDK client speaks plain HTTP on loopback."
export LANYARD_ROOT="$root" T_TMP="$D"
. "$root/tests/interop/mcp/everything.sh"
mcp_everything_start "$D/everything.log" || { note "server-everything did not start: $(tail -3 "$D/everything.log")"; exit 1; }
GW="spiffe://$TD/mcp/server/files"; BOT="spiffe://$TD/agent/research-bot"; OTHER="spiffe://$TD/agent/other-bot"
AUD=mcp://files
run "$L" entry create --id "$GW" --selector "unix:uid:$(id -u)" --dns localhost --ttl 10m
run "$L" entry create --id "$OTHER" --selector "unix:uid:$(id -u)" --ttl 10m
free_port() { node -e 's = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
GP=$(free_port); BP=$(free_port); OP=$(free_port)
"$L" gateway --listen "127.0.0.1:$GP" --upstream "http://127.0.0.1:$MCP_EVERYTHING_PORT" --audience "$AUD" --id "$GW" \
    --socket "$SOCK" 2>"$D/gateway.log" &
GPID=$!
trap 'kill "$SPID" "$GPID" "${BPID:-}" "${OPID:-}" "${DPID:-}" 2>/dev/null; mcp_everything_stop; wait 2>/dev/null' EXIT
note "Alice consents: research-bot may call the echo tool for her. Nothing else, no other client."
run "$L" consent grant --user alice --client "$BOT" --scope tools:echo
"$L" token mint --user alice --client "$BOT" --audience "$AUD" --ttl 10m >"$D/alice-bot.token"
"$L" token mint --user alice --client "$OTHER" --audience "$AUD" --ttl 10m >"$D/alice-other.token"
note "Alice's tokens for both agents (audience $AUD) are in $D/*.token (never printed, never logged)."
"$L" gateway --client --listen "127.0.0.1:$BP" --upstream "https://127.0.0.1:$GP" --server-id "$GW" \
    --id "$BOT" --token-file "$D/alice-bot.token" --socket "$SOCK" 2>"$D/gateway-bot.log" &
BPID=$!
"$L" gateway --client --listen "127.0.0.1:$OP" --upstream "https://127.0.0.1:$GP" --server-id "$GW" \
    --id "$OTHER" --token-file "$D/alice-other.token" --socket "$SOCK" 2>"$D/gateway-other.log" &
OPID=$!
for f in gateway gateway-bot gateway-other; do
    for _ in $(seq 100); do grep -q '"gateway.listening"' "$D/$f.log" 2>/dev/null && break; sleep 0.1; done
    grep -q '"gateway.listening"' "$D/$f.log" || { note "$f did not start: $(tail -3 "$D/$f.log")"; exit 1; }
done
mcp() { # LABEL PORT OPS...: the MCP SDK client; one line per operation
    local label=$1 port=$2; shift 2
    printf '   %s (MCP SDK client) -> http://127.0.0.1:%s/mcp\n' "$label" "$port"
    node "$root/tests/interop/mcp/client.mjs" --url "http://127.0.0.1:$port/mcp" "$@" 2>/dev/null |
        node -e 'let s = ""; process.stdin.on("data", (d) => s += d).on("end", () => {
            for (const l of s.split("\n").filter(Boolean).map(JSON.parse)) {
                let what;
                if (l.op === "transport-errors") continue;
                if (!l.ok) what = `REFUSED: HTTP ${l.status ?? "?"}, JSON-RPC ${l.code ?? "?"}: ${l.rpc_message ?? l.message}`;
                else if (l.op === "list-tools") what = "tools " + l.result.tools.map((t) => t.name).join(", ");
                else if (l.op === "call") what = JSON.stringify(l.result.content[0].text);
                else if (l.op === "connect") what = `session opened with ${l.result.server.name}`;
                else what = JSON.stringify(l.result).slice(0, 100);
                console.log(`     ${l.op}: ${what}`);
            } })' || true
}
note "research-bot lists the tools (filtered to what it may call), calls echo, then tries get-env:"
mcp research-bot "$BP" list-tools call echo '{"message":"hello from research-bot"}' call get-env '{}'
note "other-bot holds a valid token of Alice too, but Alice never consented to other-bot:"
mcp other-bot "$OP" call echo '{"message":"let me in"}'
note "The confused deputy: other-bot replays the token Alice gave research-bot:"
DP=$(free_port)
"$L" gateway --client --listen "127.0.0.1:$DP" --upstream "https://127.0.0.1:$GP" --server-id "$GW" \
    --id "$OTHER" --token-file "$D/alice-bot.token" --socket "$SOCK" 2>"$D/gateway-deputy.log" &
DPID=$!
for _ in $(seq 100); do grep -q '"gateway.listening"' "$D/gateway-deputy.log" 2>/dev/null && break; sleep 0.1; done
mcp other-bot "$DP" call echo '{"message":"with research-bot token"}'
kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null || true
note "Every decision is in the hash-chained audit log (no token in it):"
"$L" audit list 2>&1 | tail -8 | cut -c1-160 | sed 's/^/     /'
run "$L" audit verify
kill "$BPID" "$OPID" "$GPID" 2>/dev/null; wait "$BPID" "$OPID" "$GPID" 2>/dev/null || true
mcp_everything_stop || true

note "Stop the daemon with SIGTERM: it closes its sockets and exits cleanly."
kill -TERM "$SPID"; wait "$SPID"; note "daemon exit code: $?"
trap - EXIT
note "its log (JSON lines, no keys or tokens): $(wc -l < "$D/server.log") lines, e.g."
grep -m3 -E '"event":"(server.started|entry.created|svid.rotated)"' "$D/server.log" | sed 's/^/     /'

say "Done (part one)"
note "The MCP server and client hold short-lived, verifiable identities from $TD, and the"
note "daemon keeps them fresh; the gateway lets an agent do exactly what its user consented to,"
note "refuses the rest, and records why. Files are in $D."
# Part two: federation between two trust domains (also `make demo-federation` on its own).
BUILD="$BUILD" "$root/certs/demo-federation.sh"
