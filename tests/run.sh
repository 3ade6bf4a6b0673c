#!/usr/bin/env bash
# lanyard test runner: runs the cmocka unit binaries (TAP output) and the integration/interop
# scripts (TAP-style "ok N - name" / "not ok N - name" lines), then prints one summary line
# "N passed, N failed". A binary or script that exits non-zero without reporting a failing
# case counts as one failure, so a crash is never silent.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
export BUILD LANYARD="$BUILD/lanyard" LANYARD_ROOT="$root"
what=${1:-all}
passed=0; failed=0
logdir="$BUILD/test-logs"; mkdir -p "$logdir"

run_one() { # name, command...
    local name=$1; shift
    local log="$logdir/$name.log"
    mkdir -p "$(dirname "$log")"
    local t0=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local p f
    p=$(grep -cE '^ok [0-9]+' "$log")
    f=$(grep -cE '^not ok [0-9]+' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited $rc" >>"$log"; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name reported no test" >>"$log"; fi
    passed=$((passed + p)); failed=$((failed + f))
    printf '%-34s %4d passed %3d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - t0))
    if [ "$f" -ne 0 ]; then grep -E '^not ok|^# ' "$log" | grep -vE '^# (ok|PASSED)' | head -40 | sed 's/^/    /'; fi
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    for t in "$BUILD"/tests/*_test; do
        [ -x "$t" ] || continue
        if [ "${VALGRIND:-0}" = 1 ]; then
            run_one "unit/$(basename "$t")" env CMOCKA_MESSAGE_OUTPUT=TAP \
                valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$t"
        else
            run_one "unit/$(basename "$t")" env CMOCKA_MESSAGE_OUTPUT=TAP "$t"
        fi
    done
fi
if [ "$what" = all ]; then
    for s in "$root"/tests/integration/*.sh "$root"/tests/interop/*.sh; do
        [ -f "$s" ] || continue
        run_one "$(basename "$(dirname "$s")")/$(basename "$s" .sh)" bash "$s"
    done
fi
echo "logs: $logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
