#!/usr/bin/env bash
# lanyard demo: creates a throw-away trust domain under build/demo, issues identities for an MCP
# server and an MCP client, verifies them the way a peer would, shows what gets refused, then runs
# the broker daemon and lets the client fetch and rotate its identity over the Workload API.
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
note "Stop the daemon with SIGTERM: it closes its sockets and exits cleanly."
kill -TERM "$SPID"; wait "$SPID"; note "daemon exit code: $?"
trap - EXIT
note "its log (JSON lines, no keys or tokens): $(wc -l < "$D/server.log") lines, e.g."
grep -m3 -E '"event":"(server.started|entry.created|svid.rotated)"' "$D/server.log" | sed 's/^/     /'

say "Done"
note "The MCP server and client hold short-lived, verifiable identities from $TD, and the"
note "daemon keeps them fresh. Files are in $D. The MCP gateway and federation come next."
