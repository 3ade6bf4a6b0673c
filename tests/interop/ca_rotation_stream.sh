#!/usr/bin/env bash
# CA rotation under a running stream: a real `lanyard server`, a grpc-js client (standard proto,
# nothing of lanyard's) holding FetchX509SVID and FetchX509Bundles streams open, and
# `lanyard ca rotate` through the admin socket. The client must see the new CA in its bundle
# before any SVID the new CA signed; the old CA stays in every bundle it receives; SVIDs verify
# (openssl -x509_strict) against the bundle held at the time; the bundle sequence goes up by one.
# Natural (scheduled) rotation timing is covered by tests/unit/ca_rotation_test.c.
. "$LANYARD_ROOT/tests/lib.sh"
TD=rotstream.lanyard.test
D="$T_TMP/data"
RUN="$T_TMP/run"
SOCK="$RUN/workload.sock"
OUT="$T_TMP/rec"
NODE="node $LANYARD_ROOT/tests/interop/wapi_broker.mjs"
chmod 755 "$T_TMP"; mkdir -p "$RUN" "$OUT"; chmod 755 "$RUN"
LOG="$T_TMP/server.log"
SPID=""; RPID=""
stop_all() {
    [ -n "$RPID" ] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    return 0
}
trap 'stop_all; t_cleanup' EXIT
# q EXPR: evaluate a JS expression over the recorded JSON `j`
q() { node -e "const j=JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')); process.stdout.write(String($1))" "$T_TMP/rec.json"; }
der_fp() { openssl x509 -outform DER | sha256sum | cut -d' ' -f1; }
bseq() { "$LANYARD" --data "$D" bundle show | node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).spiffe_sequence)'; }

"$LANYARD" --data "$D" server --trust-domain "$TD" --workload-socket "$SOCK" --health-listen "" 2>"$LOG" &
SPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && [ -S "$D/admin.sock" ] && break; sleep 0.1; done
[ -S "$D/admin.sock" ] && ok "server started" || { not_ok "server started" "$(cat "$LOG")"; exit 1; }
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/rot/client" --selector "unix:uid:$(id -u)"
expect_rc "entry created through the running server" 0
OLD_FP=$("$LANYARD" --data "$D" bundle show --format pem | der_fp)
SEQ0=$(bseq)

# Record both streams for 9 s; rotate 2 s in.
$NODE record "$SOCK" 9000 "$OUT" >"$T_TMP/rec.json" 2>"$T_TMP/rec.err" &
RPID=$!
sleep 2
t0=$(date +%s%N)
run "$LANYARD" --data "$D" ca rotate
t1=$(date +%s%N)
expect_rc "ca rotate through the running server" 0
took=$(( (t1 - t0) / 1000000 ))
[ "$took" -ge 1900 ] && [ "$took" -lt 8000 ] && ok "ca rotate returns after the publication delay (${took} ms)" ||
    not_ok "ca rotate returns after the publication delay" "${took} ms"
NEW_FP=$(printf '%s' "$T_OUT" | sed -n 's/^rotated: CA sha256:\([0-9a-f]*\) signs now.*/\1/p')
[ -n "$NEW_FP" ] && [ "$NEW_FP" != "$OLD_FP" ] && ok "ca rotate names the new CA (sha256:${NEW_FP:0:16}...)" ||
    not_ok "ca rotate names the new CA" "$T_OUT"
SEQ1=$(bseq)
[ "$SEQ1" = $((SEQ0 + 1)) ] && ok "bundle show: sequence $SEQ0 -> $SEQ1" || not_ok "bundle sequence + 1" "$SEQ0 -> $SEQ1"
grep -q '"event":"ca.rotation_started"' "$LOG" && grep -q '"event":"ca.took_over"' "$LOG" &&
    ok "the server logged both phases (rotation_started, took_over)" || not_ok "both phases logged" "$(tail -5 "$LOG")"
wait "$RPID"; RPID=""
[ -s "$T_TMP/rec.json" ] && [ "$(q 'j.messages.length>=3')" = true ] &&
    ok "the client recorded $(q 'j.messages.length') X509-SVID messages" ||
    { not_ok "the client recorded messages" "$(cat "$T_TMP/rec.json" "$T_TMP/rec.err")"; exit 1; }

# (a) published before it signs.
export OLD_FP NEW_FP
pub=$(q "j.messages.findIndex(m => m.bundle.includes(process.env.NEW_FP))")
sig=$(q "j.messages.findIndex(m => m.svids.some(s => s.signer === process.env.NEW_FP))")
[ "$pub" -ge 0 ] && [ "$sig" -ge 0 ] && [ "$pub" -lt "$sig" ] &&
    ok "message $pub brings the new CA in the bundle before message $sig brings an SVID it signed" ||
    not_ok "new CA published before any SVID it signed" "pub=$pub sig=$sig" "$(head -c 1500 "$T_TMP/rec.json")"
[ "$(q "j.messages[$sig].at - j.messages[$pub].at >= 1500")" = true ] &&
    ok "the new CA was in the client's hands $(q "j.messages[$sig].at - j.messages[$pub].at") ms before it signed" ||
    not_ok "publication delay seen by the client" "$(q "j.messages[$sig].at - j.messages[$pub].at") ms"
[ "$(q "j.messages.slice(0,$pub).every(m => m.svids.every(s => s.signer === process.env.OLD_FP))")" = true ] &&
[ "$(q "j.messages.slice($sig).every(m => m.svids.every(s => s.signer === process.env.NEW_FP))")" = true ] &&
    ok "SVIDs before are signed by the old CA, SVIDs from message $sig on by the new one" ||
    not_ok "signers by message" "$(head -c 1500 "$T_TMP/rec.json")"
[ "$(q "j.messages[$sig].svids[0].akid === j.skids[process.env.NEW_FP] && j.messages[0].svids[0].akid === j.skids[process.env.OLD_FP]")" = true ] &&
    ok "authority key ids agree: the old SVID names the old CA, the new SVID the new CA" ||
    not_ok "authority key ids" "$(q 'JSON.stringify(j.skids)')"
[ "$(q "j.messages[0].svids[0].serial !== j.messages[$sig].svids[0].serial")" = true ] &&
    ok "a new SVID (new serial) was pushed on the open stream" || not_ok "new serial"
# (b) the old CA stays.
[ "$(q "j.messages.every(m => m.bundle.includes(process.env.OLD_FP))")" = true ] &&
    ok "the old CA is in the bundle of every message until the end of the observation" ||
    not_ok "old CA stays in the bundle" "$(q 'JSON.stringify(j.messages.map(m=>m.bundle))')"
# (c) verification with the bundle held at each time.
check "the pre-rotation SVID verifies against the pre-rotation bundle (openssl -x509_strict)" \
    openssl verify -x509_strict -CAfile "$OUT/msg0-bundle.pem" "$OUT/msg0-svid.pem"
last=$(( $(q 'j.messages.length') - 1 ))
check "the pre-rotation SVID still verifies against the latest bundle (a peer that updated)" \
    openssl verify -x509_strict -CAfile "$OUT/msg$last-bundle.pem" "$OUT/msg0-svid.pem"
check "the new SVID verifies against the bundle delivered with it" \
    openssl verify -x509_strict -CAfile "$OUT/msg$sig-bundle.pem" "$OUT/msg$sig-svid.pem"
check "the new SVID verifies against the bundle the client held before it (message $((sig - 1)))" \
    openssl verify -x509_strict -CAfile "$OUT/msg$((sig - 1))-bundle.pem" "$OUT/msg$sig-svid.pem"
if openssl verify -x509_strict -CAfile "$OUT/msg0-bundle.pem" "$OUT/msg$sig-svid.pem" >/dev/null 2>&1; then
    not_ok "the new SVID does not chain to the pre-rotation bundle"
else ok "the new SVID does not chain to the pre-rotation bundle (so the early push mattered)"; fi
# (d) FetchX509Bundles.
bpub=$(q "j.bundles.findIndex(b => Object.values(b.bundles)[0].includes(process.env.NEW_FP))")
[ "$bpub" -ge 1 ] && [ "$(q "j.bundles[$bpub].at <= j.messages[$sig].at && Object.values(j.bundles[$bpub].bundles)[0].includes(process.env.OLD_FP)")" = true ] &&
    ok "FetchX509Bundles pushed the bundle with both CAs before the first new SVID" ||
    not_ok "FetchX509Bundles got the new bundle" "$(q 'JSON.stringify(j.bundles)')"
[ "$(q 'j.status === 1 && j.bundle_status === 1')" = true ] &&
    ok "both streams stayed open to the end (cancelled by the client)" || not_ok "streams open" "$(q 'j.status+" "+j.bundle_status')"

# A second rotation right away: the previous old CA is still needed by nobody once its SVIDs
# expire, but until then all three CAs are published.
run "$LANYARD" --data "$D" ca rotate
expect_rc "a second rotation through the server" 0
n=$("$LANYARD" --data "$D" bundle show --format pem | grep -c 'BEGIN CERTIFICATE')
[ "$n" = 3 ] && ok "after two rotations the bundle publishes 3 CAs (old SVIDs still valid)" || not_ok "3 CAs" "$n"

# Crash between the phases: kill -9 right after phase 1; the restart finishes the rotation.
"$LANYARD" --data "$D" ca rotate >"$T_TMP/crash-rot.out" 2>&1 &
CPID=$!
for _ in $(seq 50); do grep -c '"event":"ca.rotation_started"' "$LOG" | grep -q '^3$' && break; sleep 0.05; done
kill -9 "$SPID"; wait "$SPID" 2>/dev/null
wait "$CPID"; crc=$?
[ "$crc" -ne 0 ] && ok "ca rotate reports a failure when the server dies mid-rotation (exit $crc)" ||
    not_ok "ca rotate fails when the server dies" "$(cat "$T_TMP/crash-rot.out")"
prepared=$(sqlite3 "$D/lanyard.db" "select count(*) from meta where key like 'ca_next.%'")
at=$(sqlite3 "$D/lanyard.db" "select value from meta where key = 'ca_takeover_at'")
[ "$prepared" -ge 1 ] && [ -n "$at" ] && ok "the store holds the published next CA and its takeover time after kill -9" ||
    not_ok "phase 1 persisted" "prepared=$prepared at=$at"
"$LANYARD" --data "$D" server --workload-socket "$SOCK" --health-listen "" 2>>"$LOG" &
SPID=$!
for _ in $(seq 100); do
    [ -z "$(sqlite3 "$D/lanyard.db" "select value from meta where key = 'ca_takeover_at'")" ] && break; sleep 0.1
done
st=$(sqlite3 "$D/lanyard.db" "select group_concat(status, ',') from (select status from ca order by id)")
[ "$st" = "retired,retired,retired,active" ] && [ "$(sqlite3 "$D/lanyard.db" "select count(*) from meta where key like 'ca_next.%' or key = 'ca_takeover_at'")" = 0 ] &&
    ok "the restarted server finished the interrupted rotation on time" || not_ok "rotation finished after restart" "$st"
run $NODE until "$SOCK" 10000
printf '%s' "$T_OUT" | grep -q '"ok":true' && ok "the client gets an SVID from the restarted server" || not_ok "SVID after restart" "$T_OUT"
"$LANYARD" --data "$D" bundle show --format pem >"$T_TMP/final-bundle.pem"
mkdir -p "$T_TMP/got"; $NODE x509 "$SOCK" "$T_TMP/got" >/dev/null
check "its SVID verifies against lanyard bundle show --format pem" \
    openssl verify -x509_strict -CAfile "$T_TMP/final-bundle.pem" "$T_TMP/got/svid0.pem"
kill -TERM "$SPID"; wait "$SPID"; rc=$?; SPID=""
[ "$rc" = 0 ] && ok "server stops cleanly" || not_ok "server stops cleanly" "rc $rc"
