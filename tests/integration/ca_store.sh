#!/usr/bin/env bash
# Integration: the CA and its SQLite store through the real lanyard binary. Checks what lands on
# disk (modes, atomic key files, records of issued SVIDs without keys), that nothing secret reaches
# stdout/stderr or the database, and that failures leave no half-initialised data directory.
. "$LANYARD_ROOT/tests/lib.sh"
D="$T_TMP/data"
TD=store.lanyard.test

run "$LANYARD" --data "$D" ca init --trust-domain "$TD" --ca-ttl 2d
expect_rc "ca init succeeds" 0
dmode=$(stat -c %a "$D"); [ "$dmode" = 700 ] && ok "data directory is 0700" || not_ok "data directory is 0700" "mode $dmode"
kmodes=$(stat -c %a "$D"/keys/*.key | sort -u | tr '\n' ' ')
[ "$kmodes" = "600 " ] && ok "every key file is 0600" || not_ok "every key file is 0600" "modes: $kmodes"
nkeys=$(ls "$D"/keys/*.key | wc -l)
[ "$nkeys" = 2 ] && ok "one CA key and one JWT key" || not_ok "one CA key and one JWT key" "$nkeys files"
[ -z "$(ls "$D"/keys | grep -v '\.key$')" ] && ok "no temporary files left in keys/" || not_ok "no temporary files left in keys/" "$(ls "$D"/keys)"
dbmode=$(stat -c %a "$D/lanyard.db"); [ "$dbmode" = 600 ] && ok "database is 0600" || not_ok "database is 0600" "mode $dbmode"
check "CA key files are PKCS#8 and readable by openssl" bash -c "for k in '$D'/keys/*.key; do head -1 \$k | grep -qx -- '-----BEGIN PRIVATE KEY-----' && openssl pkey -in \$k -noout || exit 1; done"
td=$(sqlite3 "$D/lanyard.db" "select value from meta where key='trust_domain'")
[ "$td" = "$TD" ] && ok "trust domain recorded in the store" || not_ok "trust domain recorded in the store" "$td"

# Refuse to overwrite; the CA stays byte-identical.
before=$(sqlite3 "$D/lanyard.db" "select hex(cert_der) from ca")
run "$LANYARD" --data "$D" ca init --trust-domain other.test
expect_fail_with "second ca init is refused" 2 "already"
after=$(sqlite3 "$D/lanyard.db" "select hex(cert_der) from ca")
[ "$before" = "$after" ] && [ "$(ls "$D"/keys | wc -l)" = 2 ] && ok "refused init changed nothing" || not_ok "refused init changed nothing"

# Issued SVIDs are recorded (serial, ID, not-after, fingerprint), never their keys.
run "$LANYARD" --data "$D" svid mint --id "spiffe://$TD/mcp/server" --ttl 10m --out-cert "$T_TMP/s.pem" --out-key "$T_TMP/s.key"
expect_rc "svid mint succeeds" 0
serial=$(openssl x509 -in "$T_TMP/s.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
fp=$(openssl x509 -in "$T_TMP/s.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')
row=$(sqlite3 "$D/lanyard.db" "select ltrim(lower(serial),'0'), spiffe_id, sha256 from svid")
[ "$row" = "$serial|spiffe://$TD/mcp/server|$fp" ] && ok "issued SVID recorded with serial, ID and SHA-256" || not_ok "issued SVID recorded with serial, ID and SHA-256" "row: $row" "want: $serial|spiffe://$TD/mcp/server|$fp"
na_db=$(sqlite3 "$D/lanyard.db" "select not_after from svid")
na_cert=$(date -d "$(openssl x509 -in "$T_TMP/s.pem" -noout -enddate | cut -d= -f2)" +%s)
[ "$na_db" = "$na_cert" ] && ok "recorded not-after equals the certificate's" || not_ok "recorded not-after equals the certificate's" "$na_db vs $na_cert"
if grep -qa "PRIVATE KEY" "$D/lanyard.db" "$D"/lanyard.db-wal 2>/dev/null; then not_ok "database holds no private key"; else ok "database holds no private key"; fi
keyb64=$(sed -n 2p "$T_TMP/s.key")
if grep -qaF "$keyb64" "$D"/lanyard.db*; then not_ok "issued key is not in the database"; else ok "issued key is not in the database"; fi

# Minting for another trust domain, a root ID, or an off-spec ID is refused.
run "$LANYARD" --data "$D" svid mint --id spiffe://other.test/x --out-cert "$T_TMP/o.pem" --out-key "$T_TMP/o.key"
expect_fail_with "mint for another trust domain refused" 2 "not in trust domain"
[ ! -e "$T_TMP/o.pem" ] && [ ! -e "$T_TMP/o.key" ] && ok "refused mint wrote no files" || not_ok "refused mint wrote no files"
run "$LANYARD" --data "$D" svid mint --id "spiffe://$TD" --out-cert "$T_TMP/o.pem" --out-key "$T_TMP/o.key"
expect_fail_with "mint for the trust domain's own ID refused" 1 "path"
run "$LANYARD" --data "$D" svid mint --id "spiffe://$TD/a/../b" --out-cert "$T_TMP/o.pem" --out-key "$T_TMP/o.key"
expect_fail_with "mint for an off-spec ID refused" 1 "segment|\\.\\."
run "$LANYARD" --data "$D" svid mint --id "spiffe://$TD/x" --ttl 0s --out-cert "$T_TMP/o.pem" --out-key "$T_TMP/o.key"
expect_fail_with "zero TTL refused" 2 "ttl|duration"
run "$LANYARD" --data "$D" svid mint --id "spiffe://$TD/x" --ttl 90d --out-cert "$T_TMP/o.pem" --out-key "$T_TMP/o.key"
expect_fail_with "over-long TTL refused" 2 "ttl"
run "$LANYARD" --data "$D" svid mint --id "spiffe://$TD/x" --out-cert "$T_TMP/o.pem"
expect_fail_with "mint without --out-key or --csr refused" 2 "out-key"
[ "$(sqlite3 "$D/lanyard.db" 'select count(*) from svid')" = 1 ] && ok "refusals recorded nothing" || not_ok "refusals recorded nothing"

# Commands on a missing data directory say what to do.
run "$LANYARD" --data "$T_TMP/nothing" bundle show
expect_fail_with "bundle show without a CA explains how to create one" 2 "ca init"
[ ! -e "$T_TMP/nothing" ] && ok "a read command creates no data directory" || not_ok "a read command creates no data directory"
mkdir -p "$T_TMP/bad"; mkdir "$T_TMP/bad/lanyard.db"
run "$LANYARD" --data "$T_TMP/bad" ca init --trust-domain "$TD"
expect_fail_with "init on an unusable store fails with an I/O error" 3 "database"
[ ! -d "$T_TMP/bad/keys" ] || [ -z "$(ls "$T_TMP/bad/keys")" ] && ok "failed init left no key file" || not_ok "failed init left no key file" "$(ls "$T_TMP/bad/keys")"

# Secrets never reach output: JWTs and keys are absent from every stderr we produce.
tok=$("$LANYARD" --data "$D" jwt mint --id "spiffe://$TD/agent" --audience aud1)
sig=${tok##*.}
"$LANYARD" --data "$D" jwt verify --audience wrong "$tok" 2>"$T_TMP/e1" >/dev/null
"$LANYARD" --data "$D" jwt verify --audience aud1 "${tok%.*}.AAAA" 2>"$T_TMP/e2" >/dev/null
"$LANYARD" --data "$D" jwt verify --audience aud1 "garbage.$sig" 2>"$T_TMP/e3" >/dev/null
if grep -qF "$sig" "$T_TMP"/e1 "$T_TMP"/e2 "$T_TMP"/e3 || grep -qF "${tok%%.*}." "$T_TMP"/e1 "$T_TMP"/e2 "$T_TMP"/e3; then
    not_ok "rejection messages never echo the token" "$(cat "$T_TMP"/e1 "$T_TMP"/e2 "$T_TMP"/e3)"
else ok "rejection messages never echo the token"; fi
[ -s "$T_TMP/e1" ] && [ -s "$T_TMP/e2" ] && [ -s "$T_TMP/e3" ] && ok "each rejection printed a reason" || not_ok "each rejection printed a reason"
out=$("$LANYARD" --data "$D" svid mint --id "spiffe://$TD/w2" --out-cert "$T_TMP/w2.pem" --out-key "$T_TMP/w2.key" 2>&1)
if printf '%s' "$out" | grep -q "PRIVATE KEY" || printf '%s' "$out" | grep -qF "$(sed -n 2p "$T_TMP/w2.key")"; then
    not_ok "svid mint never prints the key"; else ok "svid mint never prints the key"; fi
