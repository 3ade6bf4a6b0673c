#!/usr/bin/env bash
# Integration: user access tokens through the real lanyard binary. `token mint` (bound and
# unbound, PEM and DER certificates, chain files), `token verify` accepting what it should
# (from an argument, a file and stdin; a foreign issuer given its bundle), every rejection with
# its own message and exit 1, every bad input with a clear error, and no token text in stderr.
# Tokens with bad claims are signed here with node's built-in crypto (no lanyard code).
. "$LANYARD_ROOT/tests/lib.sh"
D="$T_TMP/data"
TD=token.lanyard.test
A="spiffe://$TD/agent/a"
B="spiffe://$TD/agent/b"
AUD="https://mcp.$TD/tools"
L() { "$LANYARD" --data "$D" "$@"; }

# rejected NAME PATTERN TOKEN: after `run`, exit 1, stderr matching PATTERN, and neither the
# token nor its payload or signature part anywhere in stderr or stdout.
rejected() {
    local name=$1 pat=$2 tok=$3 pay sig
    pay=$(printf '%s' "$tok" | cut -d. -f2)
    sig=$(printf '%s' "$tok" | cut -d. -f3)
    if [ "$T_RC" -ne 1 ] || ! printf '%s' "$T_ERR" | grep -qiE -- "$pat"; then
        not_ok "$name" "exit $T_RC (expected 1), stderr: ${T_ERR:0:400}" "wanted: $pat"
    elif [ -n "$T_OUT" ]; then
        not_ok "$name" "a rejection printed on stdout: ${T_OUT:0:200}"
    elif { [ ${#pay} -ge 8 ] && printf '%s' "$T_ERR" | grep -qF -- "${pay:0:16}"; } ||
         { [ ${#sig} -ge 8 ] && printf '%s' "$T_ERR" | grep -qF -- "${sig:0:16}"; }; then
        not_ok "$name" "token text in stderr: ${T_ERR:0:400}"
    else
        ok "$name"
    fi
}

run L token mint --user alice --client "$A" --audience "$AUD"
expect_fail_with "token mint without a data directory explains how to create one" 2 "ca init"
L ca init --trust-domain "$TD" >/dev/null || not_ok "ca init"
L svid mint --id "$A" --out-cert "$T_TMP/a.pem" --out-key "$T_TMP/a.key" >/dev/null || not_ok "svid mint a"
L svid mint --id "$B" --out-cert "$T_TMP/b.pem" --out-key "$T_TMP/b.key" >/dev/null || not_ok "svid mint b"
openssl x509 -in "$T_TMP/a.pem" -outform DER -out "$T_TMP/a.der"
A_SHA=$(sha256sum <"$T_TMP/a.der" | cut -d' ' -f1)

# ---- mint ---------------------------------------------------------------------------------
run L token mint --user alice --client "$A" --audience "$AUD" --bind-cert "$T_TMP/a.pem"
expect_rc "token mint --bind-cert succeeds" 0
BOUND=$T_OUT
[ "$(printf '%s\n' "$T_OUT" | wc -l)" = 1 ] && [ -z "$T_ERR" ] &&
    [[ "$BOUND" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] &&
    ok "token mint prints the token on one line and nothing else" ||
    not_ok "token mint prints the token on one line and nothing else" "stdout: ${T_OUT:0:100}" "stderr: $T_ERR"
check "the token's header is {alg: ES256, kid, typ: at+jwt} and its claims are as asked" node -e '
const [h, p] = process.argv[1].split(".").slice(0, 2).map(s => JSON.parse(Buffer.from(s, "base64url")));
const now = Math.floor(Date.now() / 1000);
const x5t = Buffer.from(process.argv[4], "hex").toString("base64url");
if (Object.keys(h).join() !== "alg,kid,typ" || h.alg !== "ES256" || h.typ !== "at+jwt" ||
    p.iss !== "spiffe://" + process.argv[2] || p.sub !== "alice" || p.aud !== process.argv[5] ||
    p.azp !== process.argv[3] || p.client_id !== process.argv[3] || !/^[0-9a-f]{32}$/.test(p.jti) ||
    p.exp - p.iat !== 900 || p.nbf !== p.iat || Math.abs(p.iat - now) > 60 ||
    !p.cnf || p.cnf["x5t#S256"] !== x5t)
  { console.log(JSON.stringify([h, p])); process.exit(1); }' "$BOUND" "$TD" "$A" "$A_SHA" "$AUD"

run L token mint --user alice --client "$A" --audience "$AUD" --bind-cert "$T_TMP/a.der" --ttl 1h
expect_rc "token mint binds to a DER certificate" 0
DER_BOUND=$T_OUT
cat "$T_TMP/a.pem" "$T_TMP/a.key" "$T_TMP/b.pem" >"$T_TMP/chain.pem"
run L token mint --user alice --client "$A" --audience "$AUD" --bind-cert "$T_TMP/chain.pem"
expect_rc "token mint binds to the first certificate of a chain file" 0
CHAIN_BOUND=$T_OUT
run L token mint --user bob --client "$A" --audience "$AUD" --ttl 10m
expect_rc "token mint without --bind-cert succeeds" 0
UNBOUND=$T_OUT

# ---- verify: accepted -----------------------------------------------------------------------
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.pem" "$BOUND"
expect_rc "token verify accepts a bound token with its certificate" 0
printf '%s\n' "$T_OUT" | sed -n 1p | grep -qx alice &&
    printf '%s\n' "$T_OUT" | sed -n 2p | grep -qx "issuer: spiffe://$TD" &&
    printf '%s\n' "$T_OUT" | sed -n 3p | grep -qx "client: $A" &&
    printf '%s\n' "$T_OUT" | sed -n 4p | grep -qE '^expires: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' &&
    printf '%s\n' "$T_OUT" | grep -qx "bound-cert-sha256: $A_SHA" &&
    ok "token verify prints the user first, then issuer, client, expiry and the binding" ||
    not_ok "token verify prints the user first, then issuer, client, expiry and the binding" "$T_OUT"
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.der" "$DER_BOUND"
expect_rc "a token bound to the DER certificate verifies with it" 0
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.der" "$BOUND"
expect_rc "PEM and DER of one certificate bind alike" 0
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.pem" "$CHAIN_BOUND"
expect_rc "the chain file bound its leaf" 0
run L token verify --audience "$AUD" --client="$A" --cert="$T_TMP/chain.pem" "$BOUND"
expect_rc "--client=ID and --cert=FILE work, and a chain file presents its leaf" 0
printf '%s\n' "$BOUND" >"$T_TMP/bound.tok"
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.pem" "$T_TMP/bound.tok"
expect_rc "token verify reads the token from a file" 0
T_OUT=$(printf '%s\n' "$BOUND" | L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.pem" - 2>"$T_TMP/stdin.err"); T_RC=$?
expect_rc "token verify reads the token from stdin" 0
run L token verify --audience "$AUD" --client "$A" "$UNBOUND"
expect_rc "an unbound token verifies without --cert" 0
[ "$(printf '%s\n' "$T_OUT" | head -n1)" = bob ] && ! printf '%s' "$T_OUT" | grep -q bound-cert &&
    ok "an unbound token shows no binding" || not_ok "an unbound token shows no binding" "$T_OUT"
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/b.pem" "$UNBOUND"
expect_rc "an unbound token verifies with any certificate" 0
L bundle show >"$T_TMP/bundle.json"
run L token verify --bundle "$TD=$T_TMP/bundle.json" --audience "$AUD" --client "$A" "$UNBOUND"
expect_rc "token verify accepts the issuer's bundle given with --bundle" 0

# ---- verify: every rejection with its own message ---------------------------------------------
run L token verify --audience "https://mcp.$TD/other" --client "$A" --cert "$T_TMP/a.pem" "$BOUND"
rejected "another audience is refused" "token audience mismatch.*not meant for audience" "$BOUND"
run L token verify --audience "$AUD" --client "$B" --cert "$T_TMP/a.pem" "$BOUND"
rejected "another client is refused" "token issued to another client.*$B" "$BOUND"
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/b.pem" "$BOUND"
rejected "another certificate is refused" "token bound to another certificate.*$A_SHA" "$BOUND"
run L token verify --audience "$AUD" --client "$A" "$BOUND"
rejected "a bound token without --cert is refused" "bound to a certificate .*not (been )?presented" "$BOUND"
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.pem" --at 2099-01-01T00:00:00Z "$BOUND"
rejected "an expired token is refused" "token expired: .*expired at" "$BOUND"
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.pem" --at 2000-01-01T00:00:00Z "$BOUND"
rejected "a token before its nbf is refused" "token not yet valid: .*not valid before" "$BOUND"
TAMPERED=$(node -e '
    const [h, p, s] = process.argv[1].split(".");
    const c = JSON.parse(Buffer.from(p, "base64url")); c.sub = "mallory";
    console.log([h, Buffer.from(JSON.stringify(c)).toString("base64url"), s].join("."));' "$BOUND")
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.pem" "$TAMPERED"
rejected "a tampered token is refused" "token signature invalid" "$TAMPERED"
SVID=$(L jwt mint --id "$A" --audience "$AUD")
run L token verify --audience "$AUD" --client "$A" "$SVID"
rejected "a JWT-SVID is not a token" "token type not at\+jwt.*typ 'JWT'" "$SVID"
run L jwt verify --audience "$AUD" "$UNBOUND"
rejected "a token is not a JWT-SVID" "typ 'at\+jwt' is not allowed" "$UNBOUND"
run L token verify --audience "$AUD" --client "$A" "not-a-token"
rejected "text that is not a JWS is refused" "token malformed" "not.a.token"
run L token verify --audience "$AUD" --client "$A" "${UNBOUND%.*}"
rejected "a token missing its signature part is refused" "token malformed" "$UNBOUND"
# The key is looked up only in the issuer's bundle.
mkdir -p "$T_TMP/other"
"$LANYARD" --data "$T_TMP/other/data" ca init --trust-domain other.lanyard.test >/dev/null
"$LANYARD" --data "$T_TMP/other/data" bundle show >"$T_TMP/other/bundle.json"
run L token verify --bundle "other.lanyard.test=$T_TMP/other/bundle.json" --audience "$AUD" --client "$A" "$UNBOUND"
rejected "a token whose issuer has no bundle is refused" "token issuer not trusted.*$TD" "$UNBOUND"
run L token verify --bundle "$TD=$T_TMP/other/bundle.json" --audience "$AUD" --client "$A" "$UNBOUND"
rejected "another trust domain's keys filed under the issuer do not verify it" "token signing key unknown" "$UNBOUND"

# ---- tokens with bad claims, signed here (node:crypto, key from openssl) ---------------------
CT=crafted.lanyard.test
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T_TMP/crafted.key" 2>/dev/null
cat >"$T_TMP/sign.mjs" <<'EOF'
// sign.mjs KEY KID HEADER_JSON_OR_- CLAIMS_JSON: prints an ES256 compact JWS (header default:
// {alg:ES256,kid:KID,typ:at+jwt}); `bundle KEY KID` prints a SPIFFE bundle holding the key.
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
const [mode, keyPath, kid, hdr, claims] = process.argv.slice(2);
const key = createPrivateKey(readFileSync(keyPath));
if (mode === 'bundle') {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  console.log(JSON.stringify({ keys: [{ use: 'jwt-svid', kid, ...jwk }] }));
} else {
  const h = hdr === '-' ? { alg: 'ES256', kid, typ: 'at+jwt' } : JSON.parse(hdr);
  const input = Buffer.from(JSON.stringify(h)).toString('base64url') + '.' +
    Buffer.from(claims).toString('base64url');
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  console.log(input + '.' + sig.toString('base64url'));
}
EOF
node "$T_TMP/sign.mjs" bundle "$T_TMP/crafted.key" ck1 >"$T_TMP/crafted.json"
NOW=$(date -u +%s)
# claims [JS]: the standard claims (issuer crafted.lanyard.test, client A), edited by JS on `c`.
claims() {
    node -e '
const now = Number(process.argv[1]);
const c = { iss: "spiffe://" + process.argv[2], sub: "carol", aud: process.argv[3],
            azp: process.argv[4], client_id: process.argv[4], exp: now + 600, nbf: now - 60,
            iat: now - 60, jti: "c0ffee" };
(new Function("c", process.argv[5] || ""))(c);
console.log(JSON.stringify(c));' "$NOW" "$CT" "$AUD" "$A" "${1:-}"
}
craft() { node "$T_TMP/sign.mjs" sign "$T_TMP/crafted.key" ck1 "${2:--}" "$(claims "$1")"; }
V() { run L token verify --bundle "$CT=$T_TMP/crafted.json" --audience "$AUD" --client "$A" "$@"; }

GOOD=$(craft "")
V "$GOOD"
expect_rc "a foreign issuer's token verifies against its own bundle" 0
[ "$(printf '%s\n' "$T_OUT" | sed -n 2p)" = "issuer: spiffe://$CT" ] && ok "the issuer line names the foreign trust domain" ||
    not_ok "the issuer line names the foreign trust domain" "$T_OUT"
V "$(craft "" '{"alg":"ES256","kid":"ck1","typ":"application/at+jwt"}')"
expect_rc "typ application/at+jwt is accepted (RFC 9068 §4)" 0
TOK=$(craft "" '{"alg":"HS256","kid":"ck1","typ":"at+jwt"}'); V "$TOK"
rejected "alg HS256 is refused" "token algorithm not allowed.*HS256" "$TOK"
TOK=$(craft "" '{"alg":"ES256","typ":"at+jwt"}'); V "$TOK"
rejected "a token without kid is refused" "token key id invalid" "$TOK"
TOK=$(craft "" '{"alg":"ES256","kid":"ck1"}'); V "$TOK"
rejected "a token without typ is refused" "token type not at\+jwt.*no typ" "$TOK"
TOK=$(craft "" '{"alg":"ES256","kid":"ck1","typ":"at+jwt","crit":["exp"]}'); V "$TOK"
rejected "a crit header is refused" "token malformed.*crit" "$TOK"
TOK=$(craft "c.iss = c.iss + '/broker'"); V "$TOK"
rejected "an issuer with a path is refused" "token issuer invalid.*spiffe://TD" "$TOK"
TOK=$(craft "delete c.iss"); V "$TOK"
rejected "a token without iss is refused" "token issuer invalid.*no iss" "$TOK"
TOK=$(craft "delete c.sub"); V "$TOK"
rejected "a token without sub is refused" "token user invalid" "$TOK"
TOK=$(craft "c.sub = 'car\\nol'"); V "$TOK"
rejected "a user name with a control byte is refused" "token user invalid.*control" "$TOK"
TOK=$(craft "c.aud = 7"); V "$TOK"
rejected "a numeric aud is refused" "token audience invalid" "$TOK"
TOK=$(craft "c.aud = ['x', c.aud]"); V "$TOK"
expect_rc "an aud array holding the audience is accepted" 0
TOK=$(craft "c.aud = ['x', 'y']"); V "$TOK"
rejected "an aud array without the audience is refused" "token audience mismatch" "$TOK"
TOK=$(craft "c.exp = String(c.exp)"); V "$TOK"
rejected "a string exp is refused" "token expiry invalid" "$TOK"
TOK=$(craft "c.nbf = 'soon'"); V "$TOK"
rejected "a string nbf is refused" "token start time invalid.*nbf" "$TOK"
TOK=$(craft "c.client_id = '$B'"); V "$TOK"
rejected "azp and client_id naming different clients are refused" "token client invalid.*different clients" "$TOK"
TOK=$(craft "delete c.azp; delete c.client_id"); V "$TOK"
rejected "a token naming no client is refused" "token client invalid.*neither azp nor client_id" "$TOK"
TOK=$(craft "delete c.azp"); V "$TOK"
expect_rc "client_id alone names the client" 0
TOK=$(craft "c.cnf = {'x5t#S256': Buffer.alloc(31, 1).toString('base64url')}"); V --cert "$T_TMP/a.pem" "$TOK"
rejected "a cnf thumbprint of 31 bytes is refused" "token certificate binding invalid.*32 bytes" "$TOK"
TOK=$(craft "c.cnf = {'x5t#S256': Buffer.from('$A_SHA', 'hex').toString('base64url')}"); V --cert "$T_TMP/a.pem" "$TOK"
expect_rc "a foreign token bound to our client's certificate verifies with it" 0
V --cert "$T_TMP/b.pem" "$TOK"
rejected "and not with another certificate" "token bound to another certificate" "$TOK"
TOK=$(craft "c.jti = 5"); V "$TOK"
rejected "a numeric jti is refused" "token malformed.*jti" "$TOK"
TOK=$(craft "c.exp = c.nbf - 1"); V "$TOK"
rejected "an expired foreign token is refused" "token expired" "$TOK"

# ---- bad input: clear errors, exit 2 (usage) or 1 (invalid value) ---------------------------------
run L token mint --client "$A" --audience "$AUD"
expect_fail_with "token mint without --user" 2 "needs --user, --client and --audience"
run L token mint --user "" --client "$A" --audience "$AUD"
expect_fail_with "token mint with an empty user" 2 "--user must not be empty"
run L token mint --user "$(printf 'a\tb')" --client "$A" --audience "$AUD"
expect_fail_with "token mint with a control byte in the user" 1 "--user: .*control byte"
run L token mint --user alice --user bob --client "$A" --audience "$AUD"
expect_fail_with "token mint with --user twice" 2 "give --user only once"
run L token mint --user alice --client "spiffe://$TD" --audience "$AUD"
expect_fail_with "token mint for a trust domain instead of a client" 1 "names the trust domain itself"
run L token mint --user alice --client "spiffe://$TD/a/../b" --audience "$AUD"
expect_fail_with "token mint for an invalid client ID" 1 "--client"
run L token mint --user alice --client "$A" --audience ""
expect_fail_with "token mint with an empty audience" 2 "--audience must be 1..1024 bytes"
run L token mint --user alice --client "$A" --audience "$AUD" --ttl 5s
expect_fail_with "token mint with too short a TTL" 2 "--ttl must be between 10 s and 86400 s"
run L token mint --user alice --client "$A" --audience "$AUD" --ttl 2d
expect_fail_with "token mint with too long a TTL" 2 "--ttl must be between"
run L token mint --user alice --client "$A" --audience "$AUD" --ttl soon
expect_fail_with "token mint with a malformed TTL" 2 "--ttl"
run L token mint --user alice --client "$A" --audience "$AUD" --bind-cert "$T_TMP/a.key"
expect_fail_with "token mint --bind-cert with a key file" 1 "--bind-cert .*no CERTIFICATE"
run L token mint --user alice --client "$A" --audience "$AUD" --bind-cert "$T_TMP/missing.pem"
expect_fail_with "token mint --bind-cert with a missing file" 3 "--bind-cert: cannot open"
run L token mint --user alice --client "$A" --audience "$AUD" extra
expect_fail_with "token mint with a stray argument" 2 "usage: lanyard token mint"
run L token verify --client "$A" "$UNBOUND"
expect_fail_with "token verify without --audience" 2 "--audience is required"
run L token verify --audience "$AUD" "$UNBOUND"
expect_fail_with "token verify without --client" 2 "--client is required"
run L token verify --audience "$AUD" --client "$A" --client "$B" "$UNBOUND"
expect_fail_with "token verify with --client twice" 2 "give --client only once"
run L token verify --audience "$AUD" --client "spiffe://$TD" "$UNBOUND"
expect_fail_with "token verify for a trust domain instead of a client" 1 "names the trust domain itself"
run L token verify --audience "$AUD" --client "$A" --cert
expect_fail_with "token verify with --cert and no value" 2 "--cert needs a value"
run L token verify --audience "$AUD" --client "$A" --cert "$T_TMP/a.key" "$UNBOUND"
expect_fail_with "token verify --cert with a key file" 1 "--cert .*no CERTIFICATE"
run L token verify --audience "$AUD" --client "$A" --at yesterday "$UNBOUND"
expect_fail_with "token verify with a malformed --at" 2 "--at"
run L token verify --audience "$AUD" --client "$A" --bundle "nonsense" "$UNBOUND"
expect_fail_with "token verify with a malformed --bundle" 2 "TRUST_DOMAIN=FILE"
run L token verify --audience "$AUD" --client "$A"
expect_fail_with "token verify without a token" 2 "usage: lanyard token verify"
run L token verify --audience "" --client "$A" "$UNBOUND"
expect_fail_with "token verify with an empty audience" 2 "--audience must not be empty"
run L token mint --help
expect_rc "token mint --help" 0
run L token
expect_fail_with "lanyard token lists its commands" 2 "lanyard token verify"

if [ -s "$T_TMP/stdin.err" ]; then not_ok "token verify from stdin printed nothing on stderr" "$(cat "$T_TMP/stdin.err")"
else ok "token verify from stdin printed nothing on stderr"; fi
