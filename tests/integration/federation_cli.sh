#!/usr/bin/env bash
# Integration: federation relationships and federated bundles through the real lanyard binary on
# real SQLite data directories. Foreign bundles come from other data directories (`ca init` of
# b.test, c.test, d.test, then `bundle show`). Every command's success path, every refusal with
# its exit code and a message naming the problem, JSON that node parses, `federation delete`
# taking the bundle with it, `bundle set` / `bundle show --trust-domain` round-tripping the
# authorities (fingerprints compared with openssl), and `entry create --federates-with`.
. "$LANYARD_ROOT/tests/lib.sh"
A="$T_TMP/a"     # this trust domain: a.test
L() { "$LANYARD" --data "$A" "$@"; }
F="$T_TMP/files"
mkdir -p "$F"

run L federation list
expect_fail_with "federation list without a data directory explains how to create one" 2 "ca init"
for td in a b c d; do
    "$LANYARD" --data "$T_TMP/$td" ca init --trust-domain "$td.test" >/dev/null || not_ok "ca init $td.test"
done
for td in b c d; do
    "$LANYARD" --data "$T_TMP/$td" bundle show --format spiffe >"$F/$td.json" &&
    "$LANYARD" --data "$T_TMP/$td" bundle show --format pem >"$F/$td.pem" || not_ok "bundle show $td.test"
done
# SHA-256 fingerprint of the first certificate of a PEM file, as lowercase hex without colons.
fp() { openssl x509 -noout -fingerprint -sha256 -in "$1" | sed 's/^.*=//; s/://g' | tr 'A-F' 'a-f'; }
FP_B=$(fp "$F/b.pem"); FP_C=$(fp "$F/c.pem"); FP_D=$(fp "$F/d.pem")
[ ${#FP_B} = 64 ] && [ "$FP_B" != "$FP_C" ] && ok "foreign bundles made by other data directories" ||
    not_ok "foreign bundles made by other data directories" "$FP_B $FP_C"
# Bundle files that are wrong in one way each.
printf 'not a bundle at all\n' >"$F/garbage"
printf '   \n\n' >"$F/blank"
printf '{"keys": []}\n' >"$F/empty.json"
node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1]));
j.keys = j.keys.filter(k => k.use === "jwt-svid"); process.stdout.write(JSON.stringify(j));' \
    "$F/b.json" >"$F/b-jwt-only.json" || not_ok "making a JWT-only bundle"
printf -- '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' >"$F/bad.pem"

# ---- federation add: success --------------------------------------------------------------------
run L federation add --trust-domain b.test --url https://b.example:8443/bundle \
    --profile https_spiffe --endpoint-id spiffe://b.test/bundle-server --bootstrap-bundle "$F/b.json"
expect_rc "federation add https_spiffe with a SPIFFE JSON bootstrap bundle succeeds" 0
[ "$T_OUT" = "added federation with b.test: profile https_spiffe, bundle endpoint https://b.example:8443/bundle, endpoint ID spiffe://b.test/bundle-server, bootstrap bundle with 1 X.509 authority" ] &&
    ok "federation add prints one line naming what was added" || not_ok "federation add prints one line naming what was added" "$T_OUT"
run L federation add --trust-domain d.test --url https://d.example/b \
    --profile https_spiffe --endpoint-id spiffe://d.test/ep --bootstrap-bundle "$F/d.pem"
expect_rc "federation add https_spiffe with a PEM bootstrap bundle succeeds" 0
run L federation add --trust-domain web.test --url https://web.example/bundle --profile https_web
expect_rc "federation add https_web with the system's CAs succeeds" 0
printf '%s\n' "$T_OUT" | grep -q "trust anchors: the system's CA certificates" &&
    ok "https_web without --ca says the system's CAs are used" || not_ok "https_web without --ca says the system's CAs are used" "$T_OUT"
run L federation add --trust-domain webca.test --url 'https://[::1]:8443/bundle?v=1' --profile https_web --ca "$F/c.pem"
expect_rc "federation add https_web with --ca and an IPv6 URL with a query succeeds" 0
printf '%s\n' "$T_OUT" | grep -q "1 CA certificate from" &&
    ok "https_web with --ca counts the CA certificates" || not_ok "https_web with --ca counts the CA certificates" "$T_OUT"

# ---- federation add: every refusal -------------------------------------------------------------
fa() { run L federation add "$@"; }
SP=(--profile https_spiffe --endpoint-id spiffe://e.test/ep --bootstrap-bundle "$F/b.json")
fa --trust-domain Bad_TD --url https://x.example/ --profile https_web
expect_fail_with "an invalid trust domain is refused" 1 "--trust-domain.*(character|byte)"
fa --trust-domain spiffe://x.test --url https://x.example/ --profile https_web
expect_fail_with "a SPIFFE ID given as trust domain is refused" 1 "bare trust domain name"
fa --trust-domain a.test --url https://x.example/ --profile https_web
expect_fail_with "this data directory's own trust domain is refused" 2 "a.test is this data directory's own trust domain"
fa --trust-domain x.test --url http://x.example/ --profile https_web
expect_fail_with "an http:// URL is refused" 1 "--url 'http://x.example/' is not an https:// URL"
fa --trust-domain x.test --url https:// --profile https_web
expect_fail_with "a URL without a host is refused" 1 "--url 'https://' is not a valid URL|no host"
fa --trust-domain x.test --url 'https://user:secret@x.example/' --profile https_web
expect_fail_with "a URL with user info is refused" 1 "--url must not carry user information"
printf '%s' "$T_ERR" | grep -q secret && not_ok "the refused URL's password is not echoed" "$T_ERR" || ok "the refused URL's password is not echoed"
fa --trust-domain x.test --url 'https://@x.example/' --profile https_web
expect_fail_with "a URL with an empty user info is refused" 1 "user information"
fa --trust-domain x.test --url 'https://x.example/bundle#frag' --profile https_web
expect_fail_with "a URL with a fragment is refused" 1 "must not have a fragment"
fa --trust-domain x.test --url 'https://x.example:99999/' --profile https_web
expect_fail_with "a URL with an impossible port is refused" 1 "not a valid URL"
fa --trust-domain x.test --url https://x.example/ --profile https_spiffy
expect_fail_with "an unknown profile is refused" 2 "--profile must be https_web or https_spiffe, not 'https_spiffy'"
fa --trust-domain x.test --url https://x.example/ --profile https_spiffe --endpoint-id spiffe://x.test/ep \
    --bootstrap-bundle "$F/b.json" --ca "$F/c.pem"
expect_fail_with "--ca with https_spiffe is refused" 2 "--ca is only for --profile https_web"
fa --trust-domain x.test --url https://x.example/ --profile https_web --endpoint-id spiffe://x.test/ep
expect_fail_with "--endpoint-id with https_web is refused" 2 "--endpoint-id is only for --profile https_spiffe"
fa --trust-domain x.test --url https://x.example/ --profile https_web --bootstrap-bundle "$F/b.json"
expect_fail_with "--bootstrap-bundle with https_web is refused" 2 "--bootstrap-bundle is only for --profile https_spiffe"
fa --trust-domain b.test --url https://x.example/ --profile https_spiffe --bootstrap-bundle "$F/b.json"
expect_fail_with "https_spiffe without --endpoint-id is refused" 2 "needs both --endpoint-id"
fa --trust-domain b.test --url https://x.example/ --profile https_spiffe --endpoint-id spiffe://b.test/ep
expect_fail_with "https_spiffe without --bootstrap-bundle is refused" 2 "needs both .*--bootstrap-bundle"
fa --trust-domain e.test --url https://e.example/ --profile https_spiffe --endpoint-id 'spiffe://e.test/a/../b' \
    --bootstrap-bundle "$F/b.json"
expect_fail_with "an invalid endpoint ID is refused" 1 "--endpoint-id.*(dot|segment)"
fa --trust-domain e.test --url https://e.example/ --profile https_spiffe --endpoint-id spiffe://e.test \
    --bootstrap-bundle "$F/b.json"
expect_fail_with "an endpoint ID without a path is refused" 1 "--endpoint-id spiffe://e.test must be a SPIFFE ID with a path"
fa --trust-domain e.test --url https://e.example/ --profile https_spiffe --endpoint-id spiffe://b.test/ep \
    --bootstrap-bundle "$F/b.json"
expect_fail_with "an endpoint ID in another trust domain is refused" 1 "--endpoint-id spiffe://b.test/ep must be .* in trust domain e.test"
fa --trust-domain x.test --url https://x.example/ --profile https_web --ca "$F/garbage"
expect_fail_with "a --ca file that is not PEM is refused" 1 "--ca .*garbage must hold PEM certificates"
fa --trust-domain x.test --url https://x.example/ --profile https_web --ca "$F/bad.pem"
expect_fail_with "a --ca PEM block that is not a certificate is refused" 1 "--ca .*bad.pem must hold PEM certificates"
fa --trust-domain x.test --url https://x.example/ --profile https_web --ca "$F/blank"
expect_fail_with "an empty --ca file is refused" 1 "--ca .*blank is empty"
fa --trust-domain x.test --url https://x.example/ --profile https_web --ca "$F/missing.pem"
expect_fail_with "a missing --ca file is an I/O error" 3 "--ca.*missing.pem"
fa --trust-domain e.test --url https://e.example/ --profile https_spiffe --endpoint-id spiffe://e.test/ep \
    --bootstrap-bundle "$F/garbage"
expect_fail_with "a bootstrap bundle that does not parse is refused" 1 "--bootstrap-bundle .*garbage is not a bundle for e.test"
fa --trust-domain e.test --url https://e.example/ --profile https_spiffe --endpoint-id spiffe://e.test/ep \
    --bootstrap-bundle "$F/blank"
expect_fail_with "an empty bootstrap bundle is refused" 1 "is empty"
fa --trust-domain b2.test --url https://e.example/ --profile https_spiffe --endpoint-id spiffe://b2.test/ep \
    --bootstrap-bundle "$F/b-jwt-only.json"
expect_fail_with "a bootstrap bundle without an X.509 authority is refused" 1 "has no X.509 authority"
fa --trust-domain e.test --url https://e.example/ --profile https_spiffe --endpoint-id spiffe://e.test/ep \
    --bootstrap-bundle "$F/c.json"
expect_fail_with "a bootstrap bundle of another trust domain is refused" 1 "belongs to trust domain c.test, not e.test"
fa --trust-domain b.test --url https://other.example/ "${SP[@]/e.test/b.test}"
expect_fail_with "a relationship that already exists is refused" 2 "relationship with trust domain b.test already exists"
fa --trust-domain x.test --profile https_web
expect_fail_with "federation add without --url is a usage error" 2 "usage: lanyard federation add"
fa --trust-domain x.test --url https://x.example/ --profile https_web extra
expect_fail_with "federation add with a stray argument is a usage error" 2 "usage: lanyard federation add"

# ---- federation list / show --------------------------------------------------------------------
run L federation list
expect_rc "federation list succeeds" 0
[ "$(printf '%s\n' "$T_OUT" | grep -c .)" = 4 ] && ok "refused adds stored nothing: four relationships" ||
    not_ok "refused adds stored nothing: four relationships" "$T_OUT"
printf '%s\n' "$T_OUT" | grep -qx "b.test https_spiffe https://b.example:8443/bundle endpoint_id=spiffe://b.test/bundle-server bundle=bootstrap sequence=1 x509=1 jwt=1 last_success=never last_error=-" &&
printf '%s\n' "$T_OUT" | grep -qx "web.test https_web https://web.example/bundle endpoint_id=- bundle=none last_success=never last_error=-" &&
[ "$(printf '%s\n' "$T_OUT" | cut -d' ' -f1 | tr '\n' ' ')" = "b.test d.test web.test webca.test " ] &&
    ok "federation list: one line per relationship, by trust domain, with bundle and fetch state" ||
    not_ok "federation list: one line per relationship, by trust domain, with bundle and fetch state" "$T_OUT"
run L federation list --json
check "federation list --json parses and holds every field" node -e '
const j = JSON.parse(process.argv[1]);
const b = j.find(r => r.trust_domain === "b.test"), w = j.find(r => r.trust_domain === "web.test");
if (j.length !== 4 || b.profile !== "https_spiffe" || b.url !== "https://b.example:8443/bundle" ||
    b.endpoint_id !== "spiffe://b.test/bundle-server" || b.bundle.source !== "bootstrap" ||
    b.bundle.sequence !== 1 || b.bundle.x509_count !== 1 || b.bundle.jwt_count !== 1 ||
    b.last_success_at !== null || b.last_error !== null || !/Z$/.test(b.created_at) ||
    w.profile !== "https_web" || w.endpoint_id !== null || w.bundle !== null)
  { console.log(JSON.stringify(j)); process.exit(1); }' "$T_OUT"

run L federation show b.test
expect_rc "federation show succeeds" 0
printf '%s\n' "$T_OUT" | grep -qx "endpoint_id: spiffe://b.test/bundle-server" &&
printf '%s\n' "$T_OUT" | grep -qx "bundle: source bootstrap, updated .*Z" &&
printf '%s\n' "$T_OUT" | grep -qx "x509_authority: sha256:$FP_B /O=lanyard/CN=b.test" &&
printf '%s\n' "$T_OUT" | grep -qx "last_success: never" && printf '%s\n' "$T_OUT" | grep -qx "last_error: (none)" &&
    ok "federation show: endpoint, bootstrap bundle with the foreign CA's fingerprint, fetch state" ||
    not_ok "federation show: endpoint, bootstrap bundle with the foreign CA's fingerprint, fetch state" "$T_OUT"
run L federation show b.test --json
check "federation show --json parses: bundle summary with sha256 and subject, fetch state" node -e '
const j = JSON.parse(process.argv[1]);
const x = j.bundle.x509_authorities;
if (j.trust_domain !== "b.test" || j.bundle.source !== "bootstrap" || j.bundle.sequence !== 1 ||
    typeof j.bundle.refresh_hint !== "number" || x.length !== 1 || x[0].sha256 !== process.argv[2] ||
    x[0].subject !== "/O=lanyard/CN=b.test" || j.bundle.jwt_authorities.length !== 1 ||
    j.bundle.jwt_authorities[0].kty !== "EC" || j.last_attempt_at !== null ||
    j.ca_certificates !== null)
  { console.log(JSON.stringify(j)); process.exit(1); }' "$T_OUT" "$FP_B"
run L federation show webca.test --json
check "federation show --json lists an https_web relationship's CA certificates" node -e '
const j = JSON.parse(process.argv[1]);
if (j.url !== "https://[::1]:8443/bundle?v=1" || j.bundle !== null || j.ca_certificates.length !== 1 ||
    j.ca_certificates[0].sha256 !== process.argv[2]) { console.log(JSON.stringify(j)); process.exit(1); }' \
    "$T_OUT" "$FP_C"
run L federation show web.test
printf '%s\n' "$T_OUT" | grep -qx "ca: the system's CA certificates" && printf '%s\n' "$T_OUT" | grep -qx "bundle: none yet" &&
    ok "federation show of https_web without --ca: system CAs, no bundle yet" || not_ok "federation show of https_web without --ca: system CAs, no bundle yet" "$T_OUT"
run L federation show nope.test
expect_fail_with "federation show of an unknown trust domain is refused" 1 "no federation relationship with trust domain nope.test"
run L federation show Bad_TD
expect_fail_with "federation show of an invalid trust domain is refused" 1 "trust domain"
run L federation show
expect_fail_with "federation show without a trust domain is a usage error" 2 "usage: lanyard federation show TD"

# ---- bundle list / show --trust-domain ----------------------------------------------------------
run L bundle list
expect_rc "bundle list succeeds" 0
printf '%s\n' "$T_OUT" | grep -qx "a.test source=local sequence=1 x509=1 jwt=1 updated=-" &&
printf '%s\n' "$T_OUT" | grep -q "^b.test source=bootstrap sequence=1 x509=1 jwt=1 updated=.*Z$" &&
printf '%s\n' "$T_OUT" | grep -q "^d.test source=bootstrap sequence=- x509=1 jwt=0 " &&
    ok "bundle list: the own bundle (local) and each federated one with source and counts" ||
    not_ok "bundle list: the own bundle (local) and each federated one with source and counts" "$T_OUT"
run L bundle show --trust-domain b.test --format pem
printf '%s\n' "$T_OUT" >"$F/b-shown.pem"
[ "$(fp "$F/b-shown.pem")" = "$FP_B" ] && ok "bundle show --trust-domain prints the bootstrap bundle (same fingerprint)" ||
    not_ok "bundle show --trust-domain prints the bootstrap bundle (same fingerprint)" "$T_OUT"
run L bundle show --trust-domain a.test
[ "$T_RC" = 0 ] && [ "$T_OUT" = "$(L bundle show)" ] && ok "bundle show --trust-domain of the own trust domain is the plain bundle show" ||
    not_ok "bundle show --trust-domain of the own trust domain is the plain bundle show" "$T_OUT"
run L bundle show --trust-domain nope.test
expect_fail_with "bundle show of an unknown trust domain is refused" 1 "no bundle for trust domain nope.test"
run L bundle show --trust-domain spiffe://b.test
expect_fail_with "bundle show --trust-domain with a SPIFFE ID is refused" 1 "bare trust domain name"

# ---- bundle set ---------------------------------------------------------------------------------
run L bundle set --trust-domain c.test "$F/c.json"
expect_rc "bundle set with SPIFFE bundle JSON succeeds" 0
printf '%s\n' "$T_OUT" | grep -q "^set the static bundle of c.test: 1 X.509 and 1 JWT authorit" &&
    ok "bundle set prints what it stored" || not_ok "bundle set prints what it stored" "$T_OUT"
run L bundle show --trust-domain c.test --format pem
printf '%s\n' "$T_OUT" >"$F/c-shown.pem"
[ "$(fp "$F/c-shown.pem")" = "$FP_C" ] && ok "bundle set then bundle show --format pem round-trips the X.509 authority" ||
    not_ok "bundle set then bundle show --format pem round-trips the X.509 authority" "$T_OUT"
run L bundle show --trust-domain c.test --format spiffe
printf '%s\n' "$T_OUT" >"$F/c-shown.json"
check "bundle show --format spiffe round-trips both authorities (lanyard bundle parse and node)" node -e '
const a = JSON.parse(require("fs").readFileSync(process.argv[1])), b = JSON.parse(require("fs").readFileSync(process.argv[2]));
const k = j => j.keys.map(x => x.use + ":" + (x.x5c ? x.x5c[0] : x.kid)).sort().join(",");
if (k(a) !== k(b) || a.keys.length !== 2) { console.log(k(a), k(b)); process.exit(1); }' "$F/c.json" "$F/c-shown.json"
run "$LANYARD" bundle parse --trust-domain c.test "$F/c-shown.json"
printf '%s\n' "$T_OUT" | grep -q "\"sha256\": *\"$FP_C\"" && ok "the shown JSON bundle holds the same X.509 fingerprint" ||
    not_ok "the shown JSON bundle holds the same X.509 fingerprint" "$T_OUT"
run L bundle set --trust-domain c.test - <"$F/c.pem"
expect_rc "bundle set from standard input (PEM) succeeds" 0
printf '%s\n' "$T_OUT" | grep -q "^replaced the static bundle of c.test: 1 X.509 and 0 JWT" &&
    ok "bundle set again replaces the static bundle" || not_ok "bundle set again replaces the static bundle" "$T_OUT"
run L bundle show --trust-domain c.test --format pem
printf '%s\n' "$T_OUT" >"$F/c-shown2.pem"
[ "$(fp "$F/c-shown2.pem")" = "$FP_C" ] && ok "a PEM static bundle round-trips too" || not_ok "a PEM static bundle round-trips too" "$T_OUT"
run L bundle set --trust-domain a.test "$F/c.json"
expect_fail_with "bundle set for the own trust domain is refused" 2 "a.test is this data directory's own trust domain"
run L bundle set --trust-domain x.test "$F/garbage"
expect_fail_with "bundle set of a file that does not parse is refused" 1 "garbage is not a bundle for x.test"
run L bundle set --trust-domain x.test "$F/blank"
expect_fail_with "bundle set of a blank file is refused" 1 "is empty"
run L bundle set --trust-domain x.test "$F/empty.json"
expect_fail_with "bundle set of a bundle without any authority is refused" 1 "has no authority at all"
run L bundle set --trust-domain b.test "$F/b.json"
expect_fail_with "bundle set for a trust domain with a relationship is refused" 2 "b.test is fetched from https://b.example:8443/bundle; delete the relationship first"
run L bundle set --trust-domain x.test "$F/b.json"
expect_fail_with "bundle set with another trust domain's authorities is refused" 1 "belongs to trust domain b.test, not x.test"
run L bundle set --trust-domain Bad_TD "$F/c.json"
expect_fail_with "bundle set with an invalid trust domain is refused" 1 "--trust-domain"
run L bundle set --trust-domain x.test "$F/missing.json"
expect_fail_with "bundle set of a missing file is an I/O error" 3 "missing.json"
run L bundle set "$F/c.json"
expect_fail_with "bundle set without --trust-domain is a usage error" 2 "usage: lanyard bundle set"
run L federation add --trust-domain c.test --url https://c.example/ --profile https_web
expect_fail_with "federation add over a static bundle is refused" 2 "c.test already has a static bundle; delete it first"

run L bundle list --json
check "bundle list --json parses: local, bootstrap and static bundles with their counts" node -e '
const j = JSON.parse(process.argv[1]);
const by = Object.fromEntries(j.map(b => [b.trust_domain, b]));
if (j.length !== 4 || by["a.test"].source !== "local" || by["a.test"].updated_at !== null ||
    by["b.test"].source !== "bootstrap" || by["b.test"].x509_count !== 1 ||
    by["c.test"].source !== "static" || by["c.test"].x509_count !== 1 || by["c.test"].jwt_count !== 0 ||
    by["c.test"].sequence !== null || by["d.test"].source !== "bootstrap")
  { console.log(JSON.stringify(j)); process.exit(1); }' "$T_OUT"

# ---- bundle delete ------------------------------------------------------------------------------
run L bundle delete --trust-domain b.test
expect_fail_with "bundle delete of a relationship's bundle is refused" 2 "belongs to its federation relationship"
run L bundle delete --trust-domain a.test
expect_fail_with "bundle delete of the own trust domain is refused" 2 "own trust domain"
run L bundle delete --trust-domain nope.test
expect_fail_with "bundle delete of an unknown trust domain is refused" 1 "no federated bundle for trust domain nope.test"
run L bundle delete --trust-domain c.test
expect_rc "bundle delete of a static bundle succeeds" 0
run L bundle show --trust-domain c.test
expect_fail_with "a deleted static bundle is gone" 1 "no bundle for trust domain c.test"

# ---- federation delete and refresh -------------------------------------------------------------
run L federation delete b.test
expect_rc "federation delete succeeds" 0
[ "$T_OUT" = "deleted federation with b.test and its bundle" ] && ok "federation delete says the bundle went too" ||
    not_ok "federation delete says the bundle went too" "$T_OUT"
run L bundle show --trust-domain b.test
expect_fail_with "federation delete removed the bundle too" 1 "no bundle for trust domain b.test"
run L bundle list
! printf '%s\n' "$T_OUT" | grep -q "^b.test " && printf '%s\n' "$T_OUT" | grep -q "^d.test " &&
    ok "bundle list no longer lists the deleted relationship's bundle, the others stay" ||
    not_ok "bundle list no longer lists the deleted relationship's bundle, the others stay" "$T_OUT"
run L federation delete b.test
expect_fail_with "federation delete of an unknown trust domain is refused" 1 "no federation relationship with trust domain b.test"
run L bundle set --trust-domain b.test "$F/b.json"
expect_rc "once the relationship is gone a static bundle may be set" 0
# Without a server, refresh fetches once itself: an endpoint that cannot be reached fails with
# exit 1 naming why, records the attempt, and keeps the bootstrap bundle.
run L federation refresh d.test
expect_fail_with "federation refresh of an unreachable endpoint fails and says why" 1 \
    "federation refresh: .*(resolve|d.example)"
run L federation show d.test --json
printf '%s' "$T_OUT" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);
    process.exit(j.last_attempt_at && j.last_error && !j.last_success_at && j.bundle.source === "bootstrap" ? 0 : 1)})' \
    && ok "the failed attempt is recorded and the bootstrap bundle kept" || not_ok "refresh status recorded" "$T_OUT"
printf '%s' "$T_ERR" | grep -q '"level"' && not_ok "refresh prints no JSON log lines" "$T_ERR" \
    || ok "refresh prints no JSON log lines, only its error"
run L federation refresh nope.test
expect_fail_with "federation refresh of a trust domain without a relationship" 1 "no federation relationship for nope.test"

# ---- entry create --federates-with ------------------------------------------------------------
run L entry create --id spiffe://a.test/mcp/server --selector unix:uid:1000 --federates-with b.test \
    --federates-with later.test
expect_rc "entry create --federates-with (an existing and a not-yet-federated trust domain) succeeds" 0
EID=$T_OUT
run L entry show "$EID" --json
check "entry show --json lists the federated trust domains" node -e '
const j = JSON.parse(process.argv[1]);
if (JSON.stringify(j.federates_with) !== JSON.stringify(["b.test", "later.test"])) { console.log(process.argv[1]); process.exit(1); }' "$T_OUT"
run L entry show "$EID"
printf '%s\n' "$T_OUT" | grep -qx "federates_with: b.test" && ok "entry show lists them as text" || not_ok "entry show lists them as text" "$T_OUT"
run L entry list
printf '%s\n' "$T_OUT" | grep -q "^$EID .* federates_with=b.test federates_with=later.test$" &&
    ok "entry list shows them on the entry's line" || not_ok "entry list shows them on the entry's line" "$T_OUT"
run L entry create --id spiffe://a.test/x --selector unix:uid:1001 --federates-with a.test
expect_fail_with "entry create --federates-with the own trust domain is refused" 2 "--federates-with a.test is this data directory's own trust domain"
run L entry create --id spiffe://a.test/x --selector unix:uid:1001 --federates-with 'Bad_TD'
expect_fail_with "entry create --federates-with an invalid trust domain is refused" 1 "--federates-with"
run L entry create --id spiffe://a.test/x --selector unix:uid:1001 --federates-with b.test --federates-with b.test
expect_fail_with "entry create --federates-with the same trust domain twice is refused" 1 "given twice"
run L entry list
[ "$(printf '%s\n' "$T_OUT" | grep -c .)" = 1 ] && ok "refused entries stored nothing" || not_ok "refused entries stored nothing" "$T_OUT"

# ---- help ---------------------------------------------------------------------------------------
for cmd in "federation add" "federation list" "federation show" "federation delete" "federation refresh" \
           "bundle set" "bundle list" "bundle delete" "bundle show"; do
    run "$LANYARD" $cmd --help
    [ "$T_RC" = 0 ] && printf '%s\n' "$T_OUT" | grep -q "^usage: lanyard $cmd" && printf '%s\n' "$T_OUT" | grep -q -- "--data DIR" &&
        ok "lanyard $cmd --help" || not_ok "lanyard $cmd --help" "$T_RC $T_OUT $T_ERR"
done
run "$LANYARD" federation --help
[ "$T_RC" = 0 ] && [ "$(printf '%s\n' "$T_OUT" | grep -c '^  lanyard federation ')" = 5 ] &&
    ok "lanyard federation --help lists the five federation commands" || not_ok "lanyard federation --help lists the five federation commands" "$T_OUT"
run "$LANYARD" bundle --help
printf '%s\n' "$T_OUT" | grep -q "lanyard bundle set --trust-domain TD FILE" && printf '%s\n' "$T_OUT" | grep -q "lanyard bundle delete --trust-domain TD" &&
printf '%s\n' "$T_OUT" | grep -q "lanyard bundle list \[--json\]" &&
    ok "lanyard bundle --help lists set, list and delete" || not_ok "lanyard bundle --help lists set, list and delete" "$T_OUT"
run "$LANYARD" entry create --help
printf '%s\n' "$T_OUT" | grep -q -- "--federates-with TD" && ok "entry create --help documents --federates-with" ||
    not_ok "entry create --help documents --federates-with" "$T_OUT"

# ---- with a running server: entry create goes through its admin socket ------------------------
SOCK="$T_TMP/workload.sock"
"$LANYARD" --data "$A" server --workload-socket "$SOCK" --health-listen "" 2>"$T_TMP/server.log" &
SPID=$!
trap 'kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; t_cleanup' EXIT
for _ in $(seq 100); do [ -S "$A/admin.sock" ] && break; sleep 0.1; done
if [ -S "$A/admin.sock" ]; then
    run L entry create --id spiffe://a.test/mcp/client --selector unix:uid:1002 --federates-with d.test
    expect_rc "entry create --federates-with through the running server succeeds" 0
    EID2=$T_OUT
    grep -q '"event":"entry.created"' "$T_TMP/server.log" && ok "the server created it (admin socket)" ||
        not_ok "the server created it (admin socket)" "$(tail -5 "$T_TMP/server.log")"
    run L entry show "$EID2" --json
    printf '%s' "$T_OUT" | node -e 'const j = JSON.parse(require("fs").readFileSync(0));
        process.exit(JSON.stringify(j.federates_with) === "[\"d.test\"]" ? 0 : 1)' &&
        ok "the server recorded federates_with" || not_ok "the server recorded federates_with" "$T_OUT"
    run L entry create --id spiffe://a.test/y --selector unix:uid:1003 --federates-with a.test
    expect_fail_with "the own trust domain is refused with a server running too" 2 "own trust domain"
    run L federation add --trust-domain web2.test --url https://web2.example/ --profile https_web
    expect_rc "federation add while the server runs succeeds" 0
else
    not_ok "server started" "$(cat "$T_TMP/server.log")"
fi
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
