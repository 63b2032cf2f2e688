#!/bin/bash
# tests/run-unit.sh BIN... — run C unit test binaries (tests/unit/test_*.c, built into build/unit/).
# Each prints "N passed, N failed" and exits non-zero on failure. Prints PASS/FAIL per binary (the
# output of a failing one in full) and ends with "N passed, N failed" counting binaries.
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOGS=${IMGFS_TEST_LOGS:-$TOP/tests/out/logs}
mkdir -p "$LOGS"
passed=0
failed=0
for bin in "$@"; do
    name=$(basename "$bin")
    log=$LOGS/unit-$name.log
    if [[ ! -x $bin ]]; then
        echo "FAIL $name (not built: $bin)"
        failed=$((failed + 1))
        continue
    fi
    # any sanitizer report in a unit test is a failure
    if ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1} \
        "$bin" >"$log" 2>&1; then
        echo "PASS $name ($(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1))"
        passed=$((passed + 1))
    else
        echo "FAIL $name (exit $?)"
        sed 's/^/    /' "$log" | tail -n 40
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
