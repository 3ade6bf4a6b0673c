#!/usr/bin/env bash
# Integration: the audit log through the real lanyard binary. A test helper appends 50 decision
# records through the library; `audit list` filters by client, user, decision and since, and its
# --json output parses with node; `audit verify` passes, then names the record after one byte is
# edited, after a record is deleted and after a crash-truncated tail. The log is 0600 and holds
# no token or key.
. "$LANYARD_ROOT/tests/lib.sh"
D="$T_TMP/data"
LOG="$D/audit.log"
WRITER="$BUILD/tests/helpers/audit_writer"
mkdir -p "$D"

run "$LANYARD" --data "$D" audit verify
expect_fail_with "audit verify without a log says so" 3 "cannot open audit log"

run "$WRITER" "$LOG" 50
expect_rc "the helper appends 50 records" 0
[ "$(stat -c %a "$LOG")" = 600 ] && ok "audit.log is mode 0600" || not_ok "audit.log is mode 0600" "$(stat -c %a "$LOG")"

run "$LANYARD" --data "$D" audit verify
expect_rc "audit verify passes on an intact log" 0
[ "$T_OUT" = "50 records, chain intact" ] && ok "audit verify counts 50 records" || not_ok "audit verify counts 50 records" "$T_OUT"

run "$LANYARD" --data "$D" audit list
expect_rc "audit list succeeds" 0
[ "$(printf '%s\n' "$T_OUT" | wc -l)" -eq 50 ] && ok "audit list prints one line per record" || not_ok "audit list prints one line per record" "${T_OUT:0:300}"

run "$LANYARD" --data "$D" audit list --client spiffe://example.org/client/b
n=$(printf '%s\n' "$T_OUT" | grep -c ' spiffe://example.org/client/b ')
[ "$T_RC" -eq 0 ] && [ "$n" -eq 17 ] && [ "$(printf '%s\n' "$T_OUT" | wc -l)" -eq 17 ] &&
    ok "--client keeps only that client's 17 records" || not_ok "--client keeps only that client's 17 records" "rc $T_RC n $n"

run "$LANYARD" --data "$D" audit list --decision deny --user alice --json
check "--json parses with node; --decision deny --user alice filter exactly" node -e '
const a = JSON.parse(process.argv[1]);
const want = [];
for (let i = 0; i < 50; i++) {
  const user = i % 3 === 2 ? null : ((Math.floor(i / 3) % 2) ? "bob" : "alice");
  if (i % 2 === 1 && user === "alice") want.push(i + 1);
}
if (!Array.isArray(a) || a.length !== want.length || a.some((r, k) => r.seq !== want[k] ||
    r.decision !== "deny" || r.user !== "alice" || !/^[0-9a-f]{64}$/.test(r.prev) ||
    isNaN(Date.parse(r.time)) || r.method !== "tools/call"))
  { console.log(JSON.stringify(a).slice(0, 400), want); process.exit(1); }' "$T_OUT"

run "$LANYARD" --data "$D" audit list --since 10m --json
check "--since 10m keeps the records of the last ten minutes" node -e '
const a = JSON.parse(process.argv[1]);
if (a.length < 10 || a.length > 11 || a[a.length - 1].seq !== 50) { console.log(a.length); process.exit(1); }' "$T_OUT"

first=$(printf '%s\n' "$("$LANYARD" --data "$D" audit list)" | sed -n 41p | cut -d' ' -f2)
run "$LANYARD" --data "$D" audit list --since "$first"
[ "$T_RC" -eq 0 ] && [ "$(printf '%s\n' "$T_OUT" | head -1 | cut -d' ' -f1)" = 41 ] &&
    ok "--since RFC3339 starts at that record" || not_ok "--since RFC3339 starts at that record" "$first ${T_OUT:0:200}"

run "$LANYARD" --data "$D" audit list --decision maybe
expect_fail_with "--decision other than allow/deny is a usage error" 2 "allow or deny"
run "$LANYARD" --data "$D" audit list --since yesterday
expect_fail_with "a bad --since is a usage error" 2 "since"

run "$WRITER" "$LOG" refuse
expect_rc "token- and key-like values are refused by the library" 0
if grep -q -a -e 'eyJ' -e 'PRIVATE KEY' -e 'BEGIN' "$LOG"; then not_ok "no token or key text in audit.log"; else ok "no token or key text in audit.log"; fi

# ---- tampering ---------------------------------------------------------------------------
cp "$LOG" "$T_TMP/good.log"
# One byte edited inside record seq 11 ("tool-10" -> "tool-90").
node -e '
const fs = require("fs"); const b = fs.readFileSync(process.argv[1]);
const i = b.indexOf("tool-10"); if (i < 0) process.exit(1); b[i + 5] = 0x39;
fs.writeFileSync(process.argv[1], b);' "$LOG" || not_ok "edit one byte"
run "$LANYARD" --data "$D" audit verify
expect_fail_with "an edited byte fails verify, naming record seq 11" 1 "seq 11.*hash mismatch.*edited"
run "$LANYARD" --data "$D" audit list
[ "$T_RC" -eq 1 ] && [ "$(printf '%s\n' "$T_OUT" | wc -l)" -eq 11 ] &&
    ok "audit list stops at the break with exit 1" || not_ok "audit list stops at the break with exit 1" "rc $T_RC"

# Record seq 21 deleted.
cp "$T_TMP/good.log" "$LOG"
node -e '
const fs = require("fs"); const b = fs.readFileSync(process.argv[1]);
let off = 0; const frames = [];
while (off < b.length) { const l = b.readUInt32BE(off); frames.push(b.subarray(off, off + 4 + l)); off += 4 + l; }
frames.splice(20, 1); fs.writeFileSync(process.argv[1], Buffer.concat(frames));' "$LOG" || not_ok "delete a record"
run "$LANYARD" --data "$D" audit verify
expect_fail_with "a deleted record fails verify, naming the gap at seq 21" 1 "seq 21 missing.*deleted"

# A crash mid-write: the last record is cut short.
cp "$T_TMP/good.log" "$LOG"
truncate -s -9 "$LOG"
run "$LANYARD" --data "$D" audit verify
expect_fail_with "a truncated final record fails verify, naming seq 50" 1 "seq 50.*truncated"
run "$WRITER" "$LOG" 1
expect_fail_with "the library refuses to append after a truncated record" 1 "truncated"

# Garbage appended.
cp "$T_TMP/good.log" "$LOG"
printf '\x00\x00\x00\x05hello' >>"$LOG"
run "$LANYARD" --data "$D" audit verify
expect_fail_with "appended garbage fails verify, naming seq 51" 1 "seq 51.*not a valid record"

cp "$T_TMP/good.log" "$LOG"
run "$LANYARD" --data "$D" audit verify
expect_rc "the restored log verifies again" 0
