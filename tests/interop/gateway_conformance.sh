#!/usr/bin/env bash
# The MCP conformance suite (@modelcontextprotocol/conformance, Node 22) against
# server-everything directly and through the lanyard gateway pair (client-mode gateway on
# loopback -> mutual TLS -> server-mode gateway -> server-everything), compared check by
# check. The agent holds an explicit '*' consent, so the gateway refuses nothing the suite
# asks for; any difference is the gateway changing MCP traffic. The one expected difference
# is dns-rebinding-protection: server-everything does not validate Host, the client-mode
# gateway does (a foreign Host gets 403 on its loopback listener), so that single check
# passes only through the gateway.
. "$LANYARD_ROOT/tests/lib.sh"
MCP="$LANYARD_ROOT/tests/interop/mcp"
. "$MCP/everything.sh"
. "$MCP/conformance.sh"
TD=conf.lanyard.test
D="$T_TMP/data"
SOCK="$T_TMP/workload.sock"
AUD=mcp://everything
GWID="spiffe://$TD/mcp/gateway"
AGENT="spiffe://$TD/agent/conformance"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    mcp_everything_stop
}
trap 'cleanup; t_cleanup' EXIT
L() { "$LANYARD" --data "$D" "$@"; }
wait_log() { local i; for i in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

"$LANYARD" --data "$D" server --trust-domain "$TD" --workload-socket "$SOCK" --health-listen "" \
    2>"$T_TMP/server.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$SOCK" ] && [ -S "$D/admin.sock" ] && break; sleep 0.1; done
L entry create --id "$GWID" --selector "unix:uid:$(id -u)" --dns localhost >/dev/null &&
    L entry create --id "$AGENT" --selector "unix:uid:$(id -u)" >/dev/null &&
    L consent grant --user alice --client "$AGENT" --scope '*' >/dev/null &&
    L token mint --user alice --client "$AGENT" --audience "$AUD" --ttl 1h >"$T_TMP/token" &&
    ok "trust domain, entries, a '*' consent and a token for the conformance agent" ||
    { not_ok "setup" "$(tail -5 "$T_TMP/server.log")"; exit 1; }

mcp_everything_start "$T_TMP/everything.log" || { not_ok "server-everything starts" "$(tail "$T_TMP/everything.log")"; exit 1; }
GP=$(mcp_free_port)
"$LANYARD" --data "$D" gateway --listen "127.0.0.1:$GP" --upstream "http://127.0.0.1:$MCP_EVERYTHING_PORT" \
    --audience "$AUD" --id "$GWID" --socket "$SOCK" 2>"$T_TMP/gw.log" &
PIDS+=($!)
CP=$(mcp_free_port)
"$LANYARD" --data "$D" gateway --client --listen "127.0.0.1:$CP" --upstream "https://127.0.0.1:$GP" \
    --server-id "$GWID" --id "$AGENT" --token-file "$T_TMP/token" --socket "$SOCK" 2>"$T_TMP/cgw.log" &
PIDS+=($!)
wait_log "$T_TMP/gw.log" '"gateway.listening"' && wait_log "$T_TMP/cgw.log" '"gateway.listening"' &&
    ok "the gateway pair listens" || { not_ok "gateways start" "$(tail -3 "$T_TMP/gw.log" "$T_TMP/cgw.log")"; exit 1; }

# ---- the same suite, twice ----------------------------------------------------------------
mcp_conformance_run "$MCP_EVERYTHING_URL" "$T_TMP/direct" ||
    { not_ok "conformance runs against server-everything" "$(tail -20 "$T_TMP/direct.log")"; exit 1; }
mcp_conformance_run "http://127.0.0.1:$CP/mcp" "$T_TMP/gw" ||
    { not_ok "conformance runs through the gateway pair" "$(tail -20 "$T_TMP/gw.log")"; exit 1; }
mcp_conformance_summary "$T_TMP/direct" >"$T_TMP/sum-direct.txt"
mcp_conformance_summary "$T_TMP/gw" >"$T_TMP/sum-gw.txt"
n_sc=$(cut -d' ' -f1 "$T_TMP/sum-direct.txt" | sort -u | wc -l)
n_ok=$(grep -c ' SUCCESS$' "$T_TMP/sum-direct.txt")
[ "$n_sc" -ge 25 ] && ! grep -qE ' (NO-CHECKS|BAD-CHECKS-JSON)$' "$T_TMP/sum-direct.txt" "$T_TMP/sum-gw.txt" &&
    ok "both runs report every scenario ($n_sc scenarios, $n_ok checks passing directly)" ||
    not_ok "conformance summaries are complete" "$(head -40 "$T_TMP/sum-direct.txt")"

REBIND='dns-rebinding-protection localhost-host-rebinding-rejected'
grep -v "^$REBIND " "$T_TMP/sum-direct.txt" >"$T_TMP/cmp-direct.txt"
grep -v "^$REBIND " "$T_TMP/sum-gw.txt" >"$T_TMP/cmp-gw.txt"
if diff "$T_TMP/cmp-direct.txt" "$T_TMP/cmp-gw.txt" >"$T_TMP/sum.diff"; then
    ok "scenario by scenario, check by check: the same results through the gateway pair ($(wc -l <"$T_TMP/cmp-gw.txt") checks)"
else
    not_ok "identical conformance results through the gateway pair" "$(cat "$T_TMP/sum.diff")"
fi
r_direct=$(sed -n "s/^$REBIND //p" "$T_TMP/sum-direct.txt")
r_gw=$(sed -n "s/^$REBIND //p" "$T_TMP/sum-gw.txt")
[ "$r_direct $r_gw" = "FAILURE SUCCESS" ] &&
    ok "dns-rebinding: server-everything accepts a foreign Host, the client-mode gateway refuses it" ||
    not_ok "dns-rebinding outcomes direct / gateway" "$r_direct $r_gw"

# ---- what went through -------------------------------------------------------------------
L audit list --json >"$T_TMP/audit.json" 2>"$T_TMP/audit.err"
node -e 'const a = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
         const allow = a.filter((r) => r.decision === "allow" && r.client_id === process.argv[2]);
         const m = new Set(allow.map((r) => r.method));
         console.log(allow.length, ["initialize", "tools/call", "resources/read", "prompts/get"].every((x) => m.has(x)),
                     a.filter((r) => r.decision === "deny").length)' "$T_TMP/audit.json" "$AGENT" >"$T_TMP/audit.sum"
read -r n_allow all_methods n_deny <"$T_TMP/audit.sum"
[ "${n_allow:-0}" -gt 30 ] && [ "$all_methods" = true ] && [ "$n_deny" = 0 ] &&
    ok "the audit log holds the suite's $n_allow requests, all allowed for the agent" ||
    not_ok "audit of the conformance run" "$(cat "$T_TMP/audit.sum")"
run L audit verify
expect_rc "the audit chain verifies after the run" 0
