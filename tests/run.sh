#!/bin/bash
# tests/run.sh [PATTERN...] — what `make test` runs (after building ./imgfs, ./imgfs-asan and the unit
# test binaries).
#
#   1. cleans what killed earlier runs left (stale FUSE/overlay mounts under /tmp/imgfs-test.*)
#   2. makes the fixtures (tests/fixtures/make.sh; cached in tests/out/fixtures)
#   3. runs the C unit tests (build/unit/test_*)
#   4. runs every tests/integration/*.sh with IMGFS=./imgfs, then again with IMGFS=./imgfs-asan
#
# PATTERN selects scripts (and unit binaries) whose name contains it: `tests/run.sh 10_import`.
# One line per script: PASS/FAIL/SKIP name (with the tail of its log on failure); full logs in
# tests/out/logs. The last line is "N passed, N failed", counting script runs (a script run once per
# binary counts twice) and unit binaries. Exit status is non-zero when anything failed.
#
# Environment:
#   IMGFS_TEST_ASAN=all|subset|none   which integration scripts run again against ./imgfs-asan:
#                               all (default), or subset: without the slow ones listed in ASAN_SKIP
#                               below, for a machine busy with other work
#   IMGFS_TEST_TIMEOUT=SECONDS  hang guard per script run (default 1800); not a performance limit
#   IMGFS_FIXTURES=DIR          where the fixtures are (default tests/out/fixtures)
#   IMGFS_TEST_LOGS=DIR         where the logs go (default tests/out/logs)
#   IMGFS_TEST_BIN, IMGFS_TEST_ASAN_BIN  the binaries to test (default ./imgfs, ./imgfs-asan)
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP"
LOGS=${IMGFS_TEST_LOGS:-$TOP/tests/out/logs}
export IMGFS_FIXTURES=${IMGFS_FIXTURES:-$TOP/tests/out/fixtures}
export IMGFS_TEST_LOGS=$LOGS
ASAN_MODE=${IMGFS_TEST_ASAN:-all}
# Time (2 cores, 2026-11-24, 35 scripts): on a quiet machine the release pass takes ~6 min and the
# ASan pass of every script ~4 min more (fixtures: 1-5 min once), well inside the 20-minute budget.
# With other work on the machine (load 8) the release pass alone took 12 min; then use
# IMGFS_TEST_ASAN=subset, which leaves out these long scripts whose time goes to external tools
# (skopeo, umoci, big imports, network waits) or that repeat what a faster script already drives
# through the same C code. The rest covers import, fsck/gc, every mount test, OCI import and bad
# input, the runner's fs/process/lifecycle paths.
ASAN_SKIP=(20_mount_images 30_oci_tools 30_oci_roundtrip 70_net_modes 70_net_publish
    10_import_killed 10_import_concurrent 10_import_compression 11_store_limits 12_import_gzip_crc
    40_badinput_members 50_run_basic 60_security_default 60_security_options 61_limits
    16_mkbase 86_build_docker 88_lazy_go 92_cli_docker 85_registry_pull_big)
HANG_GUARD=${IMGFS_TEST_TIMEOUT:-1800}
PATTERNS=("$@")
BIN=${IMGFS_TEST_BIN:-$TOP/imgfs}
ASAN_BIN=${IMGFS_TEST_ASAN_BIN:-$TOP/imgfs-asan}

passed=0
failed=0
skipped=0
failures=()

matches() { # matches NAME: true when no pattern was given or NAME contains one of them
    local p
    ((${#PATTERNS[@]} == 0)) && return 0
    for p in "${PATTERNS[@]}"; do
        [[ $1 == *"$p"* ]] && return 0
    done
    return 1
}

# A test dir is stale when the script that made it (tests/lib.sh writes its PID to $T/.owner) is
# gone; dirs from before .owner existed count as stale after an hour. Tests of other people running
# at the same time on this machine are left alone.
clean_stale() {
    local t owner
    for t in /tmp/imgfs-test.*; do
        [[ -d $t ]] || continue
        if [[ -f $t/.owner ]]; then
            owner=$(cat "$t/.owner" 2>/dev/null)
            [[ -n $owner ]] && kill -0 "$owner" 2>/dev/null && continue
        elif [[ -n $(find "$t" -maxdepth 0 -mmin -60 2>/dev/null) ]]; then
            continue
        fi
        # deepest first: overlays sit on top of FUSE mounts
        grep -F " $t/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
            m=$(printf '%b' "$m") # /proc/mounts escapes spaces as \040
            umount -l "$m" 2>/dev/null || true
        done
        if ! grep -qF " $t/" /proc/mounts; then
            rm -rf "$t" 2>/dev/null || true
        fi
    done
}

# Count a result line and print it.
report() { # report STATUS NAME LOG [REASON]
    local status=$1 name=$2 log=$3
    local took=""
    [[ -n ${started:-} ]] && took=" ($((SECONDS - started))s)"
    case $status in
    PASS)
        # a test that skipped its last part (t_skip after checks passed) says what it left out
        local part
        part=$(grep -m1 '^  SKIP' "$log" | sed 's/^  SKIP //')
        echo "PASS $name$took${part:+ (skipped: $part)}"
        passed=$((passed + 1))
        ;;
    SKIP)
        echo "SKIP $name ($(grep -m1 '^  SKIP' "$log" | sed 's/^  SKIP //'))"
        skipped=$((skipped + 1))
        ;;
    *)
        echo "FAIL $name${4:+ ($4)}$took   [log: ${log#"$TOP"/}]"
        # the failed checks first, then the end of the log
        grep -E '^  FAIL' "$log" | head -n 20 | sed 's/^/    /'
        echo "    --- last lines:"
        tail -n 25 "$log" | sed 's/^/    /'
        failed=$((failed + 1))
        failures+=("$name")
        ;;
    esac
}

run_script() { # run_script SCRIPT BINARY SUFFIX   (SUFFIX "" or ".asan": names the run and its log)
    local script=$1 bin=$2 label=$3
    local name
    name=$(basename "$script" .sh)$label
    local log=$LOGS/$name.log
    local san=$LOGS/sanitizer/$name
    rm -rf "$san"
    mkdir -p "$san"
    local rc=0
    started=$SECONDS
    # Sanitizer reports go to files as well as aborting the process, so a report from the detached
    # FUSE daemon (whose stderr nobody reads) still fails the script.
    IMGFS=$bin \
        ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$san/asan" \
        UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$san/ubsan" \
        IMGFS_ASAN=$([[ $label == .asan ]] && echo 1 || echo 0) \
        timeout -k 30 "$HANG_GUARD" bash "$script" >"$log" 2>&1 </dev/null &
    # timeout runs in a process group of its own: pass our death on to it (it passes it on)
    child=$!
    wait "$child" || rc=$?
    child=
    local reports
    reports=$(find "$san" -type f 2>/dev/null | sort)
    if [[ -n $reports ]]; then
        {
            echo "==== sanitizer reports:"
            for f in $reports; do
                echo "---- $f"
                head -n 60 "$f"
            done
        } >>"$log"
        report FAIL "$name" "$log" "sanitizer report"
    elif ((rc == 124 || rc == 137)); then
        report FAIL "$name" "$log" "hung: killed after ${HANG_GUARD}s"
    elif ((rc != 0)); then
        report FAIL "$name" "$log" "exit $rc"
    elif grep -q '^  SKIP' "$log" && ! grep -q '^  ok' "$log"; then
        report SKIP "$name" "$log"
    else
        report PASS "$name" "$log"
    fi
    rmdir "$san" 2>/dev/null || true
    started=
    clean_stale
}

child=
on_signal() {
    [[ -n $child ]] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
    echo "tests/run.sh: interrupted"
    exit 130
}
trap on_signal INT TERM

# (each script's log is overwritten when it runs; nothing is wiped up front, because someone else's
# run may be writing here at the same time)
mkdir -p "$LOGS"
if [[ $(id -u) != 0 ]]; then
    echo "tests/run.sh: the tests mount filesystems and start containers: run as root" >&2
    exit 1
fi
clean_stale

echo "== fixtures"
# --go too: 88_lazy_go needs the Debian+golang image, and a missing fixture would only skip it
if ! tests/fixtures/make.sh --go "$IMGFS_FIXTURES" >"$LOGS/fixtures.log" 2>&1; then
    report FAIL fixtures "$LOGS/fixtures.log" "tests/fixtures/make.sh failed"
fi

echo "== unit tests"
units=()
for b in build/unit/test_*; do
    [[ -x $b ]] && matches "$(basename "$b")" && units+=("$b")
done
if ((${#units[@]})); then
    while read -r line; do
        case $line in
        PASS\ *) echo "$line"; passed=$((passed + 1)) ;;
        FAIL\ *) echo "$line"; failed=$((failed + 1)); failures+=("${line#FAIL }") ;;
        [0-9]*' passed, '*) ;; # run-unit's own summary: counted above
        *) echo "$line" ;;
        esac
    done < <(tests/run-unit.sh "${units[@]}")
fi

scripts=()
for s in tests/integration/*.sh; do
    [[ -f $s ]] && matches "$(basename "$s" .sh)" && scripts+=("$s")
done

echo "== integration tests: ./imgfs"
if [[ ! -x $BIN ]]; then
    report FAIL build "$LOGS/fixtures.log" "$BIN is not built: run make"
else
    for s in "${scripts[@]}"; do
        run_script "$s" "$BIN" ""
    done
fi

asan_scripts=()
for s in "${scripts[@]}"; do
    base=$(basename "$s" .sh)
    if [[ $ASAN_MODE == subset && " ${ASAN_SKIP[*]} " == *" $base "* ]]; then
        continue
    fi
    asan_scripts+=("$s")
done
if [[ $ASAN_MODE != none ]]; then
    echo "== integration tests: ./imgfs-asan ($ASAN_MODE: ${#asan_scripts[@]} of ${#scripts[@]} scripts)"
    if [[ ! -x $ASAN_BIN ]]; then
        report FAIL build-asan "$LOGS/fixtures.log" "$ASAN_BIN is not built: run make asan"
    else
        for s in "${asan_scripts[@]}"; do
            run_script "$s" "$ASAN_BIN" .asan
        done
    fi
fi

echo "took $((SECONDS / 60))m$((SECONDS % 60))s"
((skipped)) && echo "$skipped skipped"
if ((failed)); then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
