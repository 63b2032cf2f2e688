#!/bin/bash
# Every parser of untrusted input has a libFuzzer target (tests/fuzz/); run each for a fixed number
# of inputs, seeded with real examples (tests/fuzz/seeds.sh), and fail on any crash or sanitizer
# report. The long campaign (10 million inputs per target): `make fuzz-long`, docs/fuzzing.md.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
t_begin fuzz_smoke
[[ $(basename "$IMGFS") == imgfs ]] || t_skip "fuzz targets are sanitizer builds already; run once"

t_check "fuzz targets build" make -s -j"$(nproc)" -C "$TOP" fuzz

t_check "seed corpus" "$TOP/tests/fuzz/seeds.sh" "$IMGFS" "$T/seed"

run_fuzzer() { # NAME SEED_DIR RUNS
    local log=$T/fuzz-$1.log
    if "$TOP/build/fuzz/fuzz_$1" -runs="$3" -max_len=65536 -rss_limit_mb=2048 \
        -artifact_prefix="$T/crash-$1-" "$2" >"$log" 2>&1; then
        return 0
    fi
    grep -E "ERROR|runtime error|Base64" "$log" | head -5
    return 1
}
run_inputs() { # NAME DIR: each input once; -timeout=60 is a hang guard (they take milliseconds)
    local log=$T/inputs-$1.log
    if "$TOP/build/fuzz/fuzz_$1" -timeout=60 -rss_limit_mb=2048 "$2"/* >"$log" 2>&1; then
        return 0
    fi
    grep -E "ERROR|runtime error|timeout" "$log" | head -5
    return 1
}
t_check "fuzz_tar: 5000 inputs, no crash" run_fuzzer tar "$T/seed/tar" 5000
t_check "fuzz_config: 50000 inputs, no crash" run_fuzzer config "$T/seed/config" 50000
t_check "fuzz_layer: 20000 inputs, no crash" run_fuzzer layer "$T/seed/layer" 20000
t_check "fuzz_view: 100000 inputs, no crash" run_fuzzer view "$T/seed/view" 100000
t_check "fuzz_oci: 1000 inputs, no crash" run_fuzzer oci "$T/seed/oci" 1000
t_check "fuzz_registry: 50000 inputs, no crash" run_fuzzer registry "$T/seed/registry" 50000
t_check "fuzz_estargz: 2000 inputs, no crash" run_fuzzer estargz "$T/seed/estargz" 2000
t_check "fuzz_dockerfile: 10000 inputs, no crash" run_fuzzer dockerfile "$T/seed/dockerfile" 10000
t_check "fuzz_dockerfile: the inputs that were quadratic, none hangs" \
    run_inputs dockerfile "$T/seed/regress/dockerfile"
t_check "fuzz_template: 20000 inputs, no crash" run_fuzzer template "$T/seed/template" 20000
t_end
