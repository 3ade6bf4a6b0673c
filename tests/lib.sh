# Shared helpers for lanyard's shell tests: TAP-style checks, a scratch directory removed at
# exit, and the path of the binary under test. Every check prints "ok N - name" or
# "not ok N - name" with the evidence, so the runner can count them.
set -u
LANYARD=${LANYARD:?LANYARD must point at the lanyard binary}
LANYARD_ROOT=${LANYARD_ROOT:?}
T_N=0
T_FAILED=0
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/lanyard-test.XXXXXX")
trap 't_cleanup' EXIT
t_cleanup() { local rc=$?; [ -n "${T_KEEP:-}" ] || rm -rf "$T_TMP"; [ $T_FAILED -eq 0 ] || exit 1; exit $rc; }
ok()     { T_N=$((T_N + 1)); echo "ok $T_N - $1"; }
not_ok() { T_N=$((T_N + 1)); T_FAILED=$((T_FAILED + 1)); echo "not ok $T_N - $1"; shift; for l in "$@"; do echo "# $l"; done; }
# run CMD... : runs a command capturing stdout/stderr/rc into $T_OUT $T_ERR $T_RC
run() { T_OUT=$("$@" 2>"$T_TMP/.err"); T_RC=$?; T_ERR=$(cat "$T_TMP/.err"); }
# expect_rc NAME RC : after `run`, checks the exit code
expect_rc() { if [ "$T_RC" -eq "$2" ]; then ok "$1"; else not_ok "$1" "exit $T_RC, expected $2" "stdout: ${T_OUT:0:400}" "stderr: ${T_ERR:0:400}"; fi; }
# expect_fail_with NAME RC PATTERN : exit code RC and stderr matching the (grep -E) pattern
expect_fail_with() {
    if [ "$T_RC" -eq "$2" ] && printf '%s' "$T_ERR" | grep -qiE -- "$3"; then ok "$1";
    else not_ok "$1" "exit $T_RC (expected $2), stderr: ${T_ERR:0:400}" "wanted stderr matching: $3"; fi
}
# check NAME CMD... : passes when CMD exits 0
check() { local n=$1; shift; if "$@" >"$T_TMP/.out" 2>&1; then ok "$n"; else not_ok "$n" "$(head -c 600 "$T_TMP/.out")"; fi; }
