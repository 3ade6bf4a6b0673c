#!/usr/bin/env bash
# lanyard's command line: --help everywhere, usage errors, `ca init` refusing to overwrite a CA,
# data directory selection and permissions, and `bundle parse` on the SPIFFE bundle vectors.
. "$LANYARD_ROOT/tests/lib.sh"
VEC=$LANYARD_ROOT/tests/data/vectors/spiffebundle
TD=example.test
mkdir -p "$T_TMP/cwd"
cd "$T_TMP/cwd" || exit 3   # nothing here: --help must not need (or create) a data directory
unset LANYARD_DATA

# ---- --help ----------------------------------------------------------------------------------
for cmd in "" "id" "id parse" "ca" "ca init" "svid" "svid mint" "svid verify" "bundle" "bundle show" \
    "bundle parse" "jwt" "jwt mint" "jwt verify"; do
    # shellcheck disable=SC2086  # $cmd is split on purpose
    run "$LANYARD" $cmd --help
    name="lanyard${cmd:+ $cmd} --help"
    if [ "$T_RC" -eq 0 ] && printf '%s' "$T_OUT" | grep -qi 'usage'; then ok "$name: exit 0 and usage on stdout"
    else not_ok "$name: exit 0 and usage on stdout" "exit $T_RC stdout: ${T_OUT:0:200}" "stderr: ${T_ERR:0:200}"; fi
done
if [ -z "$(ls -A "$T_TMP/cwd")" ]; then ok "--help creates nothing in the working directory"
else not_ok "--help creates nothing in the working directory" "found: $(ls -A "$T_TMP/cwd" | tr '\n' ' ')"; fi

# ---- usage errors ----------------------------------------------------------------------------
run "$LANYARD" frobnicate
expect_rc "unknown command: exit 2" 2
run "$LANYARD" svid frobnicate
expect_rc "unknown svid subcommand: exit 2" 2
run "$LANYARD" bundle show --no-such-flag
expect_rc "unknown option: exit 2" 2
run "$LANYARD" --data "$T_TMP/u" ca init
expect_rc "ca init without --trust-domain: exit 2" 2
run "$LANYARD" --data "$T_TMP/u" ca init --trust-domain $TD --key-type rsa-512
if [ "$T_RC" -eq 1 ] || [ "$T_RC" -eq 2 ]; then ok "ca init with an unknown --key-type is refused (exit 1 or 2)"
else not_ok "ca init with an unknown --key-type is refused (exit 1 or 2)" "exit $T_RC"; fi
run "$LANYARD" --data "$T_TMP/u" ca init --trust-domain 'Not A Domain'
if [ "$T_RC" -eq 1 ] || [ "$T_RC" -eq 2 ]; then ok "ca init with an invalid trust domain is refused (exit 1 or 2)"
else not_ok "ca init with an invalid trust domain is refused (exit 1 or 2)" "exit $T_RC"; fi
if [ ! -e "$T_TMP/u" ] || ! grep -rlq 'PRIVATE KEY' "$T_TMP/u" 2>/dev/null; then ok "refused ca init leaves no CA key behind"
else not_ok "refused ca init leaves no CA key behind" "$(ls -lR "$T_TMP/u" | head -20)"; fi

# ---- ca init refuses to overwrite ------------------------------------------------------------
DATA=$T_TMP/data
tree_sum() { (cd "$1" 2>/dev/null && find . -type f -print0 | sort -z | xargs -0 sha256sum 2>/dev/null | sha256sum); }
run "$LANYARD" --data "$DATA" ca init --trust-domain $TD
expect_rc "ca init" 0
run "$LANYARD" --data "$DATA" bundle show --format pem
before_pem=$T_OUT
before_tree=$(tree_sum "$DATA")
if printf '%s' "$before_pem" | grep -q 'BEGIN CERTIFICATE'; then ok "bundle show --format pem after ca init"
else not_ok "bundle show --format pem after ca init" "exit $T_RC: ${T_OUT:0:200} ${T_ERR:0:200}"; fi
run "$LANYARD" --data "$DATA" ca init --trust-domain $TD
if [ "$T_RC" -ne 0 ] && printf '%s\n%s' "$T_ERR" "$T_OUT" | grep -qi 'already'; then
    ok "second ca init is refused with an 'already' message"
else not_ok "second ca init is refused with an 'already' message" "exit $T_RC stderr: ${T_ERR:0:300}" "stdout: ${T_OUT:0:200}"; fi
run "$LANYARD" --data "$DATA" ca init --trust-domain other.test --key-type ed25519
if [ "$T_RC" -ne 0 ]; then ok "ca init for another trust domain over an existing CA is refused"
else not_ok "ca init for another trust domain over an existing CA is refused" "exit 0"; fi
run "$LANYARD" --data "$DATA" bundle show --format pem
if [ "$T_OUT" = "$before_pem" ]; then ok "the first CA is untouched (same certificate bytes)"
else not_ok "the first CA is untouched (same certificate bytes)" "bundle changed"; fi
if [ "$(tree_sum "$DATA")" = "$before_tree" ]; then ok "the data directory is byte-for-byte unchanged"
else not_ok "the data directory is byte-for-byte unchanged"; fi

# ---- data directory permissions --------------------------------------------------------------
keys=$(grep -rlE -- '-----BEGIN ([A-Z]+ )?PRIVATE KEY-----' "$DATA" 2>/dev/null)
if [ -n "$keys" ]; then
    ok "the data directory holds the CA private key as PEM"
    bad=""
    for k in $keys; do m=$(stat -c %a "$k"); [ "$m" = 600 ] || bad="$bad $k:$m"; done
    if [ -z "$bad" ]; then ok "every private key file in the data directory is mode 0600"
    else not_ok "every private key file in the data directory is mode 0600" "wrong modes:$bad"; fi
else
    not_ok "the data directory holds the CA private key as PEM" "no PEM private key under $DATA:" "$(ls -lR "$DATA" | head -20)"
fi
loose=$(find "$DATA" -perm /o+w 2>/dev/null)
if [ -z "$loose" ]; then ok "nothing in the data directory is world-writable"
else not_ok "nothing in the data directory is world-writable" "$(echo $loose)"; fi

# ---- data directory selection: LANYARD_DATA and the ./lanyard-data default -------------------
mkdir -p "$T_TMP/envcwd" "$T_TMP/defcwd"
(cd "$T_TMP/envcwd" && LANYARD_DATA="$T_TMP/envdata" "$LANYARD" ca init --trust-domain $TD) >/dev/null 2>&1
if [ -d "$T_TMP/envdata" ] && [ -n "$(ls -A "$T_TMP/envdata")" ] && [ ! -e "$T_TMP/envcwd/lanyard-data" ]; then
    ok "LANYARD_DATA selects the data directory"
else not_ok "LANYARD_DATA selects the data directory" "$(ls -la "$T_TMP/envdata" "$T_TMP/envcwd" 2>&1 | head)"; fi
(cd "$T_TMP/defcwd" && "$LANYARD" ca init --trust-domain $TD) >/dev/null 2>&1
if [ -d "$T_TMP/defcwd/lanyard-data" ] && [ -n "$(ls -A "$T_TMP/defcwd/lanyard-data")" ]; then
    ok "the default data directory is ./lanyard-data"
else not_ok "the default data directory is ./lanyard-data" "$(ls -la "$T_TMP/defcwd" 2>&1 | head)"; fi
run env LANYARD_DATA="$T_TMP/envdata" "$LANYARD" --data "$DATA" bundle show --format pem
if [ "$T_RC" -eq 0 ] && [ "$T_OUT" = "$before_pem" ]; then ok "--data takes precedence over LANYARD_DATA"
else not_ok "--data takes precedence over LANYARD_DATA" "exit $T_RC"; fi

# ---- bundle parse on the SPIFFE bundle vectors -----------------------------------------------
# jcheck NAME JSON_TEXT JS_EXPR: passes when JS_EXPR over the parsed JSON `j` is true
jcheck() {
    local name=$1 json=$2 expr=$3 why
    if why=$(node -e '
        let j; try { j = JSON.parse(process.argv[1]); } catch (e) { console.log("not JSON: " + process.argv[1].slice(0, 300)); process.exit(1); }
        let v; try { v = (new Function("j", "return (" + process.argv[2] + ");"))(j); } catch (e) { v = "error: " + e.message; }
        if (v === true) process.exit(0);
        console.log("expression: " + process.argv[2]); console.log("json: " + JSON.stringify(j).slice(0, 900)); process.exit(1);' \
        "$json" "$expr" 2>&1); then ok "$name"
    else local lines=(); while IFS= read -r l; do lines+=("$l"); done <<<"$why"; not_ok "$name" "${lines[@]}"; fi
}
# x5c_sha FILE: sha256 hex of the DER in each x509-svid entry's first x5c, comma-joined
x5c_sha() {
    node -e '
        const b = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const c = require("crypto");
        console.log(b.keys.filter((k) => k.use === "x509-svid" && Array.isArray(k.x5c) && k.x5c.length)
            .map((k) => c.createHash("sha256").update(Buffer.from(k.x5c[0], "base64")).digest("hex")).join(","));' "$1"
}
# parse_valid FILE X509_COUNT JWT_COUNT [LABEL EXPR]
parse_valid() {
    local f=$VEC/$1 x=$2 jw=$3 label=${4:-} extra=${5:-} sha
    sha=$(x5c_sha "$f")
    run "$LANYARD" bundle parse --trust-domain $TD "$f"
    expect_rc "bundle parse $1: exit 0" 0
    jcheck "bundle parse $1: trust_domain, $x X.509 and $jw JWT authorities" "$T_OUT" \
        "j.trust_domain === '$TD' && j.x509_authorities.length === $x && j.jwt_authorities.length === $jw"
    jcheck "bundle parse $1: X.509 authority sha256 is the DER of x5c[0]" "$T_OUT" \
        "j.x509_authorities.map(a => String(a.sha256).toLowerCase().replace(/:/g, '')).join() === '$sha'"
    jcheck "bundle parse $1: X.509 authority subject and JWT kid/kty present" "$T_OUT" \
        "j.x509_authorities.every(a => typeof a.subject === 'string') && j.jwt_authorities.every(k => typeof k.kid === 'string' && k.kid.length > 0 && typeof k.kty === 'string')"
    [ -z "$extra" ] || jcheck "bundle parse $1: $label" "$T_OUT" "$extra"
}
parse_valid spiffebundle_valid_1.json 1 1 "kid C6vs25we..., kty EC, no sequence" \
    "j.jwt_authorities[0].kid === 'C6vs25welZOx6WksNYfbMfiw9l96pMnD' && j.jwt_authorities[0].kty === 'EC' && (j.sequence === null || j.sequence === undefined)"
parse_valid spiffebundle_valid_2.json 1 6 "sequence 1, refresh_hint 60" "j.sequence === 1 && j.refresh_hint === 60"
parse_valid spiffebundle_valid_with_wit.json 1 2 "wit-svid entries ignored, sequence 1, refresh_hint 60" "j.sequence === 1 && j.refresh_hint === 60"
# the standard says a consumer uses the first x5c value and ignores the rest (X509-SVID 6.2)
parse_valid spiffebundle_multiple_x509.json 1 1

parse_invalid() { # NAME FILE
    run "$LANYARD" bundle parse --trust-domain $TD "$2"
    if [ "$T_RC" -eq 1 ] && [ -n "$T_ERR$T_OUT" ]; then ok "bundle parse rejects $1 (exit 1 with a reason)"
    else not_ok "bundle parse rejects $1 (exit 1 with a reason)" "exit $T_RC stdout: ${T_OUT:0:200}" "stderr: ${T_ERR:0:200}"; fi
}
printf 'this is not JSON\n' >"$T_TMP/not-json.json"
head -c 200 "$VEC/spiffebundle_valid_1.json" >"$T_TMP/truncated.json"
: >"$T_TMP/empty.json"
printf '[1,2,3]\n' >"$T_TMP/array.json"
printf '{"keys":[{"use":"x509-svid","kty":"EC","crv":"P-256","x5c":["!!not base64!!"]}]}\n' >"$T_TMP/bad-x5c.json"
printf '{"keys":[{"use":"x509-svid","kty":"EC","crv":"P-256","x5c":["%s"]}]}\n' "$(printf 'not a certificate' | base64 -w0)" >"$T_TMP/x5c-not-der.json"
parse_invalid "a file that is not JSON" "$T_TMP/not-json.json"
parse_invalid "truncated JSON" "$T_TMP/truncated.json"
parse_invalid "an empty file" "$T_TMP/empty.json"
parse_invalid "a JSON array" "$T_TMP/array.json"
parse_invalid "an x5c that is not base64" "$T_TMP/bad-x5c.json"
parse_invalid "an x5c that is not a certificate" "$T_TMP/x5c-not-der.json"
parse_invalid "spiffebundle_no_keys.json (no \"keys\" member)" "$VEC/spiffebundle_no_keys.json"
run "$LANYARD" bundle parse --trust-domain $TD "$T_TMP/does-not-exist.json"
expect_rc "bundle parse of a missing file: exit 3" 3
run "$LANYARD" bundle parse "$VEC/spiffebundle_valid_1.json"
expect_rc "bundle parse without --trust-domain: exit 2" 2
