#!/usr/bin/env bash
# Integration: the consent registry through the real lanyard binary. grant/list/revoke (by id and
# by user+client), workload-only grants, every kind of invalid scope, window and ID refused with
# a clear message and exit 1 or 2, revocation removing the record, JSON that node parses.
. "$LANYARD_ROOT/tests/lib.sh"
D="$T_TMP/data"
TD=consent.lanyard.test
A="spiffe://$TD/agent/a"
B="spiffe://$TD/agent/b"

run "$LANYARD" --data "$D" consent list
expect_fail_with "consent list without a data directory explains how to create one" 2 "ca init"
"$LANYARD" --data "$D" ca init --trust-domain "$TD" >/dev/null || not_ok "ca init"

# ---- grant / list ------------------------------------------------------------------------------
run "$LANYARD" --data "$D" consent grant --user alice --client "$A" --scope tools:echo \
    --scope resources:file:///data/ --expires 1h --window 22:00-06:00 --source-td "$TD"
expect_rc "consent grant succeeds" 0
ID1=$(printf '%s\n' "$T_OUT" | head -1)
[[ "$ID1" =~ ^[0-9a-f]{32}$ ]] && ok "consent grant prints a 128-bit hex id" || not_ok "consent grant prints a 128-bit hex id" "$T_OUT"

run "$LANYARD" --data "$D" consent grant --no-user --client "$B" --scope '*' --granted-by ops
expect_rc "a workload-only grant of '*' succeeds" 0
ID2=$(printf '%s\n' "$T_OUT" | head -1)

run "$LANYARD" --data "$D" consent list
expect_rc "consent list succeeds" 0
printf '%s\n' "$T_OUT" | grep -q "^$ID1 user=alice client=$A expires=[0-9]* window=22:00-06:00 source-td=$TD resources:file:///data/ tools:echo$" &&
printf '%s\n' "$T_OUT" | grep -q "^$ID2 user=(none) client=$B expires=0 \*$" &&
    ok "consent list shows both records with their scopes and conditions" || not_ok "consent list shows both records with their scopes and conditions" "$T_OUT"

run "$LANYARD" --data "$D" consent list --user alice --client "$A"
[ "$(printf '%s\n' "$T_OUT" | grep -c .)" = 1 ] && ok "consent list filters by user and client" || not_ok "consent list filters by user and client" "$T_OUT"
run "$LANYARD" --data "$D" consent list --client "$B"
printf '%s\n' "$T_OUT" | grep -q "^$ID2 " && ! printf '%s\n' "$T_OUT" | grep -q "^$ID1 " &&
    ok "consent list filters by client" || not_ok "consent list filters by client" "$T_OUT"

run "$LANYARD" --data "$D" consent list --json
check "consent list --json parses with node and holds every field" node -e '
const j = JSON.parse(process.argv[1]);
const a = j.find(r => r.id === process.argv[2]), b = j.find(r => r.id === process.argv[3]);
const me = require("os").userInfo().username;
if (j.length !== 2 || a.user !== "alice" || a.client_id !== process.argv[4] || a.no_user !== false ||
    a.scopes.join(",") !== "resources:file:///data/,tools:echo" || a.window !== "22:00-06:00" ||
    a.source_trust_domains[0] !== process.argv[5] || a.expires_at - a.granted_at !== 3600 ||
    a.granted_by !== me || b.user !== null || b.no_user !== true || b.scopes[0] !== "*" ||
    b.expires_at !== 0 || b.window !== null || b.granted_by !== "ops")
  { console.log(JSON.stringify(j)); process.exit(1); }' "$T_OUT" "$ID1" "$ID2" "$A" "$TD"

# ---- refusals ------------------------------------------------------------------------------------
g() { run "$LANYARD" --data "$D" consent grant "$@"; }
g --user alice --client "$A" --scope tool:echo
expect_fail_with "an unknown scope kind is refused" 1 "not tools:NAME, resources:URI_PREFIX"
g --user alice --client "$A" --scope 'tools:*'
expect_fail_with "a wildcard inside a scope is refused" 1 "wildcards are not supported"
g --user alice --client "$A" --scope 'tools:'
expect_fail_with "an empty tool name is refused" 1 "empty name"
g --user alice --client "$A" --scope 'resources:/data/'
expect_fail_with "a resource prefix without a scheme is refused" 1 "URI scheme"
g --user alice --client "$A" --scope 'tools:a b'
expect_fail_with "a tool name with a space is refused" 1 "outside"
g --user alice --client "$A" --scope tools:echo --window 25:00-06:00
expect_fail_with "an impossible window is refused" 1 "hour above 23"
g --user alice --client "$A" --scope tools:echo --window 9-17
expect_fail_with "a malformed window is refused" 1 "HH:MM-HH:MM"
g --user alice --client "$A" --scope tools:echo --window 09:00-09:00
expect_fail_with "an empty window is refused" 1 "empty"
g --user alice --client "spiffe://$TD/Agent/../a" --scope tools:echo
expect_fail_with "a client ID with a dot segment is refused" 1 "client SPIFFE ID"
g --user alice --client "SPIFFE://$TD/agent/a" --scope tools:echo
expect_fail_with "a client ID with the wrong scheme case is refused" 1 "client SPIFFE ID"
g --user alice --client "spiffe://$TD" --scope tools:echo
expect_fail_with "a trust domain is refused as a client" 1 "not a workload"
g --user alice --client "$A" --scope tools:echo --source-td 'Bad_TD'
expect_fail_with "an invalid source trust domain is refused" 1 "source trust domain"
g --user alice --client "$A" --scope tools:echo --expires 0s
expect_fail_with "a non-positive expiry is refused" 2 "expires"
g --user alice --client "$A" --scope tools:echo --expires soon
expect_fail_with "a malformed expiry is refused" 2 "expires"
g --user alice --no-user --client "$A" --scope tools:echo
expect_fail_with "--user with --no-user is a usage error" 2 "exactly one of --user U and --no-user"
g --client "$A" --scope tools:echo
expect_fail_with "neither --user nor --no-user is a usage error" 2 "exactly one"
g --user alice --client "$A"
expect_fail_with "a grant with no scope is a usage error" 2 "usage: lanyard consent grant"
g --user "" --client "$A" --scope tools:echo
expect_fail_with "an empty user is refused" 1 "empty user"
args=(); for i in $(seq 1 65); do args+=(--scope "tools:t$i"); done
g --user alice --client "$A" "${args[@]}"
expect_fail_with "more than 64 scopes are refused" 1 "more than 64 scopes"
run "$LANYARD" --data "$D" consent list
[ "$(printf '%s\n' "$T_OUT" | grep -c .)" = 2 ] && ok "refused grants stored nothing" || not_ok "refused grants stored nothing" "$T_OUT"

# ---- revoke --------------------------------------------------------------------------------------
run "$LANYARD" --data "$D" consent revoke nothex
expect_fail_with "revoking a malformed id is refused" 1 "32 lower-case hex"
run "$LANYARD" --data "$D" consent revoke 0123456789abcdef0123456789abcdef
expect_fail_with "revoking an unknown id is refused" 2 "no consent with id"
run "$LANYARD" --data "$D" consent revoke "$ID1"
expect_rc "consent revoke by id succeeds" 0
run "$LANYARD" --data "$D" consent list
! printf '%s\n' "$T_OUT" | grep -q "^$ID1 " && printf '%s\n' "$T_OUT" | grep -q "^$ID2 " &&
    ok "a revoked record is gone from the list, the other stays" || not_ok "a revoked record is gone from the list, the other stays" "$T_OUT"

"$LANYARD" --data "$D" consent grant --user alice --client "$A" --scope tools:one >/dev/null &&
"$LANYARD" --data "$D" consent grant --user alice --client "$A" --scope tools:two >/dev/null &&
"$LANYARD" --data "$D" consent grant --user alice --client "$B" --scope tools:keep >/dev/null ||
    not_ok "grants for revoke by pair"
run "$LANYARD" --data "$D" consent revoke --user alice --client "$A"
expect_rc "consent revoke by user and client succeeds" 0
[ "$T_OUT" = "revoked 2 consent records" ] && ok "revoke by pair reports how many it removed" || not_ok "revoke by pair reports how many it removed" "$T_OUT"
run "$LANYARD" --data "$D" consent list --user alice
printf '%s\n' "$T_OUT" | grep -q "tools:keep" && ! printf '%s\n' "$T_OUT" | grep -q "tools:one" &&
    ok "revoke by pair leaves the same user's other clients alone" || not_ok "revoke by pair leaves the same user's other clients alone" "$T_OUT"
run "$LANYARD" --data "$D" consent revoke --no-user --client "$B"
expect_rc "workload-only grants are revoked with --no-user" 0
run "$LANYARD" --data "$D" consent revoke --user alice --client "$A"
expect_fail_with "revoking a pair with no records is refused" 2 "no consent for user alice"
run "$LANYARD" --data "$D" consent revoke --user alice
expect_fail_with "revoke --user without --client is a usage error" 2 "usage: lanyard consent revoke"

