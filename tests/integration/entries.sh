#!/usr/bin/env bash
# Integration: registration entries through the real lanyard binary. create/list/show/delete,
# duplicate refusal, every kind of invalid selector refused with a clear message, other trust
# domains refused, JSON output that node parses, 10,000 entries (timed), and kill -9 during
# creation leaving no half-written entry.
. "$LANYARD_ROOT/tests/lib.sh"
D="$T_TMP/data"
TD=entries.lanyard.test
DB="$D/lanyard.db"
ms() { echo $(( $(date +%s%N) / 1000000 )); }

run "$LANYARD" --data "$D" entry list
expect_fail_with "entry list without a data directory explains how to create one" 2 "ca init"
[ ! -e "$D" ] && ok "a failed entry command creates no data directory" || not_ok "a failed entry command creates no data directory"

"$LANYARD" --data "$D" ca init --trust-domain "$TD" >/dev/null || not_ok "ca init"

# ---- create / show / list / delete -----------------------------------------------------------
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/mcp/server" --selector unix:uid:1000 \
    --selector unix:path:/usr/bin/mcp-server --ttl 10m --dns mcp.example.com --hint server
expect_rc "entry create succeeds" 0
ID1=$(printf '%s\n' "$T_OUT" | head -1)
[[ "$ID1" =~ ^[0-9a-f]{32}$ ]] && ok "entry create prints a 128-bit hex id first" || not_ok "entry create prints a 128-bit hex id first" "$T_OUT"

run "$LANYARD" --data "$D" entry show "$ID1"
expect_rc "entry show succeeds" 0
printf '%s\n' "$T_OUT" | grep -qx "spiffe_id: spiffe://$TD/mcp/server" &&
printf '%s\n' "$T_OUT" | grep -qx "selector: unix:uid:1000" &&
printf '%s\n' "$T_OUT" | grep -qx "selector: unix:path:/usr/bin/mcp-server" &&
printf '%s\n' "$T_OUT" | grep -qx "ttl: 600" && printf '%s\n' "$T_OUT" | grep -qx "dns: mcp.example.com" &&
printf '%s\n' "$T_OUT" | grep -qx "hint: server" &&
    ok "entry show prints ID, selectors, TTL, DNS and hint" || not_ok "entry show prints ID, selectors, TTL, DNS and hint" "$T_OUT"

run "$LANYARD" --data "$D" entry show "$ID1" --json
check "entry show --json parses with node and holds the entry" node -e '
const j = JSON.parse(process.argv[1]);
if (j.id !== process.argv[2] || j.spiffe_id !== "spiffe://" + process.argv[3] + "/mcp/server" ||
    j.ttl !== 600 || j.selectors.join(",") !== "unix:uid:1000,unix:path:/usr/bin/mcp-server" ||
    j.dns[0] !== "mcp.example.com" || j.hint !== "server" || isNaN(Date.parse(j.created_at)))
  { console.log(JSON.stringify(j)); process.exit(1); }' "$T_OUT" "$ID1" "$TD"

run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/agent" --selector unix:uid:1001
ID2=$(printf '%s\n' "$T_OUT" | head -1)
run "$LANYARD" --data "$D" entry list
expect_rc "entry list succeeds" 0
[ "$(printf '%s\n' "$T_OUT" | wc -l)" = 2 ] && printf '%s\n' "$T_OUT" | head -1 | grep -q "^$ID1 spiffe://$TD/mcp/server " &&
printf '%s\n' "$T_OUT" | sed -n 2p | grep -q "^$ID2 spiffe://$TD/agent ttl=3600 unix:uid:1001$" &&
    ok "entry list shows one line per entry, oldest first" || not_ok "entry list shows one line per entry, oldest first" "$T_OUT"
run "$LANYARD" --data "$D" entry list --json
check "entry list --json parses with node (2 entries)" node -e '
const j = JSON.parse(process.argv[1]); if (!Array.isArray(j) || j.length !== 2 || j[1].id !== process.argv[2]) process.exit(1);' "$T_OUT" "$ID2"

# ---- duplicates --------------------------------------------------------------------------------
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/mcp/server" --selector unix:path:/usr/bin/mcp-server --selector unix:uid:1000
expect_fail_with "same SPIFFE ID and selectors (any order) refused, naming the existing entry" 2 "already exists: $ID1"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/mcp/server" --selector unix:uid:1000
expect_rc "same SPIFFE ID with another selector set is a new entry" 0
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/x" --selector unix:uid:5 --selector unix:uid:5
expect_fail_with "the same selector twice in one entry refused" 1 "given twice"

# ---- invalid selectors: each refused (exit 1) with a message naming the problem -----------------
while IFS='|' read -r sel pattern; do
    [ -n "$sel" ] || continue
    run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/bad" --selector "$sel"
    expect_fail_with "selector '$sel' refused: $pattern" 1 "$pattern"
done <<'EOF'
k8s:ns:default|unknown prefix 'k8s'
unix:pid:42|type 'unix:pid' is unknown
unix:uid|no value
unix:uid:|empty value
unix:uid:abc|not a decimal number
unix:uid:-1|not a decimal number
unix:uid:4294967295|out of range
unix:gid:99999999999|out of range
unix:uid:0100|leading zero
unix:user:|empty value
unix:user:bad name|forbidden byte
unix:group:a:b|forbidden byte
unix:path:bin/mcp|relative
unix:path:/usr/../bin/mcp|'\.\.' segment
unix:path:/usr//bin/mcp|empty, '\.' or '\.\.' segment
unix:path:/usr/bin/|ends in '/'
unix:sha256:abc|64 lowercase hex
unix:sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789|lowercase hex
EOF
long=$(head -c 5000 /dev/zero | tr '\0' a)
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/bad" --selector "unix:path:/$long"
expect_fail_with "a 5000-byte path selector refused (cap 4096)" 1 "at most 4096"
[ ${#T_ERR} -lt 400 ] && ok "the over-long value is not echoed in full" || not_ok "the over-long value is not echoed in full" "${#T_ERR} bytes"
args=(); for i in $(seq 1 17); do args+=(--selector "unix:gid:$i"); done
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/bad" "${args[@]}"
expect_fail_with "more than 16 selectors refused" 1 "at most 16"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/bad"
expect_fail_with "an entry without selectors refused" 2 "at least one --selector"

# ---- IDs, trust domain, TTL, DNS, hint ---------------------------------------------------------
run "$LANYARD" --data "$D" entry create --id "spiffe://other.test/w" --selector unix:uid:1
expect_fail_with "an entry for another trust domain refused" 2 "not in trust domain $TD"
run "$LANYARD" --data "$D" entry create --id "spiffe://x$TD/w" --selector unix:uid:1
expect_fail_with "a trust domain that merely ends like ours refused" 2 "not in trust domain"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD" --selector unix:uid:1
expect_fail_with "the trust domain's own ID refused (no path)" 1 "path"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/a/../b" --selector unix:uid:1
expect_fail_with "an off-spec SPIFFE ID refused" 1 "SPIFFE ID"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/t" --selector unix:uid:1 --ttl 9s
expect_fail_with "TTL below 10 s refused" 1 "out of range"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/t" --selector unix:uid:1 --ttl 31d
expect_fail_with "TTL above 30 d refused" 1 "out of range"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/t" --selector unix:uid:1 --dns "bad_name.example"
expect_fail_with "a non-LDH DNS name refused" 1 "DNS name"
h1024=$(head -c 1024 /dev/zero | tr '\0' h)
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/h" --selector unix:uid:2 --hint "$h1024"
expect_rc "a 1024-byte hint is accepted" 0
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/h" --selector unix:uid:3 --hint "${h1024}h"
expect_fail_with "a 1025-byte hint refused (WAPI-24)" 1 "1025 bytes"

# ---- show / delete errors ----------------------------------------------------------------------
run "$LANYARD" --data "$D" entry show 0123456789abcdef0123456789abcdef
expect_fail_with "showing an unknown entry says so" 2 "no entry with id"
run "$LANYARD" --data "$D" entry show "x'; DROP TABLE entry;--"
expect_fail_with "a malformed entry id refused" 1 "not an entry id"
run "$LANYARD" --data "$D" entry delete "$ID2"
expect_rc "entry delete succeeds" 0
run "$LANYARD" --data "$D" entry delete "$ID2"
expect_fail_with "deleting it again says it is gone" 2 "no entry with id"
"$LANYARD" --data "$D" entry list | grep -q "$ID2" && not_ok "deleted entry no longer listed" || ok "deleted entry no longer listed"
[ "$(sqlite3 "$DB" "select count(*) from entry_selector where entry_id='$ID2'")" = 0 ] &&
    ok "its selector rows went with it" || not_ok "its selector rows went with it"
run "$LANYARD" --data "$D" entry show
expect_rc "entry show without an id is a usage error" 2

# ---- kill -9 in the middle of creation: never half an entry -----------------------------------
for i in $(seq 1 40); do
    "$LANYARD" --data "$D" entry create --id "spiffe://$TD/k/$i" --selector "unix:uid:$((3000 + i))" \
        --selector "unix:path:/srv/k/$i" --dns "k$i.example" >/dev/null 2>&1 &
    p=$!
    sleep "0.00$((RANDOM % 10))"
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
done
[ "$(sqlite3 "$DB" 'pragma integrity_check')" = ok ] && ok "database intact after kill -9 storms" || not_ok "database intact after kill -9 storms"
half=$(sqlite3 "$DB" "select count(*) from entry e where e.id like '%' and e.spiffe_id like '%/k/%' and
  ((select count(*) from entry_selector s where s.entry_id = e.id) != 2 or
   (select count(*) from entry_dns d where d.entry_id = e.id) != 1)")
orphans=$(sqlite3 "$DB" "select (select count(*) from entry_selector where entry_id not in (select id from entry)) +
  (select count(*) from entry_dns where entry_id not in (select id from entry))")
survivors=$(sqlite3 "$DB" "select count(*) from entry where spiffe_id like '%/k/%'")
[ "$half" = 0 ] && [ "$orphans" = 0 ] && ok "no half-written entry after kill -9 ($survivors of 40 committed)" ||
    not_ok "no half-written entry after kill -9" "half=$half orphans=$orphans"
run "$LANYARD" --data "$D" entry list
expect_rc "entry list works after kill -9" 0

# ---- 10,000 entries ----------------------------------------------------------------------------
# Generated with node (its own SHA-256 of the canonical selector set, as lanyard computes it) and
# loaded in one sqlite3 transaction: seconds, not 10,000 fsync'ed CLI runs.
t0=$(ms)
node -e '
const crypto = require("crypto"); const td = process.argv[1]; const now = Math.floor(Date.now() / 1000);
const out = ["BEGIN;"];
for (let i = 0; i < 10000; i++) {
  const id = crypto.randomBytes(16).toString("hex"), uid = 100000 + i, path = "/srv/bulk/w" + i;
  const key = crypto.createHash("sha256").update("uid:" + uid + "\0path:" + path + "\0").digest("hex");
  out.push(`INSERT INTO entry(id,spiffe_id,ttl,created_at,hint,selector_key) VALUES(\x27${id}\x27,\x27spiffe://${td}/bulk/${i}\x27,3600,${now},NULL,\x27${key}\x27);`);
  out.push(`INSERT INTO entry_selector(entry_id,type,value) VALUES(\x27${id}\x27,\x27uid\x27,\x27${uid}\x27),(\x27${id}\x27,\x27path\x27,\x27${path}\x27);`);
}
out.push("COMMIT;"); console.log(out.join("\n"));' "$TD" >"$T_TMP/bulk.sql"
sqlite3 "$DB" <"$T_TMP/bulk.sql"
t1=$(ms)
n=$(sqlite3 "$DB" "select count(*) from entry where spiffe_id like '%/bulk/%'")
[ "$n" = 10000 ] && ok "10,000 entries loaded in $((t1 - t0)) ms" || not_ok "10,000 entries loaded" "$n"
total=$(sqlite3 "$DB" "select count(*) from entry")
t0=$(ms); "$LANYARD" --data "$D" entry list >"$T_TMP/list.txt"; rc=$?; t1=$(ms)
lines=$(wc -l <"$T_TMP/list.txt")
[ $rc = 0 ] && [ "$lines" = "$total" ] && ok "entry list prints all $total entries in $((t1 - t0)) ms" ||
    not_ok "entry list prints all entries" "rc=$rc lines=$lines total=$total"
[ $((t1 - t0)) -lt 5000 ] && ok "entry list of 10,000 entries takes under 5 s" || not_ok "entry list of 10,000 entries takes under 5 s" "$((t1 - t0)) ms"
t0=$(ms); "$LANYARD" --data "$D" entry list --json >"$T_TMP/list.json"; t1=$(ms)
check "entry list --json of $total entries parses with node ($((t1 - t0)) ms)" node -e '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (j.length !== Number(process.argv[2]) || j.filter(e => e.spiffe_id.includes("/bulk/")).length !== 10000) process.exit(1);' \
    "$T_TMP/list.json" "$total"
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/bulk/4242" --selector unix:path:/srv/bulk/w4242 --selector unix:uid:104242
expect_fail_with "a duplicate of a bulk-loaded entry is refused (selector keys agree with node's)" 2 "already exists"
t0=$(ms)
run "$LANYARD" --data "$D" entry create --id "spiffe://$TD/after-bulk" --selector unix:uid:777
t1=$(ms)
expect_rc "entry create with 10,000 entries registered ($((t1 - t0)) ms)" 0
bid=$(sqlite3 "$DB" "select id from entry where spiffe_id = 'spiffe://$TD/bulk/9999'")
t0=$(ms); run "$LANYARD" --data "$D" entry show "$bid"; t1=$(ms)
printf '%s\n' "$T_OUT" | grep -qx "selector: unix:path:/srv/bulk/w9999" && ok "entry show among 10,000 ($((t1 - t0)) ms)" || not_ok "entry show among 10,000" "$T_OUT"
