#!/usr/bin/env bash
# X509-SVIDs minted by lanyard, checked by three independent implementations:
#   - the openssl CLI (`openssl verify -x509_strict -purpose sslclient|sslserver`),
#   - Go's standard library crypto/x509 (tests/interop/gox509, path validation + SPIFFE rules),
#   - @peculiar/x509, a pure-JS parser (tests/interop/x509check.mjs, extension-level facts).
# Done for an ec-p256 CA and for an ed25519 CA, for an MCP server leaf (with a DNS SAN) and an
# MCP client leaf; then the --csr path and TTL clamping to the CA's lifetime.
. "$LANYARD_ROOT/tests/lib.sh"
OPENSSL=/usr/bin/openssl
IOP=$LANYARD_ROOT/tests/interop
TD=example.test
SERVER_ID=spiffe://$TD/mcp/server
CLIENT_ID=spiffe://$TD/mcp/client
TOL=10   # seconds of slack allowed around "now" for notBefore/notAfter

if [ -f "$IOP/node_modules/@peculiar/x509/package.json" ]; then ok "npm packages for the checkers are installed"
else not_ok "npm packages for the checkers are installed" "run: (cd tests/interop && npm ci)"; fi

GOX=$T_TMP/x509verify
if (cd "$LANYARD_ROOT" && GO111MODULE=off GOFLAGS='' GOPROXY=off GOPATH="$T_TMP/gopath" \
        GOCACHE="${BUILD:-$T_TMP}/gocache" go build -o "$GOX" ./tests/interop/gox509) >"$T_TMP/gobuild.log" 2>&1; then
    ok "Go stdlib verifier builds offline"
else
    not_ok "Go stdlib verifier builds offline" "$(head -c 600 "$T_TMP/gobuild.log")"
fi

# facts OUT CERT [ISSUER]: x509check.mjs JSON into OUT
facts() { local out=$1; shift; node "$IOP/x509check.mjs" "$@" >"$out" 2>"$out.err" || echo '{}' >"$out"; }
# jcheck NAME JSON_FILE JS_EXPR: passes when JS_EXPR (over the parsed JSON `j`) is true
jcheck() {
    local name=$1 file=$2 expr=$3 why
    if why=$(node -e '
        const fs = require("fs");
        const j = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
        let v; try { v = (new Function("j", "return (" + process.argv[2] + ");"))(j); } catch (e) { v = "error: " + e.message; }
        if (v === true) process.exit(0);
        console.log("expression: " + process.argv[2]);
        console.log("facts: " + JSON.stringify(j).slice(0, 900));
        process.exit(1);' "$file" "$expr" 2>&1); then ok "$name"
    else
        local lines=(); while IFS= read -r l; do lines+=("$l"); done <<<"$why"
        [ -s "$file.err" ] && lines+=("x509check: $(head -c 300 "$file.err")")
        not_ok "$name" "${lines[@]}"
    fi
}
# sslverify NAME PURPOSE CA LEAF [extra openssl args]
sslverify() {
    local name=$1 purpose=$2 ca=$3 leaf=$4; shift 4
    run $OPENSSL verify -x509_strict -purpose "$purpose" -CAfile "$ca" "$@" "$leaf"
    if [ "$T_RC" -eq 0 ] && printf '%s' "$T_OUT" | grep -q ': OK$'; then ok "$name"
    else not_ok "$name" "exit $T_RC: ${T_OUT:0:300} ${T_ERR:0:300}"; fi
}
first_line_is() { # NAME WANT: after `run`, exit 0 and the first stdout line equals WANT
    if [ "$T_RC" -eq 0 ] && [ "$(printf '%s\n' "$T_OUT" | head -n1)" = "$2" ]; then ok "$1"
    else not_ok "$1" "exit $T_RC stdout: ${T_OUT:0:300}" "stderr: ${T_ERR:0:300}" "wanted first line: $2"; fi
}

leaf_checks() { # KT DIR NAME ID TTL_SECONDS T0 T1
    local kt=$1 dir=$2 name=$3 id=$4 ttl=$5 t0=$6 t1=$7
    local leaf=$dir/$name.pem key=$dir/$name.key f=$dir/$name.facts.json
    sslverify "$kt $name: openssl verify -x509_strict -purpose sslclient" sslclient "$dir/ca.pem" "$leaf"
    sslverify "$kt $name: openssl verify -x509_strict -purpose sslserver" sslserver "$dir/ca.pem" "$leaf"
    run "$GOX" "$dir/ca.pem" "$leaf"
    first_line_is "$kt $name: Go crypto/x509 verifies the chain and reads the single URI SAN $id" "$id"
    run "$LANYARD" --data "$dir/data" svid verify "$leaf"
    first_line_is "$kt $name: lanyard svid verify (local bundle) accepts it" "$id"

    facts "$f" "$leaf" "$dir/ca.pem"
    jcheck "$kt $name: exactly one URI SAN, equal to the minted ID" "$f" "j.uri_sans.length === 1 && j.uri_sans[0] === '$id'"
    jcheck "$kt $name: SAN critical when the subject is empty" "$f" "j.subject !== '' || j.san.critical === true"
    jcheck "$kt $name: basicConstraints present, critical, cA=false" "$f" \
        "j.basic_constraints.present && j.basic_constraints.critical && j.basic_constraints.ca === false"
    jcheck "$kt $name: keyUsage critical with digitalSignature" "$f" \
        "j.key_usage.present && j.key_usage.critical && j.key_usage.usages.includes('digitalSignature')"
    jcheck "$kt $name: keyUsage without keyCertSign/cRLSign" "$f" \
        "!j.key_usage.usages.includes('keyCertSign') && !j.key_usage.usages.includes('cRLSign')"
    jcheck "$kt $name: EKU has serverAuth and clientAuth" "$f" \
        "j.eku.present && j.eku.names.includes('serverAuth') && j.eku.names.includes('clientAuth')"
    jcheck "$kt $name: SKID present, AKID equals the CA's SKID" "$f" \
        "j.skid !== null && j.akid !== null && j.akid_matches_issuer_skid === true"
    jcheck "$kt $name: signature verifies with the CA's public key" "$f" "j.signature_valid === true && j.issuer_name_matches === true"
    jcheck "$kt $name: serial has at least 64 bits" "$f" "j.serial_bits >= 64"
    jcheck "$kt $name: no duplicate extensions" "$f" "j.duplicate_extensions.length === 0"
    jcheck "$kt $name: notBefore within ${TOL}s before the mint" "$f" \
        "j.not_before_unix >= $t0 - $TOL && j.not_before_unix <= $t1 + 1"
    jcheck "$kt $name: notAfter = mint time + ${ttl}s (±${TOL}s)" "$f" \
        "j.not_after_unix >= $t0 + $ttl - $TOL && j.not_after_unix <= $t1 + $ttl + $TOL"

    local mode; mode=$(stat -c %a "$key" 2>/dev/null || echo missing)
    if [ "$mode" = 600 ]; then ok "$kt $name: key file mode 0600"; else not_ok "$kt $name: key file mode 0600" "mode: $mode"; fi
    if [ "$(head -n1 "$key" 2>/dev/null)" = "-----BEGIN PRIVATE KEY-----" ]; then ok "$kt $name: key file is PKCS#8 PEM"
    else not_ok "$kt $name: key file is PKCS#8 PEM" "first line: $(head -n1 "$key" 2>/dev/null)"; fi
    check "$kt $name: openssl pkey reads the key" $OPENSSL pkey -in "$key" -noout
    local kpub cpub
    kpub=$($OPENSSL pkey -in "$key" -pubout 2>/dev/null); cpub=$($OPENSSL x509 -in "$leaf" -noout -pubkey 2>/dev/null)
    if [ -n "$kpub" ] && [ "$kpub" = "$cpub" ]; then ok "$kt $name: key file matches the certificate"
    else not_ok "$kt $name: key file matches the certificate" "key pub: ${kpub:0:120}" "cert pub: ${cpub:0:120}"; fi
}

for kt in ec-p256 ed25519; do
    dir=$T_TMP/$kt; mkdir -p "$dir"
    run "$LANYARD" --data "$dir/data" ca init --trust-domain $TD --key-type $kt
    expect_rc "$kt: ca init" 0
    run "$LANYARD" --data "$dir/data" bundle show --format pem
    printf '%s\n' "$T_OUT" >"$dir/ca.pem"
    if [ "$T_RC" -eq 0 ] && grep -q 'BEGIN CERTIFICATE' "$dir/ca.pem"; then ok "$kt: bundle show --format pem gives the CA"
    else not_ok "$kt: bundle show --format pem gives the CA" "exit $T_RC: ${T_OUT:0:200} ${T_ERR:0:200}"; fi

    # the CA certificate itself
    run $OPENSSL verify -x509_strict -CAfile "$dir/ca.pem" "$dir/ca.pem"
    if [ "$T_RC" -eq 0 ]; then ok "$kt CA: openssl verify -x509_strict"; else not_ok "$kt CA: openssl verify -x509_strict" "${T_OUT:0:300} ${T_ERR:0:300}"; fi
    facts "$dir/ca.facts.json" "$dir/ca.pem"
    f=$dir/ca.facts.json
    jcheck "$kt CA: basicConstraints critical, cA=true" "$f" "j.basic_constraints.present && j.basic_constraints.critical && j.basic_constraints.ca === true"
    jcheck "$kt CA: keyUsage critical with keyCertSign and cRLSign" "$f" \
        "j.key_usage.present && j.key_usage.critical && j.key_usage.usages.includes('keyCertSign') && j.key_usage.usages.includes('cRLSign')"
    jcheck "$kt CA: SKID present" "$f" "j.skid !== null"
    jcheck "$kt CA: self-signature verifies" "$f" "j.signature_valid === true && j.issuer_name_matches === true"
    jcheck "$kt CA: URI SAN is the trust domain ID spiffe://$TD" "$f" "j.uri_sans.length === 1 && j.uri_sans[0] === 'spiffe://$TD'"
    jcheck "$kt CA: serial has at least 64 bits" "$f" "j.serial_bits >= 64"
    if [ $kt = ed25519 ]; then want=Ed25519; else want=ECDSA/P-256; fi
    jcheck "$kt CA: key type is $want" "$f" "j.public_key_algorithm === '$want'"

    # an MCP server leaf (with a DNS SAN) and an MCP client leaf
    t0=$(date -u +%s)
    run "$LANYARD" --data "$dir/data" svid mint --id $SERVER_ID --ttl 1h --dns localhost \
        --out-cert "$dir/server.pem" --out-key "$dir/server.key"
    t1=$(date -u +%s)
    expect_rc "$kt: svid mint (MCP server, --dns localhost)" 0
    leaf_checks $kt "$dir" server $SERVER_ID 3600 "$t0" "$t1"
    sslverify "$kt server: openssl -verify_hostname localhost" sslserver "$dir/ca.pem" "$dir/server.pem" -verify_hostname localhost
    jcheck "$kt server: DNS SAN localhost" "$dir/server.facts.json" "j.dns_sans.length === 1 && j.dns_sans[0] === 'localhost'"

    t0=$(date -u +%s)
    run "$LANYARD" --data "$dir/data" svid mint --id $CLIENT_ID --ttl 30m \
        --out-cert "$dir/client.pem" --out-key "$dir/client.key"
    t1=$(date -u +%s)
    expect_rc "$kt: svid mint (MCP client)" 0
    leaf_checks $kt "$dir" client $CLIENT_ID 1800 "$t0" "$t1"
    jcheck "$kt client: no DNS SAN" "$dir/client.facts.json" "j.dns_sans.length === 0"
done

# ---- --csr: lanyard signs a key it never sees ------------------------------------------------
dir=$T_TMP/ec-p256
mkdir -p "$T_TMP/csr" "$T_TMP/csr-out"
cat >"$T_TMP/csr/req.cnf" <<EOF
[req]
distinguished_name = dn
req_extensions = ext
[dn]
[ext]
subjectAltName = URI:spiffe://$TD/requested-by-csr,DNS:evil.example
basicConstraints = critical,CA:TRUE
EOF
check "openssl makes a CSR (asking for a CA flag and other SANs)" sh -c "
    $OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '$T_TMP/csr/csr.key' &&
    $OPENSSL req -new -key '$T_TMP/csr/csr.key' -subj '/O=lanyard csr test' -config '$T_TMP/csr/req.cnf' -out '$T_TMP/csr/req.csr'"
CSR_ID=spiffe://$TD/mcp/csr-client
cd "$T_TMP/csr-out" || exit 3   # an empty directory, to see every file the mint writes
run "$LANYARD" --data "$dir/data" svid mint --id $CSR_ID --csr "$T_TMP/csr/req.csr" --out-cert leaf.pem
expect_rc "svid mint --csr" 0
cd "$T_TMP" || exit 3
csrpub=$($OPENSSL req -in "$T_TMP/csr/req.csr" -noout -pubkey 2>/dev/null)
leafpub=$($OPENSSL x509 -in "$T_TMP/csr-out/leaf.pem" -noout -pubkey 2>/dev/null)
if [ -n "$csrpub" ] && [ "$csrpub" = "$leafpub" ]; then ok "--csr: the leaf's public key is the CSR's"
else not_ok "--csr: the leaf's public key is the CSR's" "csr: ${csrpub:0:150}" "leaf: ${leafpub:0:150}"; fi
files=$(cd "$T_TMP/csr-out" && ls -A)
if [ "$files" = leaf.pem ]; then ok "--csr: no key file is written (only the certificate)"
else not_ok "--csr: no key file is written (only the certificate)" "files: $(echo $files)"; fi
if ! grep -rlq 'PRIVATE KEY' "$T_TMP/csr-out" 2>/dev/null; then ok "--csr: no private key in the output directory"
else not_ok "--csr: no private key in the output directory"; fi
facts "$T_TMP/csr.facts.json" "$T_TMP/csr-out/leaf.pem" "$dir/ca.pem"
jcheck "--csr: the leaf carries --id only, not the CSR's SANs" "$T_TMP/csr.facts.json" \
    "j.uri_sans.length === 1 && j.uri_sans[0] === '$CSR_ID' && j.dns_sans.length === 0"
jcheck "--csr: the CSR's CA request is ignored (cA=false)" "$T_TMP/csr.facts.json" \
    "j.basic_constraints.present && j.basic_constraints.critical && j.basic_constraints.ca === false"
run "$GOX" "$dir/ca.pem" "$T_TMP/csr-out/leaf.pem"
first_line_is "--csr: Go crypto/x509 verifies the leaf" "$CSR_ID"
sslverify "--csr: openssl verify -x509_strict -purpose sslclient" sslclient "$dir/ca.pem" "$T_TMP/csr-out/leaf.pem"

# ---- TTL longer than the CA's remaining life is clamped to the CA's notAfter ----------------
cdir=$T_TMP/clamp
run "$LANYARD" --data "$cdir/data" ca init --trust-domain $TD --ca-ttl 2h
expect_rc "ca init --ca-ttl 2h" 0
run "$LANYARD" --data "$cdir/data" bundle show --format pem
printf '%s\n' "$T_OUT" >"$cdir/ca.pem"
run "$LANYARD" --data "$cdir/data" svid mint --id $CLIENT_ID --ttl 48h --out-cert "$cdir/leaf.pem" --out-key "$cdir/leaf.key"
expect_rc "svid mint --ttl 48h under a 2h CA" 0
facts "$cdir/ca.facts.json" "$cdir/ca.pem"
facts "$cdir/leaf.facts.json" "$cdir/leaf.pem" "$cdir/ca.pem"
ca_na=$(node -e 'try{console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).not_after_unix ?? 0)}catch(e){console.log(0)}' "$cdir/ca.facts.json")
now=$(date -u +%s)
jcheck "CA made with --ca-ttl 2h expires in about 2h" "$cdir/ca.facts.json" \
    "j.not_after_unix >= $now + 7200 - 60 && j.not_after_unix <= $now + 7200 + $TOL"
jcheck "leaf notAfter clamped to the CA's notAfter" "$cdir/leaf.facts.json" \
    "j.not_after_unix <= $ca_na && j.not_after_unix >= $ca_na - $TOL"
run "$GOX" "$cdir/ca.pem" "$cdir/leaf.pem"
first_line_is "clamped leaf: Go crypto/x509 verifies it" "$CLIENT_ID"
