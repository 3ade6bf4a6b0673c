# Sourceable bash helpers around the MCP conformance suite (@modelcontextprotocol/conformance
# 0.1.16, installed in tests/interop/node22 with the Node 22 it needs: on Node 20 it dies at
# start with "fs does not provide an export named 'globSync'").
#
#   . "$LANYARD_ROOT/tests/interop/mcp/conformance.sh"
#   mcp_conformance_run URL OUTDIR [CONFORMANCE ARGS...]
#       runs `conformance server --url URL -o OUTDIR [ARGS]` (e.g. --scenario ping,
#       --suite all|active|pending) with tests/interop/node22's Node first on PATH; its
#       console output goes to OUTDIR.log. Sets MCP_CONFORMANCE_RC to conformance's exit code
#       (1 whenever any check fails, which is normal against server-everything) and returns
#       0 if at least one scenario directory was written, 1 otherwise.
#   mcp_conformance_summary OUTDIR
#       prints one line "SCENARIO CHECK_ID STATUS" per check, sorted (LC_ALL=C), so that two
#       runs (say, direct and through the gateway) can be compared with diff. A scenario
#       directory without checks.json, or with an empty list, gives "SCENARIO - NO-CHECKS";
#       an unreadable checks.json gives "SCENARIO - BAD-CHECKS-JSON".
#   mcp_conformance_node22_path
#       prints the bin directory to put first on PATH for anything else that needs Node 22.
#
# Output layout of 0.1.16 (read from its dist/index.js and checked on runs here): OUTDIR gets
# one directory per scenario named "server-SCENARIO-TIMESTAMP", TIMESTAMP being the ISO time
# with ':' and '.' turned into '-' (server-ping-2026-11-22T10-11-12-123Z). The directory is
# created before the scenario runs; checks.json, written after it, is a JSON array of checks
# {id, name, description, status, timestamp, specReferences, details?, errorMessage?} with
# status SUCCESS, FAILURE, WARNING or INFO. A scenario that throws leaves its directory
# without checks.json (the run only prints the error). Check ids are not fixed per scenario:
# on errors some scenarios report other ids (server-sse-multiple-streams gives
# server-sse-multiple-streams-error instead of its two checks), and a scenario may repeat an id
# (server-sse-polling reports incoming-sse-event twice); the summary keeps every line, so
# repeated ids count. Client-mode runs (`conformance client`) name their directories
# "SCENARIO-TIMESTAMP", and auth scenarios ("auth/metadata-default") nest one level; the
# summary handles those too. Use a fresh OUTDIR per run: two runs in one directory would give
# every scenario twice.
# Against server-everything 2026.8.31 the active suite is 30 scenarios with 32 checks, 13
# passing: most scenarios look for the suite's own fixture names (test_simple_text, ...).
#
# dns-rebinding-protection (what it sends and expects, 0.1.16): it first requires the URL's
# hostname to be localhost, 127.0.0.1 or [::1]; for any other URL both checks fail with
# "non-localhost-url" and nothing is sent. Otherwise it sends two POSTs of an initialize
# request (protocolVersion 2025-11-25, capabilities {}, clientInfo
# conformance-dns-rebinding-test) with undici's request(), each carrying both headers
#   Host: X    and    Origin: http://X
#   1. X = evil.example.com  -> check localhost-host-rebinding-rejected: SUCCESS iff the HTTP
#      status is 4xx (a refused connection or TLS failure is a FAILURE);
#   2. X = the URL's own host:port -> check localhost-host-valid-accepted: SUCCESS iff 2xx.
# So the outcome depends on Host (and Origin) reaching something that validates them:
# server-everything validates neither (check 1 fails: 200), the SDK's createMcpExpressApp
# servers (the JSON-response example) validate Host only, by hostname (check 1 passes: 403).
# A gateway that rewrites Host to the upstream's authority hides evil.example.com from the
# upstream, so check 1 turns into a FAILURE through the gateway unless the gateway itself
# refuses a foreign Host/Origin on its plain-HTTP loopback listener. Over https the Host
# header also becomes undici's TLS server name, so request 1 fails the certificate check
# instead (a FAILURE that says nothing about Host validation).

MCP_CONFORMANCE_DIR=${LANYARD_ROOT:?LANYARD_ROOT must point at the lanyard source tree}/tests/interop/node22
MCP_CONFORMANCE_RC=

mcp_conformance_node22_path() { printf '%s\n' "$MCP_CONFORMANCE_DIR/node_modules/.bin"; }

mcp_conformance_run() {
    local url=$1 out=$2; shift 2
    local bin="$MCP_CONFORMANCE_DIR/node_modules/.bin"
    if [ ! -x "$bin/conformance" ] || [ ! -x "$bin/node" ]; then
        echo "conformance or node 22 missing in $MCP_CONFORMANCE_DIR (run npm ci there)" >"$out.log"
        MCP_CONFORMANCE_RC=127
        return 1
    fi
    mkdir -p "$out"
    # The package's bin is "#!/usr/bin/env node": the Node 22 must come first on PATH.
    PATH="$bin:$PATH" conformance server --url "$url" -o "$out" "$@" >"$out.log" 2>&1
    MCP_CONFORMANCE_RC=$?
    [ -n "$(find "$out" -mindepth 1 -maxdepth 2 -type d -print -quit)" ]
}

mcp_conformance_summary() {
    node - "$1" <<'EOF' | LC_ALL=C sort
const fs = require('node:fs');
const path = require('node:path');
const root = process.argv[2];
const stamp = /-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
const lines = [];
function visit(dir, rel) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        const relPath = rel ? `${rel}/${e.name}` : e.name;
        const full = path.join(dir, e.name);
        if (!stamp.test(e.name)) { visit(full, relPath); continue; }
        const scenario = relPath.replace(stamp, '').replace(/^server-/, '');
        const file = path.join(full, 'checks.json');
        if (!fs.existsSync(file)) { lines.push(`${scenario} - NO-CHECKS`); continue; }
        let checks;
        try { checks = JSON.parse(fs.readFileSync(file, 'utf8')); } catch { checks = null; }
        if (!Array.isArray(checks)) { lines.push(`${scenario} - BAD-CHECKS-JSON`); continue; }
        if (checks.length === 0) { lines.push(`${scenario} - NO-CHECKS`); continue; }
        for (const c of checks) lines.push(`${scenario} ${c?.id ?? '?'} ${c?.status ?? '?'}`);
    }
}
visit(root, '');
if (lines.length) process.stdout.write(lines.join('\n') + '\n');
EOF
}
