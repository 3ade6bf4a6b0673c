#!/usr/bin/env bash
# `lanyard svid verify` against a matrix of X509-SVIDs made by the openssl CLI (its own test
# CAs, with good and bad leaves and intermediates written as -extfile sections), plus
# `lanyard id parse`. Each bad case must exit 1 with a reason on stderr specific to that case.
# Every bad fixture is first confirmed bad by an independent verifier (Go's crypto/x509 plus
# the SPIFFE leaf rules, tests/interop/gox509), so a mistake in a fixture cannot hide a bug.
. "$LANYARD_ROOT/tests/lib.sh"
OPENSSL=/usr/bin/openssl
D=$T_TMP/m
mkdir -p "$D"
cd "$D" || exit 3
TD=example.test
ID=spiffe://$TD/workload/a

# ---- fixtures ------------------------------------------------------------------------------
cat >pki.cnf <<EOF
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
subjectAltName = URI:spiffe://$TD
[other_ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
subjectAltName = URI:spiffe://other.test
[int_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = URI:spiffe://$TD
[int_not_ca]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[int_no_kcs]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,digitalSignature,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf_ok]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:$ID
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:$ID
[leaf_kcs]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyCertSign
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:$ID
[leaf_crl]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,cRLSign
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:$ID
[leaf_no_ds]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:$ID
[leaf_two_uri]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:$ID,URI:spiffe://$TD/workload/b
[leaf_no_uri]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:workload.example.test
[leaf_https]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:https://$TD/workload/a
[leaf_root_path]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:spiffe://$TD
[leaf_other_td]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:spiffe://other.test/x
EOF

fixture_log=$D/fixtures.log
fx() { "$@" >>"$fixture_log" 2>&1; }
mkca() { # name section
    fx $OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" &&
    fx $OPENSSL req -new -x509 -key "$1.key" -sha256 -days 30 -subj "/O=lanyard test/CN=$1" \
        -config pki.cnf -extensions "$2" -out "$1.pem"
}
# sign NAME ISSUER SECTION [DAYS]: a certificate for the shared leaf key, signed by ISSUER
sign() {
    fx $OPENSSL x509 -req -in leaf.csr -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days "${4:-1}" \
        -sha256 -extfile pki.cnf -extensions "$3" -out "$1.pem"
}
# sign_key NAME ISSUER SECTION: an intermediate with its own key, signed by ISSUER
sign_key() {
    fx $OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" &&
    fx $OPENSSL req -new -key "$1.key" -subj "/O=lanyard test/CN=$1" -config pki.cnf -out "$1.csr" &&
    fx $OPENSSL x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 10 \
        -sha256 -extfile pki.cnf -extensions "$3" -out "$1.pem"
}
# spiffe_bundle CA_PEM...: a SPIFFE bundle (JWKS) with one x509-svid entry per CA
spiffe_bundle() {
    node -e '
        const fs = require("fs"), { X509Certificate } = require("crypto");
        const keys = process.argv.slice(1).map((f) => {
            const c = new X509Certificate(fs.readFileSync(f));
            return { use: "x509-svid", ...c.publicKey.export({ format: "jwk" }), x5c: [c.raw.toString("base64")] };
        });
        process.stdout.write(JSON.stringify({ spiffe_sequence: 1, keys }) + "\n");' "$@"
}

fixtures_ok=1
{
    mkca ca ca_ext && mkca otherca other_ca_ext && mkca rogue ca_ext &&
    fx $OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key &&
    fx $OPENSSL req -new -key leaf.key -subj "/O=lanyard test" -config pki.cnf -out leaf.csr &&
    sign leaf ca leaf_ok && sign leaf_ca ca leaf_ca && sign leaf_kcs ca leaf_kcs &&
    sign leaf_crl ca leaf_crl && sign leaf_no_ds ca leaf_no_ds && sign leaf_two_uri ca leaf_two_uri &&
    sign leaf_no_uri ca leaf_no_uri && sign leaf_https ca leaf_https &&
    sign leaf_root_path ca leaf_root_path && sign leaf_other_td ca leaf_other_td &&
    sign leaf_rogue rogue leaf_ok &&
    sign_key int ca int_ext && sign_key int_not_ca ca int_not_ca && sign_key int_no_kcs ca int_no_kcs &&
    sign leaf_via_int int leaf_ok && sign leaf_via_int_not_ca int_not_ca leaf_ok &&
    sign leaf_via_int_no_kcs int_no_kcs leaf_ok &&
    cat leaf_via_int.pem int.pem >chain_int.pem &&
    cat leaf_via_int_not_ca.pem int_not_ca.pem >chain_int_not_ca.pem &&
    cat leaf_via_int_no_kcs.pem int_no_kcs.pem >chain_int_no_kcs.pem &&
    : >empty.pem &&
    spiffe_bundle ca.pem >ca.json && spiffe_bundle otherca.pem >otherca.json &&
    printf '{"spiffe_sequence":1,"keys":[]}\n' >empty.json
} || fixtures_ok=0
if [ $fixtures_ok = 1 ]; then ok "openssl made the test PKI"; else not_ok "openssl made the test PKI" "$(tail -20 "$fixture_log")"; exit 1; fi

NOW=$(date -u +%s)
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
AT_EXPIRED=$(iso $((NOW + 3 * 86400)))     # leaf lives 1 day, the CA 30 days
AT_EARLY=$(iso $((NOW - 2 * 86400)))       # before every notBefore
AT_INSIDE=$(iso $((NOW + 3600)))

# ---- the independent verifier --------------------------------------------------------------
GOX=$T_TMP/x509verify
if (cd "$LANYARD_ROOT" && GO111MODULE=off GOFLAGS='' GOPROXY=off GOPATH="$T_TMP/gopath" \
        GOCACHE="${BUILD:-$T_TMP}/gocache" go build -o "$GOX" ./tests/interop/gox509) >"$T_TMP/gobuild.log" 2>&1; then
    ok "Go stdlib verifier builds offline"
else
    not_ok "Go stdlib verifier builds offline" "$(head -c 600 "$T_TMP/gobuild.log")"
    GOX=""
fi
# go_agrees NAME EXPECT_RC ROOTS CHAIN [--at T]: the Go verifier gives the same verdict
go_agrees() {
    local name=$1 want=$2; shift 2
    if [ -z "$GOX" ]; then not_ok "$name" "Go verifier not built"; return; fi
    run "$GOX" "$@"
    expect_rc "$name" "$want"
}
go_agrees "fixture sanity: Go accepts the valid leaf" 0 ca.pem leaf.pem
go_agrees "fixture sanity: Go accepts the leaf via a valid intermediate" 0 ca.pem chain_int.pem

# ---- accepted ------------------------------------------------------------------------------
# accept NAME ARGS...: exit 0 and the SPIFFE ID as the first stdout line
accept() {
    local name=$1; shift
    run "$LANYARD" svid verify "$@"
    if [ "$T_RC" -eq 0 ] && [ "$(printf '%s\n' "$T_OUT" | head -n1)" = "$ID" ]; then ok "$name"
    else not_ok "$name" "exit $T_RC, stdout: ${T_OUT:0:300}" "stderr: ${T_ERR:0:300}" "wanted exit 0 and first line $ID"; fi
}
accept "valid leaf accepted (PEM bundle)" --bundle $TD=ca.pem leaf.pem
accept "valid leaf accepted (SPIFFE bundle JSON)" --bundle $TD=ca.json leaf.pem
accept "valid leaf accepted at an explicit --at inside its validity" --bundle $TD=ca.pem --at "$AT_INSIDE" leaf.pem
accept "valid leaf accepted with an unrelated second bundle" --bundle other.test=otherca.pem --bundle $TD=ca.pem leaf.pem
accept "leaf via a valid intermediate accepted" --bundle $TD=ca.pem chain_int.pem

# ---- rejected ------------------------------------------------------------------------------
# reject NAME REGEX ARGS...: exit 1, a matching reason on stderr, and the ID not printed as accepted
reject() {
    local name=$1 re=$2; shift 2
    run "$LANYARD" svid verify "$@"
    expect_fail_with "$name" 1 "$re"
}
# case NAME REGEX GO_ROOTS CHAIN [extra lanyard args...] with the example.test CA as the bundle
bad() {
    local name=$1 re=$2 roots=$3 chain=$4; shift 4
    go_agrees "fixture sanity: Go rejects $name" 1 "$roots" "$chain" "$@"
    reject "$name rejected" "$re" --bundle $TD=ca.pem "$@" "$chain"
}
bad "leaf with CA flag" '\bca\b|ca flag|basic ?constraints|certificate authority' ca.pem leaf_ca.pem
bad "leaf with keyCertSign" 'key ?cert ?sign|certificate signing' ca.pem leaf_kcs.pem
bad "leaf with cRLSign" 'crl ?sign' ca.pem leaf_crl.pem
bad "leaf without digitalSignature" 'digital ?signature' ca.pem leaf_no_ds.pem
bad "leaf with two URI SANs" 'uri' ca.pem leaf_two_uri.pem
bad "leaf without a URI SAN" 'uri|spiffe ?id' ca.pem leaf_no_uri.pem
bad "leaf with an https URI SAN" 'spiffe|scheme' ca.pem leaf_https.pem
bad "leaf whose ID has no path" 'path' ca.pem leaf_root_path.pem
bad "expired leaf (--at after notAfter)" 'expired' ca.pem leaf.pem --at "$AT_EXPIRED"
bad "not-yet-valid leaf (--at before notBefore)" 'not yet valid|not valid yet' ca.pem leaf.pem --at "$AT_EARLY"
bad "intermediate without the CA flag" 'intermediate|signing|not a ca|ca flag|basic ?constraints' ca.pem chain_int_not_ca.pem
bad "intermediate without keyCertSign" 'intermediate|signing|key ?cert ?sign' ca.pem chain_int_no_kcs.pem
bad "leaf signed by an unknown CA" 'authority|unknown|chain|untrusted|issuer' ca.pem leaf_rogue.pem
bad "leaf whose intermediate is missing" 'authority|unknown|chain|issuer|intermediate' ca.pem leaf_via_int.pem

go_agrees "fixture sanity: Go rejects the other.test leaf against the other.test CA" 1 otherca.pem leaf_other_td.pem
reject "leaf claiming another trust domain rejected (each TD mapped to its own CA)" \
    'authority|unknown|chain|trust ?domain|issuer|signed' \
    --bundle $TD=ca.pem --bundle other.test=otherca.pem leaf_other_td.pem
reject "leaf claiming another trust domain rejected (SPIFFE JSON bundles)" \
    'authority|unknown|chain|trust ?domain|issuer|signed' \
    --bundle $TD=ca.json --bundle other.test=otherca.json leaf_other_td.pem

go_agrees "fixture sanity: Go rejects an empty root set" 1 empty.pem leaf.pem
reject "empty PEM bundle rejected" 'bundle|no .*(authorit|root|anchor|certificate)' --bundle $TD=empty.pem leaf.pem
reject "SPIFFE bundle with \"keys\":[] rejected" 'bundle|no .*(authorit|root|anchor|certificate)' --bundle $TD=empty.json leaf.pem
reject "CA filed under another trust domain rejected" 'bundle|trust ?domain' --bundle other.test=ca.pem leaf.pem
reject "CA filed under another trust domain rejected (SPIFFE JSON)" 'bundle|trust ?domain' --bundle other.test=ca.json leaf.pem

# a rejected verification must not print the ID as if accepted
run "$LANYARD" svid verify --bundle $TD=ca.pem leaf_rogue.pem
if [ "$T_RC" -ne 0 ] && ! printf '%s\n' "$T_OUT" | head -n1 | grep -qxF "$ID"; then ok "rejection does not print the ID as its first stdout line"
else not_ok "rejection does not print the ID as its first stdout line" "exit $T_RC stdout: ${T_OUT:0:200}"; fi

# ---- usage errors --------------------------------------------------------------------------
run "$LANYARD" svid verify --bundle $TD=ca.pem
expect_rc "svid verify without CHAIN_PEM: exit 2" 2
run "$LANYARD" svid verify --bundle "ca.pem" leaf.pem
expect_rc "svid verify --bundle without TD=: exit 2" 2
run "$LANYARD" svid verify --bundle "=ca.pem" leaf.pem
expect_rc "svid verify --bundle with an empty TD: exit 2" 2
run "$LANYARD" svid verify --bundle $TD=ca.pem --at yesterday leaf.pem
expect_rc "svid verify --at yesterday: exit 2" 2
run "$LANYARD" svid verify --bundle $TD=ca.pem --at 2026-13-45T99:00:00Z leaf.pem
expect_rc "svid verify --at with an impossible date: exit 2" 2
run "$LANYARD" svid verify --bundle $TD=ca.pem --at
expect_rc "svid verify --at without a value: exit 2" 2

# ---- lanyard id parse ----------------------------------------------------------------------
# parse_ok ID TD PATH
parse_ok() {
    run "$LANYARD" id parse "$1"
    if [ "$T_RC" -eq 0 ] && printf '%s' "$T_OUT" | grep -qF -- "$2" &&
        { [ -z "$3" ] || printf '%s' "$T_OUT" | grep -qF -- "$3"; }; then ok "id parse accepts ${1:0:60}"
    else not_ok "id parse accepts ${1:0:60}" "exit $T_RC stdout: ${T_OUT:0:300}" "stderr: ${T_ERR:0:300}" "wanted exit 0 showing '$2' and '$3'"; fi
}
parse_bad() {
    run "$LANYARD" id parse "$1"
    if [ "$T_RC" -eq 1 ] && [ -n "$T_OUT$T_ERR" ]; then ok "id parse rejects '${1:0:60}'"
    else not_ok "id parse rejects '${1:0:60}'" "exit $T_RC (expected 1 with a reason) stdout: ${T_OUT:0:200}" "stderr: ${T_ERR:0:200}"; fi
}
parse_ok spiffe://example.test/ns/prod/sa/mcp-server example.test /ns/prod/sa/mcp-server
parse_ok spiffe://example.test example.test ""
parse_ok spiffe://td-1.example_x/a.b/-c_/.d td-1.example_x /a.b/-c_/.d
parse_ok spiffe://example.test/W/Mixed_Case-1.2 example.test /W/Mixed_Case-1.2
parse_ok spiffe://192.168.0.1/w 192.168.0.1 /w
for bad_id in "" "example.test/a" "http://example.test/a" "spiffe://" "spiffe:///a" "spiffe://example.test/" \
    "spiffe://example.test/a/" "spiffe://example.test//a" "spiffe://example.test/a/../b" "spiffe://example.test/./a" \
    "spiffe://example.test/%61" "spiffe://Example.test/a" "SPIFFE://example.test/a" "spiffe://example.test:8443/a" \
    "spiffe://user@example.test/a" "spiffe://example.test/a?x=1" "spiffe://example.test/a#f" "spiffe://[::1]/a" \
    "spiffe://example.test/a b" "spiffe://example.test/a\$" "spiffe://exa mple.test/a" "spiffe://example.test/é"; do
    parse_bad "$bad_id"
done
# the spec-derived vectors (255-byte trust domain, 2048-byte ID, ...)
vec=$LANYARD_ROOT/tests/data/vectors/spiffeid/spiffe-id-vectors.json
node -e '
    const v = require(process.argv[1]);
    for (const c of v.spec_derived) if (!c.input.includes("\0")) process.stdout.write(`${c.valid ? 1 : 0}\t${c.input}\n`);' "$vec" \
    >"$T_TMP/spec_ids.tsv"
while IFS=$'\t' read -r valid id; do
    if [ "$valid" = 1 ]; then
        td=${id#spiffe://}; td=${td%%/*}
        parse_ok "$id" "$td" ""
    else
        parse_bad "$id"
    fi
done <"$T_TMP/spec_ids.tsv"
run "$LANYARD" id parse
expect_rc "id parse without an argument: exit 2" 2
