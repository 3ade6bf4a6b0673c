#!/usr/bin/env bash
# What a.test's server does when b.test's bundle endpoint misbehaves. The endpoint is Node's own
# HTTPS server (tests/interop/fed_endpoint.mjs) presenting b.test's endpoint SVID and serving
# whatever the test writes: a good bundle, garbage, another domain's bundle, an older bundle;
# then a certificate for the wrong SPIFFE ID; then nothing at all. Each case must be refused
# with its own clear log line while the last good bundle stays in use (the Workload API keeps
# handing it out), and a good bundle afterwards is taken again. An https_web relationship whose
# endpoint certificate chains to an unknown CA is refused in TLS.
. "$LANYARD_ROOT/tests/lib.sh"
MCP="$LANYARD_ROOT/tests/interop/mcp"
. "$MCP/everything.sh"
DA="$T_TMP/a"; DB="$T_TMP/b"
RUN="$T_TMP/run"; mkdir -p "$RUN"; chmod 755 "$RUN"
SA="$RUN/a.sock"
BODY="$T_TMP/served.json"
PIDS=()
FAKE=
cleanup() {
    local p
    [ -n "$FAKE" ] && kill "$FAKE" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
}
trap 'cleanup; t_cleanup' EXIT
A() { "$LANYARD" --data "$DA" "$@"; }
B() { "$LANYARD" --data "$DB" "$@"; }
jsonq() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);
    let r; try { r = eval(process.argv[1]); } catch (e) { r = "EVAL-ERROR " + e.message; }
    process.stdout.write(typeof r === "string" ? r : JSON.stringify(r))})' "$1"; }
fp() { openssl x509 -noout -fingerprint -sha256 | cut -d= -f2; }
PORT=$(mcp_free_port)
fake_start() { # CERT KEY
    [ -n "$FAKE" ] && { kill "$FAKE" 2>/dev/null; wait "$FAKE" 2>/dev/null; }
    node "$LANYARD_ROOT/tests/interop/fed_endpoint.mjs" --cert "$1" --key "$2" --body "$BODY" --port "$PORT" \
        >>"$T_TMP/fake.log" 2>&1 &
    FAKE=$!
    local i; for i in $(seq 50); do ss -Htln "sport = :$PORT" | grep -q . && return 0; sleep 0.1; done
    return 1
}
fake_stop() { [ -n "$FAKE" ] && { kill "$FAKE" 2>/dev/null; wait "$FAKE" 2>/dev/null; }; FAKE=; }
# log_after N EVENT: the first log line after line N of a.log with this event
log_after() { tail -n +"$(($1 + 1))" "$T_TMP/a.log" | grep "\"event\":\"$2\"" | head -1; }
lines() { wc -l <"$T_TMP/a.log"; }
# refresh_case NAME EVENT PATTERN: ask a.test to fetch now; expect exit 1, a log line EVENT
# matching PATTERN, and the bundle a.test uses unchanged (sequence and CA)
refresh_case() {
    local name=$1 event=$2 pat=$3 n line
    n=$(lines)
    run A federation refresh b.test
    sleep 0.2
    line=$(log_after "$n" "$event")
    if [ "$T_RC" = 1 ] && printf '%s' "$line" | grep -qE "$pat" && printf '%s' "$line" | grep -q "\"kept_sequence\":$KEPT"; then
        ok "$name: refused with '$event' ($(printf '%s' "$line" | jsonq 'j.reason' | cut -c1-90)), sequence $KEPT kept"
    else
        not_ok "$name" "rc $T_RC out $T_OUT err $T_ERR" "log: $line"
    fi
}
served_ca() { # the CA the Workload API hands the agent for b.test
    rm -rf "$T_TMP/files"; "$LANYARD" helper --socket "$SA" --dir "$T_TMP/files" --once >/dev/null 2>&1
    fp <"$T_TMP/files/federated/b.test.pem" 2>/dev/null
}

# ---- b.test exists only as a data directory: its bundles and its endpoint SVID -------------------------
A ca init --trust-domain a.test >/dev/null && B ca init --trust-domain b.test >/dev/null
B bundle show >"$T_TMP/b1.json"
B svid mint --id spiffe://b.test/lanyard/server --dns localhost --ttl 2h --out-cert "$T_TMP/ep.pem" --out-key "$T_TMP/ep.key" >/dev/null &&
    B svid mint --id spiffe://b.test/not/the/endpoint --dns localhost --ttl 2h --out-cert "$T_TMP/imp.pem" --out-key "$T_TMP/imp.key" >/dev/null &&
    ok "b.test's bundle and two SVIDs: its endpoint's and another workload's" || not_ok "b.test setup"
"$LANYARD" --data "$T_TMP/c" ca init --trust-domain c.test >/dev/null
"$LANYARD" --data "$T_TMP/c" bundle show >"$T_TMP/c.json"

A federation add --trust-domain b.test --url "https://127.0.0.1:$PORT/bundle" --profile https_spiffe \
    --endpoint-id spiffe://b.test/lanyard/server --bootstrap-bundle "$T_TMP/b1.json" >/dev/null
A entry create --id spiffe://a.test/agent --selector "unix:uid:$(id -u)" --federates-with b.test >/dev/null
cp "$T_TMP/b1.json" "$BODY"
fake_start "$T_TMP/ep.pem" "$T_TMP/ep.key" || { not_ok "stand-in endpoint starts" "$(cat "$T_TMP/fake.log")"; exit 1; }
"$LANYARD" --data "$DA" server --workload-socket "$SA" --health-listen "" 2>"$T_TMP/a.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$SA" ] && [ -S "$DA/admin.sock" ] && break; sleep 0.1; done

# ---- the good case, then a rotation, to have a last good bundle with a sequence -----------------------
# b.test's bundles are served with a 16 s refresh hint, so the server's own retries (never
# slower than a quarter of the hint) are quick enough to watch.
hint16() { node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    j.spiffe_refresh_hint = 16; process.stdout.write(JSON.stringify(j))' "$1"; }
B ca rotate >/dev/null
B bundle show >"$T_TMP/b2.raw"; hint16 "$T_TMP/b2.raw" >"$T_TMP/b2.json"
cp "$T_TMP/b2.json" "$BODY"
run A federation refresh b.test
KEPT=$(jsonq 'j.spiffe_sequence' <"$T_TMP/b2.json")
[ "$T_RC" = 0 ] && [ "$(A federation show b.test --json | jsonq 'j.bundle.sequence + " " + j.bundle.source')" = "$KEPT endpoint" ] &&
    ok "a good bundle from the endpoint is taken (sequence $KEPT)" || not_ok "good bundle" "$T_OUT $T_ERR"
CA_NOW=$(served_ca)
[ -n "$CA_NOW" ] && ok "the agent receives b.test's bundle over the Workload API" || not_ok "served bundle"

# ---- the endpoint goes down: refused, retried on the server's own schedule with growing delays ----------
# Every failure from here on counts: the server's own schedule may fail once before the
# refresh below does (its regular fetch can fall just after the stop).
n=$(lines)
fake_stop
refresh_case "an endpoint that is down" federation.fetch_failed '[Cc]onnection refused'
sleep 6
delays=$(tail -n +"$((n + 1))" "$T_TMP/a.log" | grep '"event":"federation.fetch_failed"' |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(s.split("\n").filter(Boolean).map((l)=>JSON.parse(l).retry_in_seconds).join(" ")))')
printf '%s' "$delays" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=s.trim().split(/ +/).map(Number);
    process.exit(v.length >= 2 && v.every((x, i) => i === 0 || x >= v[i - 1]) && v[v.length - 1] > v[0] && v.every((x) => x <= 4) ? 0 : 1)})' &&
    ok "while it is down the server retries by itself, backing off ($delays s, never beyond a quarter of the hint)" ||
    not_ok "backoff" "$delays"

# ---- each misbehaviour, refused, the last good bundle kept -------------------------------------------
fake_start "$T_TMP/ep.pem" "$T_TMP/ep.key"
printf '<html><body>maintenance</body></html>\n' >"$BODY"
refresh_case "an endpoint serving garbage" federation.bundle_refused 'not a SPIFFE bundle'
cp "$T_TMP/c.json" "$BODY"
refresh_case "an endpoint serving another trust domain's bundle" federation.bundle_refused 'spiffe://c\.test'
hint16 "$T_TMP/b1.json" >"$BODY"
refresh_case "an endpoint serving an older bundle (lower sequence)" federation.bundle_refused 'lower than'
printf '{"keys":[],"spiffe_sequence":99}' >"$BODY"
refresh_case "an endpoint serving an empty bundle" federation.bundle_refused 'holds no authority'
cp "$T_TMP/b2.json" "$BODY"
fake_start "$T_TMP/imp.pem" "$T_TMP/imp.key"
refresh_case "an endpoint whose certificate is another SPIFFE ID" federation.bundle_refused 'not the expected spiffe://b\.test/lanyard/server'
[ "$(served_ca)" = "$CA_NOW" ] && ok "through all of that the agent kept receiving the last good bundle" || not_ok "last good bundle served"
A federation show b.test --json | jsonq 'Boolean(j.last_error) && j.bundle.sequence === '"$KEPT" | grep -qx true &&
    ok "federation show reports the last error and the kept bundle" || not_ok "federation show" "$(A federation show b.test)"

# ---- back to normal: a newer bundle is taken by the server's own schedule -------------------------------
B ca rotate >/dev/null
B bundle show >"$T_TMP/b3.raw"; hint16 "$T_TMP/b3.raw" >"$T_TMP/b3.json"
S3=$(jsonq 'j.spiffe_sequence' <"$T_TMP/b3.json")
n=$(lines)
cp "$T_TMP/b3.json" "$BODY"
fake_start "$T_TMP/ep.pem" "$T_TMP/ep.key"
for _ in $(seq 100); do log_after "$n" federation.bundle_updated | grep -q . && break; sleep 0.1; done
log_after "$n" federation.bundle_updated | grep -q "\"sequence\":$S3," &&
    ok "once the endpoint behaves again the server takes the newer bundle by itself (sequence $S3)" ||
    not_ok "recovery" "$(tail -3 "$T_TMP/a.log")"
[ "$(served_ca)" != "$CA_NOW" ] && ok "and the agent receives it" || not_ok "new bundle served"

# ---- https_web with a certificate from an unknown CA ----------------------------------------------------
W="$T_TMP/web"; mkdir -p "$W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" -out "$W/ca.pem" -days 1 \
    -subj "/CN=trusted web CA" >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other.key" -out "$W/other.pem" -days 1 \
    -subj "/CN=localhost" -addext subjectAltName=DNS:localhost >/dev/null 2>&1
"$LANYARD" --data "$T_TMP/d" ca init --trust-domain d.test >/dev/null
"$LANYARD" --data "$T_TMP/d" bundle show >"$BODY"
fake_start "$W/other.pem" "$W/other.key"
A federation add --trust-domain d.test --url "https://localhost:$PORT/" --profile https_web --ca "$W/ca.pem" >/dev/null
n=$(lines)
run A federation refresh d.test
line=$(log_after "$n" federation.fetch_failed)
[ "$T_RC" = 1 ] && printf '%s' "$line" | grep -qiE 'certificate|SSL|TLS' &&
    ok "https_web: an endpoint certificate from an unknown CA fails in TLS ($(printf '%s' "$line" | jsonq 'j.reason' | cut -c1-80))" ||
    not_ok "https_web unknown CA" "$T_RC $T_ERR" "$line"
A bundle list --json | jsonq 'j.some((b) => b.trust_domain === "d.test")' | grep -qx false &&
    ok "no bundle is stored for d.test" || not_ok "d.test has no bundle"

# ---- a static bundle set (and deleted) while the server runs reaches the workloads at once --------
"$LANYARD" --data "$T_TMP/e" ca init --trust-domain e.test >/dev/null
"$LANYARD" --data "$T_TMP/e" bundle show --format pem >"$T_TMP/e.pem"
A entry create --id spiffe://a.test/agent/e --selector "unix:uid:$(id -u)" --federates-with e.test >/dev/null
A bundle set --trust-domain e.test "$T_TMP/e.pem" >/dev/null
"$LANYARD" helper --socket "$SA" --dir "$T_TMP/efiles" 2>"$T_TMP/ehelper.log" &
HP=$!
for _ in $(seq 50); do [ -s "$T_TMP/efiles/federated/e.test.pem" ] && break; sleep 0.1; done
[ "$(fp <"$T_TMP/efiles/federated/e.test.pem" 2>/dev/null)" = "$(fp <"$T_TMP/e.pem")" ] &&
    ok "bundle set on a running server: the workload's open stream receives e.test's bundle" ||
    not_ok "static bundle delivered" "$(ls -R "$T_TMP/efiles" 2>&1 | head)"
A bundle delete --trust-domain e.test >/dev/null
for _ in $(seq 50); do [ ! -e "$T_TMP/efiles/federated/e.test.pem" ] && break; sleep 0.1; done
[ ! -e "$T_TMP/efiles/federated/e.test.pem" ] && [ -s "$T_TMP/efiles/federated/b.test.pem" ] &&
    ok "bundle delete: the stream drops e.test's bundle and keeps b.test's" || not_ok "static bundle removed"
kill "$HP"; wait "$HP" 2>/dev/null || true
