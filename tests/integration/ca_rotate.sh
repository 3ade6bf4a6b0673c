#!/usr/bin/env bash
# Integration: `lanyard ca rotate` through the real binary. The next CA joins the bundle (two X.509
# authorities, sequence + 1) and signs from then on; an SVID the old CA signed still verifies
# against the new bundle, and one minted afterwards chains to the new CA only (openssl verify).
. "$LANYARD_ROOT/tests/lib.sh"
D="$T_TMP/data"
TD=rotate.lanyard.test
# JSON fields of a SPIFFE bundle on stdin (node is a dependency of the test suite already).
jfield() { node -e 'const b = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const w = process.argv[1];
  console.log(w === "x509" ? b.keys.filter(k => k.use === "x509-svid").length : b.spiffe_sequence);' "$1"; }

run "$LANYARD" --data "$D" ca init --trust-domain "$TD" --ca-ttl 1h
expect_rc "ca init succeeds" 0
"$LANYARD" --data "$D" bundle show --format pem >"$T_TMP/old-bundle.pem"
seq0=$("$LANYARD" --data "$D" bundle show | jfield seq)
run "$LANYARD" --data "$D" svid mint --id "spiffe://$TD/before" --ttl 10m --out-cert "$T_TMP/before.pem" --out-key "$T_TMP/before.key"
expect_rc "SVID minted before the rotation" 0

run "$LANYARD" --data "$D" ca rotate
expect_rc "ca rotate succeeds" 0
printf '%s' "$T_OUT" | grep -q "sequence $((seq0 + 1)), 2 X.509 authorities" && ok "ca rotate reports the new bundle" || not_ok "ca rotate reports the new bundle" "$T_OUT"
"$LANYARD" --data "$D" bundle show >"$T_TMP/bundle.json"
n=$(jfield x509 <"$T_TMP/bundle.json")
[ "$n" = 2 ] && ok "bundle lists 2 X.509 authorities" || not_ok "bundle lists 2 X.509 authorities" "$n"
seq1=$(jfield seq <"$T_TMP/bundle.json")
[ "$seq1" = $((seq0 + 1)) ] && ok "bundle sequence went up by one" || not_ok "bundle sequence went up by one" "$seq0 -> $seq1"
"$LANYARD" --data "$D" bundle show --format pem >"$T_TMP/new-bundle.pem"
[ "$(grep -c 'BEGIN CERTIFICATE' "$T_TMP/new-bundle.pem")" = 2 ] && ok "PEM bundle holds both CAs" || not_ok "PEM bundle holds both CAs"
st=$(sqlite3 "$D/lanyard.db" "select group_concat(status, ',') from (select status from ca order by id)")
[ "$st" = "retired,active" ] && ok "old CA retired, new CA active" || not_ok "old CA retired, new CA active" "$st"
[ "$(ls "$D"/keys/ca-*.key | wc -l)" = 2 ] && [ "$(stat -c %a "$D"/keys/*.key | sort -u)" = 600 ] && ok "one new CA key file, 0600" || not_ok "one new CA key file, 0600" "$(ls -l "$D"/keys)"

run "$LANYARD" --data "$D" svid mint --id "spiffe://$TD/after" --ttl 10m --out-cert "$T_TMP/after.pem" --out-key "$T_TMP/after.key"
expect_rc "SVID minted after the rotation" 0
check "new SVID verifies against the new bundle (openssl -x509_strict)" \
    openssl verify -x509_strict -CAfile "$T_TMP/new-bundle.pem" "$T_TMP/after.pem"
check "old SVID still verifies against the new bundle (openssl -x509_strict)" \
    openssl verify -x509_strict -CAfile "$T_TMP/new-bundle.pem" "$T_TMP/before.pem"
check "old SVID verifies against the old bundle" \
    openssl verify -x509_strict -CAfile "$T_TMP/old-bundle.pem" "$T_TMP/before.pem"
if openssl verify -x509_strict -CAfile "$T_TMP/old-bundle.pem" "$T_TMP/after.pem" >/dev/null 2>&1; then
    not_ok "new SVID does not chain to the old CA"
else ok "new SVID does not chain to the old CA"; fi
# The new SVID's issuer is the active CA (its AKID is the new CA's SKID).
sqlite3 "$D/lanyard.db" "select writefile('$T_TMP/active-ca.der', cert_der) from ca where status='active'" >/dev/null
skid_new=$(openssl x509 -inform DER -in "$T_TMP/active-ca.der" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' ')
akid=$(openssl x509 -in "$T_TMP/after.pem" -noout -ext authorityKeyIdentifier | tail -1 | tr -d ' ' | sed 's/^keyid://')
[ -n "$skid_new" ] && [ "$skid_new" = "$akid" ] && ok "new SVID is signed by the new CA" || not_ok "new SVID is signed by the new CA" "skid $skid_new akid $akid"
run "$LANYARD" --data "$D" svid verify "$T_TMP/before.pem"
expect_rc "lanyard svid verify accepts the old SVID" 0
run "$LANYARD" --data "$D" svid verify "$T_TMP/after.pem"
expect_rc "lanyard svid verify accepts the new SVID" 0

# Usage errors and a missing data directory.
run "$LANYARD" --data "$D" ca rotate extra
expect_rc "ca rotate takes no argument" 2
run "$LANYARD" --data "$T_TMP/none" ca rotate
expect_fail_with "ca rotate without a CA explains how to create one" 2 "ca init"
