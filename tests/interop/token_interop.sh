#!/usr/bin/env bash
# User access tokens across lanyard and `jose` (tests/interop/tokencheck.mjs), both ways:
#   - a token from `lanyard token mint` is verified by jose against the SPIFFE bundle's JWT keys
#     with typ at+jwt, iss and aud required, and its cnf checked against the certificate;
#   - a token signed by jose (typ at+jwt, key made by openssl, JWK added to a bundle file) is
#     accepted by `lanyard token verify --bundle TD=FILE`;
#   - wrong audience, issuer, client, typ, certificate and expiry are refused by both sides.
. "$LANYARD_ROOT/tests/lib.sh"
OPENSSL=/usr/bin/openssl
IOP=$LANYARD_ROOT/tests/interop
TOK="node $IOP/tokencheck.mjs"
TD=tokens.example.test
CLIENT=spiffe://$TD/mcp/client
OTHER_CLIENT=spiffe://$TD/mcp/intruder
AUD=https://mcp.$TD/server
OTHER_AUD=https://mcp.$TD/other
D=$T_TMP/tok
mkdir -p "$D"
L() { "$LANYARD" --data "$D/data" "$@"; }

if [ -f "$IOP/node_modules/jose/package.json" ]; then ok "npm packages for the checkers are installed"
else not_ok "npm packages for the checkers are installed" "run: (cd tests/interop && npm ci)"; fi
first_line_is() { # NAME WANT: after `run`, exit 0 and the first stdout line equals WANT
    if [ "$T_RC" -eq 0 ] && [ "$(printf '%s\n' "$T_OUT" | head -n1)" = "$2" ]; then ok "$1"
    else not_ok "$1" "exit $T_RC stdout: ${T_OUT:0:300}" "stderr: ${T_ERR:0:300}" "wanted first line: $2"; fi
}
rejected() { # NAME PATTERN: after `run`, exit 1 and stderr matching PATTERN
    if [ "$T_RC" -eq 1 ] && printf '%s' "$T_ERR" | grep -qiE -- "$2"; then ok "$1"
    else not_ok "$1" "exit $T_RC (expected 1) stdout: ${T_OUT:0:200}" "stderr: ${T_ERR:0:300}" "wanted: $2"; fi
}

# ---- lanyard mints, jose verifies ----------------------------------------------------------
run L ca init --trust-domain $TD
expect_rc "ca init" 0
L svid mint --id $CLIENT --out-cert "$D/client.pem" --out-key "$D/client.key" >/dev/null
L svid mint --id $OTHER_CLIENT --out-cert "$D/other.pem" --out-key "$D/other.key" >/dev/null
run L bundle show --format spiffe
printf '%s\n' "$T_OUT" >"$D/bundle.json"
expect_rc "bundle show --format spiffe" 0

run L token mint --user alice --client $CLIENT --audience $AUD --bind-cert "$D/client.pem" --ttl 10m
expect_rc "lanyard token mint" 0
BOUND=$T_OUT
run $TOK verify "$BOUND" "$D/bundle.json" $AUD spiffe://$TD $CLIENT "$D/client.pem"
first_line_is "jose verifies the lanyard token (typ at+jwt, iss, aud, client_id, cnf)" alice
run $TOK verify "$BOUND" "$D/bundle.json" $OTHER_AUD spiffe://$TD $CLIENT
rejected "jose rejects the lanyard token for another audience" "aud"
run $TOK verify "$BOUND" "$D/bundle.json" $AUD spiffe://other.test $CLIENT
rejected "jose rejects the lanyard token for another issuer" "iss"
run $TOK verify "$BOUND" "$D/bundle.json" $AUD spiffe://$TD $OTHER_CLIENT
rejected "jose sees the lanyard token names its client" "client_id"
run $TOK verify "$BOUND" "$D/bundle.json" $AUD spiffe://$TD $CLIENT "$D/other.pem"
rejected "jose sees the lanyard token is bound to the client's certificate only" "x5t#S256"
sed 's/"jwt-svid"/"x509-svid"/g' "$D/bundle.json" >"$D/bundle-x509only.json"
run $TOK verify "$BOUND" "$D/bundle-x509only.json" $AUD spiffe://$TD $CLIENT
rejected "jose finds no JWT authority for the token in an x509-only bundle" "no jwt-svid authority"
SVID=$(L jwt mint --id $CLIENT --audience $AUD)
run $TOK verify "$SVID" "$D/bundle.json" $AUD spiffe://$TD $CLIENT
rejected "jose refuses a lanyard JWT-SVID as an access token (typ)" "typ"
run L token verify --audience $AUD --client $CLIENT --cert "$D/client.pem" "$BOUND"
first_line_is "lanyard verifies its own token" alice

# ---- jose mints, lanyard verifies ----------------------------------------------------------
PARTNER=partner.example.test
check "openssl makes a P-256 PKCS#8 key for jose" \
    $OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/ext.key"
node "$IOP/jwtcheck.mjs" jwk "$D/ext.key" ext-kid-1 >"$D/ext-bundle.json" 2>"$D/ext-bundle.err"
if [ -s "$D/ext-bundle.json" ]; then ok "jose exports the key as a SPIFFE bundle JWK"
else not_ok "jose exports the key as a SPIFFE bundle JWK" "$(cat "$D/ext-bundle.err")"; fi
jmint() { $TOK mint "$D/ext.key" ext-kid-1 "$@" 2>"$D/mint.err" || cat "$D/mint.err" >&2; }
V() { run L token verify --bundle $PARTNER="$D/ext-bundle.json" --audience $AUD --client $CLIENT "$@"; }

EXT=$(jmint spiffe://$PARTNER bob $AUD $CLIENT)
[ -n "$EXT" ] && ok "jose mints an ES256 at+jwt token" || not_ok "jose mints an ES256 at+jwt token" "$(cat "$D/mint.err")"
run $TOK verify "$EXT" "$D/ext-bundle.json" $AUD spiffe://$PARTNER $CLIENT
first_line_is "jose verifies its own token (checker sanity)" bob
V "$EXT"
first_line_is "lanyard accepts the jose token with --bundle $PARTNER=<jwk bundle>" bob
printf '%s\n' "$T_OUT" | grep -qx "issuer: spiffe://$PARTNER" && printf '%s\n' "$T_OUT" | grep -qx "client: $CLIENT" &&
    ok "lanyard reports the jose token's issuer and client" || not_ok "lanyard reports the jose token's issuer and client" "$T_OUT"
printf '%s\n' "$EXT" >"$D/ext.tok"
V "$D/ext.tok"
first_line_is "lanyard accepts the jose token read from a file" bob
BOUND_EXT=$(jmint spiffe://$PARTNER bob $AUD $CLIENT --cert "$D/client.pem")
V --cert "$D/client.pem" "$BOUND_EXT"
first_line_is "lanyard accepts a jose token bound to the client's certificate" bob
V --cert "$D/other.pem" "$BOUND_EXT"
rejected "lanyard refuses that token with another certificate" "token bound to another certificate"
V "$BOUND_EXT"
rejected "lanyard refuses that token without the certificate" "not presented"
V "$(jmint spiffe://$PARTNER bob "$OTHER_AUD,$AUD" $CLIENT --no-azp)"
first_line_is "lanyard accepts a jose token with an aud array and client_id only" bob
V "$(jmint spiffe://$PARTNER bob $AUD $CLIENT --typ application/at+jwt)"
first_line_is "lanyard accepts typ application/at+jwt (RFC 9068 §4)" bob
V "$(jmint spiffe://$PARTNER bob $AUD $CLIENT --typ JWT)"
rejected "lanyard refuses a jose token with typ JWT" "token type not at\+jwt"
V "$(jmint spiffe://$PARTNER bob $OTHER_AUD $CLIENT)"
rejected "lanyard refuses a jose token for another audience" "token audience mismatch"
V "$(jmint spiffe://$PARTNER bob $AUD $OTHER_CLIENT)"
rejected "lanyard refuses a jose token issued to another client" "token issued to another client"
V "$(jmint spiffe://$PARTNER bob $AUD $CLIENT --ttl -600)"
rejected "lanyard refuses an expired jose token" "token expired"
run L token verify --bundle $TD="$D/bundle.json" --bundle $PARTNER="$D/ext-bundle.json" \
    --audience $AUD --client $CLIENT "$(jmint spiffe://$TD bob $AUD $CLIENT)"
rejected "lanyard refuses a jose token claiming our issuer (the key is not in our bundle)" "token signing key unknown"
run L token verify --bundle $TD="$D/ext-bundle.json" --audience $AUD --client $CLIENT "$EXT"
rejected "lanyard refuses the jose token when its key is filed under another trust domain" "token issuer not trusted"
V "$(jmint spiffe://$PARTNER/issuer bob $AUD $CLIENT)"
rejected "lanyard refuses a jose token whose iss has a path" "token issuer invalid"
