#!/usr/bin/env bash
# `lanyard helper` against a real `lanyard server`: files with the right modes that openssl
# verifies, a key that matches its certificate, rotations observed through --cmd, a reader loop
# that never sees a mismatched key/cert pair, nginx (from Debian) reloaded by the helper's
# signal and serving the rotated certificate, and the helper surviving a kill -9 of the server.
# Also the usage errors (exit 2) and a process with no identity (exit 1).
. "$LANYARD_ROOT/tests/lib.sh"
TD=helper.lanyard.test
D="$T_TMP/data"
RUN="$T_TMP/run"
SOCK="$RUN/workload.sock"
OUT="$T_TMP/out"
NGX="$T_TMP/nginx"
chmod 755 "$T_TMP"; mkdir -p "$RUN" "$NGX/logs" "$T_TMP/snaps"; chmod 755 "$RUN"
LOG="$T_TMP/server.log"
HLOG="$T_TMP/helper.log"
SPID=""; HPID=""; NPID=""
# Short JWT-SVIDs (10 s) so the helper's refresh at half-life is seen within the test.
echo '{"jwt_ttl": "10s"}' >"$T_TMP/server.json"

# No health endpoint: this test does not use it, and a fixed or random TCP port can be taken.
start_server() {
    "$LANYARD" --data "$D" server --config "$T_TMP/server.json" --trust-domain "$TD" --workload-socket "$SOCK" \
        --health-listen "" 2>>"$LOG" &
    SPID=$!
    for _ in $(seq 100); do [ -S "$SOCK" ] && [ -S "$D/admin.sock" ] && break; sleep 0.1; done
    [ -S "$SOCK" ]
}
stop_all() {
    for p in $HPID $NPID $SPID; do kill "$p" 2>/dev/null; done
    for p in $HPID $NPID $SPID; do wait "$p" 2>/dev/null; done
}
trap 'stop_all; t_cleanup' EXIT
pub_of_cert() { openssl x509 -in "$1" -pubkey -noout 2>/dev/null; }
pub_of_key() { openssl pkey -in "$1" -pubout 2>/dev/null; }
serial_of() { openssl x509 -in "$1" -noout -serial 2>/dev/null | cut -d= -f2; }

# ---- usage errors ----------------------------------------------------------------------------
run "$LANYARD" helper --socket "unix://relative/x.sock" --dir "$OUT" --once
expect_fail_with "unix://relative socket address: usage error" 2 "absolute|authority"
run "$LANYARD" helper --socket "tcp://127.0.0.1:8081" --dir "$OUT" --once
expect_fail_with "tcp: socket address: usage error (not supported)" 2 "tcp.*not supported"
run env -u SPIFFE_ENDPOINT_SOCKET "$LANYARD" helper --dir "$OUT" --once
expect_fail_with "no socket at all: usage error" 2 "SPIFFE_ENDPOINT_SOCKET"
run "$LANYARD" helper --socket "$SOCK" --once
expect_fail_with "missing --dir: usage error" 2 "--dir"
run "$LANYARD" helper --socket "$SOCK" --dir "$OUT" --signal HUP
expect_fail_with "--signal without --pid: usage error" 2 "--signal needs --pid"
run "$LANYARD" helper --socket "$SOCK" --dir "$OUT" --signal BOGUS --pid 1
expect_fail_with "unknown signal name: usage error" 2 "unknown signal"
run "$LANYARD" helper --socket "$SOCK" --dir "$OUT" --jwt-audience "a/b" --jwt-audience "a:b" --once
expect_fail_with "two audiences with the same file name: usage error" 2 "share the file"

start_server && ok "server started" || { not_ok "server started" "$(cat "$LOG")"; exit 1; }

# ---- no identity -------------------------------------------------------------------------------
run env SPIFFE_ENDPOINT_SOCKET="unix://$SOCK" "$LANYARD" helper --dir "$OUT" --once
expect_fail_with "--once with no entry for this uid: exit 1, PermissionDenied" 1 "PermissionDenied|no identity"
[ ! -e "$OUT/svid.pem" ] && ok "nothing written without an identity" || not_ok "nothing written" "$(ls -la "$OUT")"

# ---- --once ------------------------------------------------------------------------------------
AUD="spiffe://$TD/backend"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/web" --selector "unix:uid:$(id -u)" --ttl 12s
expect_rc "entry with a 12s TTL created through the server" 0
run "$LANYARD" helper --socket "unix://$SOCK" --dir "$OUT" --jwt-audience "$AUD" --once
expect_rc "helper --once (unix:// address from the flag) exits 0" 0
modes=$(cd "$OUT" && stat -c '%n=%a' svid.pem svid.key svid_bundle.pem bundle.pem "jwt_svid_spiffe___${TD}_backend.token" | tr '\n' ' ')
[ "$modes" = "svid.pem=644 svid.key=600 svid_bundle.pem=600 bundle.pem=644 jwt_svid_spiffe___${TD}_backend.token=600 " ] \
    && ok "files written with the right modes" || not_ok "file modes" "$modes" "$(ls -la "$OUT")"
check "openssl verify -x509_strict accepts svid.pem against bundle.pem" \
    openssl verify -x509_strict -CAfile "$OUT/bundle.pem" "$OUT/svid.pem"
[ -n "$(pub_of_key "$OUT/svid.key")" ] && [ "$(pub_of_cert "$OUT/svid.pem")" = "$(pub_of_key "$OUT/svid.key")" ] \
    && ok "svid.key matches svid.pem" || not_ok "svid.key matches svid.pem"
[ "$(pub_of_cert "$OUT/svid_bundle.pem")" = "$(pub_of_key "$OUT/svid_bundle.pem")" ] \
    && ok "svid_bundle.pem holds the matching certificate and key" || not_ok "svid_bundle.pem matches"
grep -q "BEGIN PRIVATE KEY" "$OUT/svid.key" && ok "the key is PKCS#8 PEM" || not_ok "PKCS#8 PEM" "$(head -1 "$OUT/svid.key")"
run "$LANYARD" --data "$D" jwt verify --audience "$AUD" "$OUT/jwt_svid_spiffe___${TD}_backend.token"
[ "$T_RC" = 0 ] && [ "$(printf '%s' "$T_OUT" | head -1)" = "spiffe://$TD/web" ] \
    && ok "the JWT-SVID file verifies for its audience" || not_ok "JWT-SVID verifies" "$T_OUT $T_ERR"
[ -z "$(ls -A "$OUT" | grep -E '\.next$|\.tmp-')" ] && ok "no staging or temporary files left" || not_ok "staging files left" "$(ls -la "$OUT")"

# ---- nginx serving the helper's files -----------------------------------------------------------
NPORT=$(( 20000 + RANDOM % 20000 ))
cat >"$NGX/nginx.conf" <<EOF
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $NGX/tmp-body; proxy_temp_path $NGX/tmp-proxy;
    fastcgi_temp_path $NGX/tmp-fcgi; uwsgi_temp_path $NGX/tmp-uwsgi; scgi_temp_path $NGX/tmp-scgi;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $OUT/svid.pem;
        ssl_certificate_key $OUT/svid.key;
        location / { return 200 "ok\n"; }
    }
}
EOF
nginx -e "$NGX/logs/error.log" -c "$NGX/nginx.conf" -p "$NGX/" -g 'daemon off;' 2>>"$NGX/logs/stderr" &
NPID=$!
for _ in $(seq 50); do [ -s "$NGX/nginx.pid" ] && break; sleep 0.1; done
served_serial() {
    openssl s_client -connect "127.0.0.1:$NPORT" </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
S_NGINX0=""
for _ in $(seq 30); do S_NGINX0=$(served_serial); [ -n "$S_NGINX0" ] && break; sleep 0.1; done
[ -n "$S_NGINX0" ] && ok "nginx serves the helper's svid.pem/svid.key" || not_ok "nginx started" "$(cat "$NGX/logs/"* 2>/dev/null | tail -5)"

# ---- the helper running: rotations, --cmd, signal to nginx, readers ---------------------------
cat >"$T_TMP/snap.sh" <<EOF
#!/bin/sh
# Copies the helper's files to a numbered snapshot (run by lanyard helper --cmd, no shell).
n=\$(ls "$T_TMP/snaps" | wc -l)
s="$T_TMP/snaps/\$n"
mkdir "\$s" && cp "$OUT/svid.pem" "$OUT/svid.key" "$OUT/bundle.pem" "\$s/" || exit 1
state=ok
openssl verify -x509_strict -CAfile "\$s/bundle.pem" "\$s/svid.pem" >/dev/null 2>&1 || state=unverified
[ "\$(openssl x509 -in "\$s/svid.pem" -pubkey -noout)" = "\$(openssl pkey -in "\$s/svid.key" -pubout)" ] || state=mismatch
echo "snapshot \$n \$(openssl x509 -in "\$s/svid.pem" -noout -serial) \$state" >>"$T_TMP/snaps.log"
EOF
chmod 755 "$T_TMP/snap.sh"
"$LANYARD" helper --socket "$SOCK" --dir "$OUT" --jwt-audience "$AUD" --cmd "$T_TMP/snap.sh" \
    --signal HUP --pid-file "$NGX/nginx.pid" 2>"$HLOG" &
HPID=$!

# Reader: every 50 ms for 20 s. The combined svid_bundle.pem is one file replaced atomically, so
# it must never hold a mismatched pair. svid.key and svid.pem are two files: a reader whose two
# reads straddle a rotation can pair an old key with a new certificate (that is why the helper
# writes the combined file and signals after both), so for them the test requires only that
# each file is always whole (never torn or empty).
reader() {
    local end=$((SECONDS + 20)) n=0 bad=0 badc=0
    while [ $SECONDS -lt $end ]; do
        cat "$OUT/svid.key" >"$T_TMP/r.key" 2>/dev/null; cat "$OUT/svid.pem" >"$T_TMP/r.pem" 2>/dev/null
        cat "$OUT/svid_bundle.pem" >"$T_TMP/r.both" 2>/dev/null
        { [ -n "$(pub_of_cert "$T_TMP/r.pem")" ] && [ -n "$(pub_of_key "$T_TMP/r.key")" ]; } || bad=$((bad + 1))
        [ "$(pub_of_cert "$T_TMP/r.both")" = "$(pub_of_key "$T_TMP/r.both")" ] || badc=$((badc + 1))
        n=$((n + 1)); sleep 0.05
    done
    echo "$n $bad $badc"
}
read -r READS BAD BADC < <(reader)
SERIALS=$(for s in "$T_TMP"/snaps/*/svid.pem; do serial_of "$s"; done | sort -u | wc -l)
[ "$SERIALS" -ge 3 ] && ok "at least 2 rotations seen through --cmd ($SERIALS distinct serials)" \
    || not_ok "rotations through --cmd" "serials: $SERIALS" "$(cat "$T_TMP/snaps.log" 2>/dev/null)" "$(tail -5 "$HLOG")"
[ "$READS" -ge 100 ] && [ "$BAD" = 0 ] && ok "reader: svid.key and svid.pem are always whole files ($READS reads)" \
    || not_ok "reader: torn svid.key/svid.pem" "reads $READS, torn or empty $BAD"
[ "$READS" -ge 100 ] && [ "$BADC" = 0 ] && ok "reader: svid_bundle.pem never mismatched ($READS reads)" \
    || not_ok "reader: svid_bundle.pem mismatches" "reads $READS, mismatches $BADC"
[ -s "$T_TMP/snaps.log" ] && ! grep -qv ' ok$' "$T_TMP/snaps.log" \
    && ok "every snapshot taken by --cmd is a verified, matching set ($(wc -l <"$T_TMP/snaps.log"))" \
    || not_ok "snapshots" "$(grep -v ' ok$' "$T_TMP/snaps.log" | head -5)"
NJWT=$(grep -c '"event":"helper.jwt_written"' "$HLOG")
[ "$NJWT" -ge 3 ] && ok "JWT-SVIDs (10 s) refreshed at half-life while the stream stays up ($NJWT writes)" \
    || not_ok "JWT-SVID refresh" "$NJWT writes" "$(grep -v helper.updated "$HLOG" | tail -5)"
grep -q '"event":"helper.signalled"' "$HLOG" && ok "the helper signalled nginx (HUP via --pid-file)" \
    || not_ok "helper signalled nginx" "$(grep signal "$HLOG" | tail -3)"
CUR=""; SERVED=""
for _ in $(seq 40); do
    CUR=$(serial_of "$OUT/svid.pem"); SERVED=$(served_serial)
    [ -n "$SERVED" ] && [ "$SERVED" = "$CUR" ] && [ "$SERVED" != "$S_NGINX0" ] && break
    sleep 0.25
done
[ -n "$SERVED" ] && [ "$SERVED" = "$CUR" ] && [ "$SERVED" != "$S_NGINX0" ] \
    && ok "after a rotation nginx presents the new certificate ($SERVED)" \
    || not_ok "nginx presents the rotated certificate" "first $S_NGINX0, served $SERVED, file $CUR" "$(tail -3 "$NGX/logs/error.log")"

# ---- server killed and restarted ----------------------------------------------------------------
kill -9 "$SPID"; wait "$SPID" 2>/dev/null
BEFORE=$(serial_of "$OUT/svid.pem")
sleep 2
grep -q '"event":"helper.connect_failed"\|"event":"helper.stream_ended"' "$HLOG" \
    && ok "the helper notices the server is gone and retries" || not_ok "helper notices" "$(tail -3 "$HLOG")"
kill -0 "$HPID" 2>/dev/null && [ "$(serial_of "$OUT/svid.pem")" = "$BEFORE" ] \
    && openssl verify -x509_strict -CAfile "$OUT/bundle.pem" "$OUT/svid.pem" >/dev/null 2>&1 \
    && ok "while the server is down the helper runs and the last good files stay" || not_ok "last good files kept"
rm -f "$SOCK"
start_server && ok "server restarted on the same data directory" || not_ok "server restart" "$(tail -5 "$LOG")"
for _ in $(seq 120); do grep -q '"event":"helper.reconnected"' "$HLOG" && break; sleep 0.1; done
grep -q '"event":"helper.reconnected"' "$HLOG" && ok "the helper reconnects (logged)" || not_ok "reconnect" "$(tail -5 "$HLOG")"
N_UPD=$(grep -c '"event":"helper.updated"' "$HLOG")
for _ in $(seq 150); do
    [ "$(sed -n '/"event":"helper.reconnected"/,$p' "$HLOG" | grep -c '"event":"helper.updated"')" -ge 2 ] && break
    sleep 0.1
done
AFTER=$(sed -n '/"event":"helper.reconnected"/,$p' "$HLOG" | grep -c '"event":"helper.updated"')
[ "$AFTER" -ge 2 ] && ok "after the restart the helper keeps rotating ($AFTER updates)" \
    || not_ok "rotation after restart" "updates after reconnect: $AFTER (total $N_UPD)" "$(tail -5 "$HLOG")"
check "the files after the restart verify" openssl verify -x509_strict -CAfile "$OUT/bundle.pem" "$OUT/svid.pem"

# ---- clean stop, logs -----------------------------------------------------------------------------
kill -TERM "$HPID"; wait "$HPID"; RC=$?; HPID=""
[ "$RC" = 0 ] && grep -q '"event":"helper.stopped"' "$HLOG" && ok "SIGTERM stops the helper cleanly (exit 0)" \
    || not_ok "helper SIGTERM" "rc $RC" "$(tail -3 "$HLOG")"
TOKEN=$(cat "$OUT/jwt_svid_spiffe___${TD}_backend.token")
if grep -q "PRIVATE KEY" "$HLOG" || grep -qF "${TOKEN##*.}" "$HLOG" || grep -qF "$(sed -n 2p "$OUT/svid.key")" "$HLOG"; then
    not_ok "the helper log holds no key or token"
else ok "the helper log holds no key or token"; fi
node -e "require('fs').readFileSync(process.argv[1],'utf8').trim().split('\n').forEach(l=>JSON.parse(l))" "$HLOG" \
    && ok "every helper log line is JSON" || not_ok "helper log lines are JSON" "$(head -5 "$HLOG")"
