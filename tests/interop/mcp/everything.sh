# Sourceable bash helpers that run the upstream MCP servers of lanyard's gateway tests on
# loopback, each on a free port:
#   - server-everything (@modelcontextprotocol/server-everything), streamable HTTP transport:
#     SSE responses, sessions, the standalone GET stream, resumability;
#   - the MCP SDK's example jsonResponseStreamableHttp server: application/json responses,
#     sessions, GET answered with 405.
#
#   . "$LANYARD_ROOT/tests/interop/mcp/everything.sh"
#   mcp_everything_start LOGFILE [NAME=VALUE]...   # sets MCP_EVERYTHING_PID/_PORT/_URL
#   mcp_everything_stop
#   mcp_json_start LOGFILE [NAME=VALUE]...         # sets MCP_JSON_PID/_PORT/_URL
#   mcp_json_stop
#   mcp_free_port                                  # prints a port that was free just now
#   mcp_wait_http URL PID [SECONDS]                # polls URL with curl until it answers
#
# The start functions return 0 once the server answers HTTP on its URL, 1 otherwise (the log
# says why). Call them directly, not in $(...) or a pipeline: the server must be a child of
# the calling shell so the stop function can wait for it. Stop sends SIGTERM, then SIGKILL
# after 5 s.
#
# Both servers listen on every interface by themselves; bind-loopback.cjs (node --require)
# keeps them on 127.0.0.1. The environment is scrubbed to PATH, HOME, LANG and the port,
# plus any NAME=VALUE given: server-everything's get-env tool returns the whole environment
# to any client. The SDK example hard-codes port 3000 and reads no environment variable for
# it (checked in SDK 1.32.2: `const PORT = 3000;`), so bind-loopback.cjs moves it with
# LANYARD_PORT_MAP=3000:PORT; its log still says "listening on port 3000".
# Ports: the kernel picks a free one (port 0 on 127.0.0.1); if another process takes it before
# the server binds, the server exits on EADDRINUSE and the start function tries a new port
# (up to 5 times). A port answering HTTP counts only while our process is alive and has
# logged that it listens, so a foreign service on the port is never mistaken for ours.

MCP_HERE=${LANYARD_ROOT:?LANYARD_ROOT must point at the lanyard source tree}/tests/interop/mcp
MCP_MODULES=$LANYARD_ROOT/tests/interop/node_modules
MCP_EVERYTHING_JS=$MCP_MODULES/@modelcontextprotocol/server-everything/dist/index.js
MCP_JSON_JS=$MCP_MODULES/@modelcontextprotocol/sdk/dist/esm/examples/server/jsonResponseStreamableHttp.js

mcp_free_port() {
    node -e 'const s = require("node:net").createServer();
             s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# mcp_wait_http URL PID [SECONDS]: 0 as soon as URL gives any HTTP status (curl's code is not
# 000) while PID lives; 1 if PID exits or SECONDS (default 15) pass.
mcp_wait_http() {
    local url=$1 pid=$2 secs=${3:-15} code deadline
    deadline=$((SECONDS + secs))
    while [ $SECONDS -le $deadline ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null)
        [ -n "$code" ] && [ "$code" != 000 ] && return 0
        sleep 0.1
    done
    return 1
}

# _mcp_start PREFIX LOGFILE PORTMODE SCRIPT ARG [NAME=VALUE]...
# PORTMODE "env" passes PORT=N; "map" passes LANYARD_PORT_MAP=3000:N.
_mcp_start() {
    local prefix=$1 log=$2 mode=$3 script=$4 arg=$5; shift 5
    local node port pid attempt portenv off
    node=$(command -v node) || { echo "node not found" >>"$log"; return 1; }
    [ -f "$script" ] || { echo "$script missing (run npm ci in tests/interop)" >>"$log"; return 1; }
    for attempt in 1 2 3 4 5; do
        port=$(mcp_free_port) || return 1
        if [ "$mode" = env ]; then portenv="PORT=$port"; else portenv="LANYARD_PORT_MAP=3000:$port"; fi
        echo "== start $prefix on 127.0.0.1:$port (attempt $attempt)" >>"$log"
        off=$(stat -c %s "$log")
        # $arg is empty for the SDK example; ${arg:+...} keeps it from becoming an argument.
        env -i PATH="$(dirname "$node"):/usr/bin:/bin" HOME="${T_TMP:-/tmp}" LANG=C.UTF-8 \
            LANYARD_BIND_HOST=127.0.0.1 "$portenv" "$@" \
            "$node" --require "$MCP_HERE/bind-loopback.cjs" "$script" ${arg:+"$arg"} >>"$log" 2>&1 &
        pid=$!
        # Ours once it logged "listening" (printed by the listen callback, after the bind).
        local deadline=$((SECONDS + 15)) up=
        while [ $SECONDS -le $deadline ] && kill -0 "$pid" 2>/dev/null; do
            if tail -c +$((off + 1)) "$log" | grep -q 'listening on port'; then up=1; break; fi
            sleep 0.05
        done
        if [ -n "$up" ] && mcp_wait_http "http://127.0.0.1:$port/mcp" "$pid" 15; then
            printf -v "${prefix}_PID" %s "$pid"
            printf -v "${prefix}_PORT" %s "$port"
            printf -v "${prefix}_URL" %s "http://127.0.0.1:$port/mcp"
            return 0
        fi
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        tail -c +$((off + 1)) "$log" | grep -q EADDRINUSE || return 1
    done
    return 1
}

_mcp_stop() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# server-everything 2026.8.31: `node dist/index.js streamableHttp`, env PORT, endpoint /mcp.
mcp_everything_start() {
    local log=$1; shift
    MCP_EVERYTHING_PID= MCP_EVERYTHING_PORT= MCP_EVERYTHING_URL=
    _mcp_start MCP_EVERYTHING "$log" env "$MCP_EVERYTHING_JS" streamableHttp "$@"
}
mcp_everything_stop() { _mcp_stop "${MCP_EVERYTHING_PID:-}"; MCP_EVERYTHING_PID=; }

# The SDK 1.32.2 example with enableJsonResponse: tools greet and multi-greet, endpoint /mcp.
# Its Express app (createMcpExpressApp) answers 403 to a Host that is not localhost,
# 127.0.0.1 or [::1], whatever the port.
mcp_json_start() {
    local log=$1; shift
    MCP_JSON_PID= MCP_JSON_PORT= MCP_JSON_URL=
    _mcp_start MCP_JSON "$log" map "$MCP_JSON_JS" "" "$@"
}
mcp_json_stop() { _mcp_stop "${MCP_JSON_PID:-}"; MCP_JSON_PID=; }
