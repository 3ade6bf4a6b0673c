#!/usr/bin/env bash
# kill -9 of a real `lanyard server` in the middle of entry creation (CLI through the admin
# socket) and issuance (a grpc-js client whose entitlements grow with every entry), several
# rounds on the same data directory: after each, the database is intact, every entry the CLI
# reported exists whole (no orphan selector rows), the CA key files are there and 0600, the CA
# still verifies a fresh SVID, and the client gets SVIDs again. Then bad input against the real
# server (gRPC framing, oversized messages, admin socket garbage and oversized frames, invalid
# selectors, duplicates): each refused clearly, and the server keeps serving. Bounded to < 60 s.
# (Transport edge cases against the stub server: tests/interop/grpc_transport.sh; HTTP text on the
# admin socket, random bytes on the Workload API socket, a duplicate and an unknown selector
# type through the CLI: tests/interop/workload_api.sh.)
. "$LANYARD_ROOT/tests/lib.sh"
TD=crash.lanyard.test
D="$T_TMP/data"
DB="$D/lanyard.db"
RUN="$T_TMP/run"
SOCK="$RUN/workload.sock"
LOG="$T_TMP/server.log"
IOP="$LANYARD_ROOT/tests/interop"
NODE="node $IOP/wapi_broker.mjs"
ROUNDS=4
chmod 755 "$T_TMP"; mkdir -p "$RUN"; chmod 755 "$RUN"
UID_NOW=$(id -u); GID_NOW=$(id -g)
SPID=""; CPID=""; WPID=""
START=$SECONDS
stop_all() {
    local p
    for p in "$CPID" "$WPID" "$SPID"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    return 0
}
trap 'stop_all; t_cleanup' EXIT

start_server() {
    "$LANYARD" --data "$D" server --trust-domain "$TD" --workload-socket "$SOCK" --health-listen "" 2>>"$LOG" &
    SPID=$!
    for _ in $(seq 100); do
        "$LANYARD" --data "$D" server status >/dev/null 2>&1 && return 0
        kill -0 "$SPID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
# creator ROUND: entries through the CLI until killed (bounded); "ID NAME" of each one reported
creator() {
    local r=$1 i id
    for i in $(seq 1 200); do
        if id=$("$LANYARD" --data "$D" entry create --id "spiffe://$TD/c/$r/$i" \
            --selector "unix:uid:$UID_NOW" --selector "unix:gid:$GID_NOW" --dns "c$r-$i.example" 2>/dev/null); then
            printf '%s c/%s/%s\n' "$(printf '%s' "$id" | head -1)" "$r" "$i" >>"$T_TMP/created.txt"
        fi
    done
}

# Every entry of this uid matches the node client, so each creation also mints an SVID.
start_server || { not_ok "server started" "$(tail -5 "$LOG")"; exit 1; }
ok "server started on a fresh data directory"
: >"$T_TMP/created.txt"
for r in $(seq 1 $ROUNDS); do
    creator "$r" &
    CPID=$!
    $NODE watch "$SOCK" 5000 >"$T_TMP/watch$r.json" 2>&1 &
    WPID=$!
    sleep "0.$(( 4 + RANDOM % 6 ))"
    kill -9 "$SPID"; wait "$SPID" 2>/dev/null; SPID=""
    # The creator's running `entry create` too, not only its loop (it may be writing the store).
    pkill -9 -P "$CPID" 2>/dev/null
    kill -9 "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; CPID=""
    kill -9 "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; WPID=""
    reported=$(wc -l <"$T_TMP/created.txt")

    ic=$(sqlite3 -cmd '.timeout 5000' "$DB" 'pragma integrity_check' 2>&1)
    [ "$ic" = ok ] && ok "round $r: integrity_check ok after kill -9" || not_ok "round $r: integrity_check" "$ic"
    missing=0
    while read -r id name; do
        n=$(sqlite3 "$DB" "select (select count(*) from entry where id='$id' and spiffe_id='spiffe://$TD/$name') ||
            ',' || (select count(*) from entry_selector where entry_id='$id') ||
            ',' || (select count(*) from entry_dns where entry_id='$id')")
        [ "$n" = "1,2,1" ] || { missing=$((missing + 1)); echo "# $id $name: $n"; }
    done <"$T_TMP/created.txt"
    [ "$missing" = 0 ] && ok "round $r: all $reported entries the CLI reported exist with both selectors and their DNS name" ||
        not_ok "round $r: reported entries intact" "$missing missing or partial"
    bad=$(sqlite3 "$DB" "select (select count(*) from entry e where e.spiffe_id like 'spiffe://$TD/c/%' and
          ((select count(*) from entry_selector s where s.entry_id = e.id) != 2 or
           (select count(*) from entry_dns d where d.entry_id = e.id) != 1)) || ',' ||
          (select count(*) from entry_selector where entry_id not in (select id from entry)) || ',' ||
          (select count(*) from entry_dns where entry_id not in (select id from entry))")
    [ "$bad" = "0,0,0" ] && ok "round $r: no half-written entry, no orphan selector or DNS rows" ||
        not_ok "round $r: half-written or orphan rows" "$bad"

    start_server && ok "round $r: the server restarts on the same data directory" ||
        { not_ok "round $r: restart" "$(tail -5 "$LOG")"; exit 1; }
    keys_ok=1
    for k in $(sqlite3 "$DB" "select key_file from ca union all select key_file from jwt_key union all
                              select value from meta where key = 'ca_next.key_file'"); do
        m=$(stat -c %a "$D/$k" 2>/dev/null)
        [ "$m" = 600 ] || { keys_ok=0; echo "# $k: mode '${m:-missing}'"; }
    done
    [ "$keys_ok" = 1 ] && ok "round $r: every key file the store references exists, mode 0600" ||
        not_ok "round $r: key files"
    rm -rf "$T_TMP/got"; mkdir -p "$T_TMP/got"
    run timeout 20 $NODE x509 "$SOCK" "$T_TMP/got"
    "$LANYARD" --data "$D" bundle show --format pem >"$T_TMP/bundle.pem"
    if [ "$T_RC" = 0 ] && openssl verify -x509_strict -CAfile "$T_TMP/bundle.pem" "$T_TMP/got/svid0.pem" >/dev/null 2>&1; then
        ok "round $r: the client gets SVIDs again ($(printf '%s' "$T_OUT" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).n)')), verified against bundle show --format pem"
    else not_ok "round $r: SVID after restart verifies with the CA" "$T_OUT $T_ERR"; fi
    [ $((SECONDS - START)) -lt 40 ] || { not_ok "time budget" "$((SECONDS - START)) s after round $r"; break; }
done
via=$(grep -c '"event":"entry.created"' "$LOG")
[ "$via" -gt 0 ] && ok "$via creations went through the running server (admin socket)" || not_ok "creations through the server"
total=$(sqlite3 "$DB" "select count(*) from entry where spiffe_id like 'spiffe://$TD/c/%'")
[ "$total" -ge "$(wc -l <"$T_TMP/created.txt")" ] && [ "$total" -gt 0 ] &&
    ok "$total entries survived $ROUNDS kill -9 rounds ($(wc -l <"$T_TMP/created.txt") reported by the CLI)" ||
    not_ok "entries survived" "total $total"

# ---- bad input against the real server ------------------------------------------------------
# admin PAYLOAD_HEX: raw bytes on the admin socket; prints what came back (printable bytes only).
admin_raw() {
    node -e '
const s = require("net").connect(process.argv[1]);
const chunks = [];
s.on("connect", () => { s.write(Buffer.from(process.argv[2], "hex")); if (process.argv[3] === "end") s.end(); });
s.on("data", (d) => chunks.push(d));
s.on("error", () => {});
s.on("close", () => { process.stdout.write(Buffer.concat(chunks).toString("latin1").replace(/[^ -~]/g, ".")); process.exit(0); });
setTimeout(() => { process.stdout.write(Buffer.concat(chunks).toString("latin1").replace(/[^ -~]/g, ".") + "[open]"); process.exit(0); }, 3000);' \
        "$D/admin.sock" "$1" "${2:-}"
}
out=$(admin_raw 7fffffff00)
printf '%s' "$out" | grep -q "admin frame announces 2147483647 bytes" &&
    ok "admin socket: an oversized frame (2 GiB announced) is refused with a clear error" || not_ok "oversized admin frame" "$out"
out=$(admin_raw "00000008$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')")
printf '%s' "$out" | grep -qiE "bad admin message|not a map|admin request" &&
    ok "admin socket: a frame of random bytes gets an error answer" || not_ok "garbage admin frame" "$out"
out=$(admin_raw "000000a1" end)
case "$out" in *"[open]"*) not_ok "admin socket: a truncated frame then hang-up is dropped" "$out" ;;
    *) ok "admin socket: a truncated frame then hang-up is dropped" ;; esac
out=$(admin_raw "00000005a1626f7001" )
printf '%s' "$out" | grep -qiE "op" && ok "admin socket: a request whose op is not text is refused ($(printf '%s' "$out" | tr -cd ' -~' | cut -c1-60))" ||
    not_ok "admin bad op" "$out"
for c in garbage too_large compressed bad_length http1 content_type; do
    if o=$(timeout 30 node "$IOP/wapi_client.mjs" "$SOCK" "$c" 2>&1); then ok "Workload API on the real server: ${o#PASS }"
    else not_ok "Workload API on the real server: $c" "$(printf '%s' "$o" | tail -3)"; fi
done
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/c/1/1" --selector "unix:uid:$UID_NOW" --selector "unix:gid:$GID_NOW"
if grep -q ' c/1/1$' "$T_TMP/created.txt"; then
    expect_fail_with "a duplicate entry is refused by the running server" 2 "already exists"
else
    ok "a duplicate entry is refused by the running server # SKIP c/1/1 was not created before the first kill"
fi
while IFS='|' read -r sel pattern; do
    run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/bad" --selector "$sel"
    expect_fail_with "running server: selector '$sel' refused ($pattern)" 1 "$pattern"
done <<'EOF'
unix:uid:-1|not a decimal number
unix:path:relative/x|relative
unix:sha256:xyz|64 lowercase hex
EOF
run "$LANYARD" --data "$D" server status
expect_rc "server status answers after all the bad input" 0
run timeout 20 $NODE x509 "$SOCK" "$T_TMP/got"
[ "$T_RC" = 0 ] && ok "a Workload API fetch succeeds after all the bad input" || not_ok "fetch after bad input" "$T_OUT"
kill -TERM "$SPID"; wait "$SPID"; rc=$?; SPID=""
[ "$rc" = 0 ] && ok "server stops cleanly (exit 0)" || not_ok "server stops cleanly" "rc $rc"
[ $((SECONDS - START)) -lt 60 ] && ok "whole script took $((SECONDS - START)) s (< 60)" || not_ok "time bound" "$((SECONDS - START)) s"
