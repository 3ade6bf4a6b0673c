#!/usr/bin/env bash
# JWT-SVIDs across lanyard and `jose` (tests/interop/jwtcheck.mjs), in both directions:
#   - a lanyard-minted token is verified by jose against `lanyard bundle show --format spiffe`;
#   - a jose-minted token (key made by openssl) is verified by `lanyard jwt verify` given a
#     SPIFFE bundle holding that key;
#   - wrong audiences, wrong bundles and tampering are rejected by both sides.
. "$LANYARD_ROOT/tests/lib.sh"
OPENSSL=/usr/bin/openssl
IOP=$LANYARD_ROOT/tests/interop
JWT="node $IOP/jwtcheck.mjs"
TD=example.test
CLIENT_ID=spiffe://$TD/mcp/client
SERVER_ID=spiffe://$TD/mcp/server
OTHER_AUD=spiffe://$TD/mcp/other-server
D=$T_TMP/jwt
mkdir -p "$D"
L() { "$LANYARD" --data "$D/data" "$@"; }

if [ -f "$IOP/node_modules/jose/package.json" ]; then ok "npm packages for the checkers are installed"
else not_ok "npm packages for the checkers are installed" "run: (cd tests/interop && npm ci)"; fi

# jcheck NAME JSON_FILE JS_EXPR: passes when JS_EXPR (over the parsed JSON `j`) is true
jcheck() {
    local name=$1 file=$2 expr=$3 why
    if why=$(node -e '
        const fs = require("fs");
        let j; try { j = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch (e) { console.log("not JSON: " + e.message); process.exit(1); }
        let v; try { v = (new Function("j", "return (" + process.argv[2] + ");"))(j); } catch (e) { v = "error: " + e.message; }
        if (v === true) process.exit(0);
        console.log("expression: " + process.argv[2]);
        console.log("json: " + JSON.stringify(j).slice(0, 900));
        process.exit(1);' "$file" "$expr" 2>&1); then ok "$name"
    else
        local lines=(); while IFS= read -r l; do lines+=("$l"); done <<<"$why"
        not_ok "$name" "${lines[@]}"
    fi
}
first_line_is() { # NAME WANT: after `run`, exit 0 and the first stdout line equals WANT
    if [ "$T_RC" -eq 0 ] && [ "$(printf '%s\n' "$T_OUT" | head -n1)" = "$2" ]; then ok "$1"
    else not_ok "$1" "exit $T_RC stdout: ${T_OUT:0:300}" "stderr: ${T_ERR:0:300}" "wanted first line: $2"; fi
}
rejected() { # NAME: after `run`, exit 1 and a reason (stderr or stdout)
    if [ "$T_RC" -eq 1 ] && [ -n "$T_ERR$T_OUT" ]; then ok "$1"
    else not_ok "$1" "exit $T_RC (expected 1 with a reason) stdout: ${T_OUT:0:200}" "stderr: ${T_ERR:0:300}"; fi
}

# ---- lanyard mints, jose verifies ----------------------------------------------------------
run L ca init --trust-domain $TD
expect_rc "ca init" 0
run L bundle show --format spiffe
printf '%s\n' "$T_OUT" >"$D/bundle.json"
expect_rc "bundle show --format spiffe" 0
jcheck "bundle has a jwt-svid EC P-256 key with a kid" "$D/bundle.json" \
    "Array.isArray(j.keys) && j.keys.some(k => k.use === 'jwt-svid' && typeof k.kid === 'string' && k.kid.length > 0 && k.kty === 'EC' && k.crv === 'P-256' && !('d' in k))"
jcheck "bundle has an x509-svid key with exactly one x5c and no kid" "$D/bundle.json" \
    "j.keys.some(k => k.use === 'x509-svid' && Array.isArray(k.x5c) && k.x5c.length === 1 && !('kid' in k))"
jcheck "no private key material in the bundle" "$D/bundle.json" "j.keys.every(k => !('d' in k) && !('p' in k) && !('q' in k))"

t0=$(date -u +%s)
run L jwt mint --id $CLIENT_ID --audience $SERVER_ID --ttl 5m
expect_rc "jwt mint" 0
TOKEN=$(printf '%s\n' "$T_OUT" | head -n1)
printf '%s\n' "$TOKEN" >"$D/lanyard.jwt"
$JWT decode "$D/lanyard.jwt" >"$D/lanyard.decoded.json" 2>"$D/decode.err" || echo '{}' >"$D/lanyard.decoded.json"
KID=$(node -e 'try{const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(j.keys.find(k=>k.use==="jwt-svid").kid)}catch(e){console.log("")}' "$D/bundle.json")
jcheck "lanyard JWT header is exactly {alg:ES256, kid, typ:JWT}" "$D/lanyard.decoded.json" \
    "j.header.alg === 'ES256' && j.header.typ === 'JWT' && typeof j.header.kid === 'string' && Object.keys(j.header).sort().join() === 'alg,kid,typ'"
jcheck "lanyard JWT kid is the bundle's jwt-svid kid" "$D/lanyard.decoded.json" "j.header.kid === '$KID'"
jcheck "lanyard JWT claims: sub, single aud, exp = now + 300s" "$D/lanyard.decoded.json" \
    "j.payload.sub === '$CLIENT_ID' && (j.payload.aud === '$SERVER_ID' || (Array.isArray(j.payload.aud) && j.payload.aud.length === 1 && j.payload.aud[0] === '$SERVER_ID')) && j.payload.exp >= $t0 + 300 - 10 && j.payload.exp <= $(date -u +%s) + 300 + 10"

run $JWT verify "$D/lanyard.jwt" "$D/bundle.json" $SERVER_ID $TD
first_line_is "jose verifies the lanyard JWT against the SPIFFE bundle" $CLIENT_ID
run $JWT verify "$TOKEN" "$D/bundle.json" $OTHER_AUD $TD
rejected "jose rejects the lanyard JWT for another audience"
sed 's/"jwt-svid"/"x509-svid"/g' "$D/bundle.json" >"$D/bundle-x509only.json"
run $JWT verify "$TOKEN" "$D/bundle-x509only.json" $SERVER_ID $TD
rejected "jose never uses a non-jwt-svid key for the lanyard JWT"

run L jwt verify --audience $SERVER_ID "$TOKEN"
first_line_is "lanyard verifies its own JWT (local bundle)" $CLIENT_ID
run L jwt verify --bundle $TD="$D/bundle.json" --audience $SERVER_ID "$D/lanyard.jwt"
first_line_is "lanyard verifies its own JWT from a file with --bundle" $CLIENT_ID
run L jwt verify --audience $OTHER_AUD "$TOKEN"
rejected "lanyard rejects its own JWT for another audience"

# tampered payload: same header and signature, sub changed
TAMPERED=$(node -e '
    const [h, p, s] = process.argv[1].split(".");
    const c = JSON.parse(Buffer.from(p, "base64url").toString()); c.sub = process.argv[2];
    console.log([h, Buffer.from(JSON.stringify(c)).toString("base64url"), s].join("."));' "$TOKEN" "spiffe://$TD/mcp/admin" 2>/dev/null)
run $JWT verify "$TAMPERED" "$D/bundle.json" $SERVER_ID
rejected "jose rejects a tampered lanyard JWT"
run L jwt verify --audience $SERVER_ID "$TAMPERED"
rejected "lanyard rejects a tampered lanyard JWT"

run L jwt mint --id $CLIENT_ID --audience $SERVER_ID --audience $OTHER_AUD --ttl 5m
expect_rc "jwt mint with two audiences" 0
TWO=$(printf '%s\n' "$T_OUT" | head -n1)
run $JWT verify "$TWO" "$D/bundle.json" $OTHER_AUD $TD
first_line_is "jose accepts a two-audience lanyard JWT for its second audience" $CLIENT_ID

# ---- jose mints, lanyard verifies ----------------------------------------------------------
PARTNER=partner.test
AGENT_ID=spiffe://$PARTNER/agent/7
check "openssl makes a P-256 PKCS#8 key for jose" \
    $OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/ext.key"
$JWT jwk "$D/ext.key" ext-kid-1 >"$D/ext-bundle.json" 2>"$D/ext-bundle.err"
jcheck "jose exports a SPIFFE bundle for that key" "$D/ext-bundle.json" \
    "j.keys.length === 1 && j.keys[0].use === 'jwt-svid' && j.keys[0].kid === 'ext-kid-1' && j.keys[0].crv === 'P-256'"
$JWT mint "$D/ext.key" ext-kid-1 $AGENT_ID $SERVER_ID 300 >"$D/ext.jwt" 2>"$D/ext.err"
if [ -s "$D/ext.jwt" ]; then ok "jose mints an ES256 JWT-SVID"; else not_ok "jose mints an ES256 JWT-SVID" "$(cat "$D/ext.err")"; fi
EXT=$(head -n1 "$D/ext.jwt")
run $JWT verify "$EXT" "$D/ext-bundle.json" $SERVER_ID $PARTNER
first_line_is "jose verifies its own token (checker sanity)" $AGENT_ID

run L jwt verify --bundle $PARTNER="$D/ext-bundle.json" --audience $SERVER_ID "$EXT"
first_line_is "lanyard verifies the jose-minted JWT with --bundle $PARTNER=<jwk bundle>" $AGENT_ID
run L jwt verify --bundle $PARTNER="$D/ext-bundle.json" --audience $SERVER_ID "$D/ext.jwt"
first_line_is "lanyard verifies the jose-minted JWT read from a file" $AGENT_ID
run L jwt verify --bundle $PARTNER="$D/ext-bundle.json" --audience $OTHER_AUD "$EXT"
rejected "lanyard rejects the jose-minted JWT for another audience"
run $JWT verify "$EXT" "$D/ext-bundle.json" $OTHER_AUD $PARTNER
rejected "jose rejects its own JWT for another audience (checker sanity)"
run L jwt verify --bundle $TD="$D/ext-bundle.json" --audience $SERVER_ID "$EXT"
rejected "lanyard rejects the jose JWT when its key is filed under another trust domain"
sed 's/"jwt-svid"/"x509-svid"/' "$D/ext-bundle.json" >"$D/ext-bundle-x509.json"
run L jwt verify --bundle $PARTNER="$D/ext-bundle-x509.json" --audience $SERVER_ID "$EXT"
rejected "lanyard never uses a non-jwt-svid key to verify a JWT"
$JWT mint "$D/ext.key" other-kid $AGENT_ID $SERVER_ID 300 >"$D/ext-kid.jwt" 2>/dev/null
run L jwt verify --bundle $PARTNER="$D/ext-bundle.json" --audience $SERVER_ID "$D/ext-kid.jwt"
rejected "lanyard rejects a jose JWT whose kid is not in the bundle"
$JWT mint "$D/ext.key" ext-kid-1 $AGENT_ID $SERVER_ID -600 >"$D/ext-expired.jwt" 2>/dev/null
run L jwt verify --bundle $PARTNER="$D/ext-bundle.json" --audience $SERVER_ID "$D/ext-expired.jwt"
rejected "lanyard rejects an expired jose JWT"
$JWT mint "$D/ext.key" ext-kid-1 $AGENT_ID "$OTHER_AUD,$SERVER_ID" 300 >"$D/ext-two.jwt" 2>/dev/null
run L jwt verify --bundle $PARTNER="$D/ext-bundle.json" --audience $SERVER_ID "$D/ext-two.jwt"
first_line_is "lanyard accepts a jose JWT whose aud array contains its audience" $AGENT_ID
