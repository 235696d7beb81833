#!/usr/bin/env bash
# Usage: tests/fuzz/run.sh [SECONDS] [LIBFUZZER_OPTION...]
#
# Builds the libFuzzer harness tests/fuzz/fuzz_api.c together with the library's
# sources (clang, -fsanitize=fuzzer,address,undefined, plain malloc so that ASan sees
# every node), then fuzzes the C API for SECONDS (default 60), starting from the
# committed seed corpus tests/fuzz/corpus.
#
# Exits non-zero when the fuzzer finds a crash, a sanitizer report, a leak or a broken
# promise of the API (the harness aborts); the input that did it is saved as
# build/fuzz/crash-* (or leak-*, timeout-*), and
#     build/fuzz/fuzz_api build/fuzz/crash-...
# replays it. Inputs the fuzzer finds interesting go to build/fuzz/corpus, never into
# the repository.
#
# Environment: CLANG (default: clang), MICROCRAD_FUZZ_DIR (default: build/fuzz).
# Needs clang and libFuzzer: apt-get install clang libclang-rt-14-dev (Debian 12).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-60}
shift || true
clang=${CLANG:-clang}
out=${MICROCRAD_FUZZ_DIR:-$root/build/fuzz}

if ! command -v "$clang" >/dev/null 2>&1; then
    echo "fuzz: $clang not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi
mkdir -p "$out/corpus"

# The library's sources straight from c/src: the harness needs no CMake build, and a
# new source file is picked up without editing this script.
sources=("$root"/c/src/*.c)
flags=(
    -std=c11 -g -O1 -fno-omit-frame-pointer
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -ffp-contract=off -Wall -Wextra -Wpedantic -Werror
    -DMICROCRAD_PLAIN_MALLOC=1 -D_POSIX_C_SOURCE=200809L
    -I"$root/c/include" -I"$root/c/src"
)
echo "fuzz: building $out/fuzz_api"
"$clang" "${flags[@]}" "${sources[@]}" "$root/tests/fuzz/fuzz_api.c" -lm -o "$out/fuzz_api"

echo "fuzz: fuzzing for $seconds s"
# detect_leaks: LeakSanitizer after every input whose mallocs and frees do not match.
# halt_on_error/abort_on_error: any sanitizer report is a crash with a saved input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}
# The first corpus directory receives new inputs; the committed seeds are only read.
# libFuzzer prints a line for every new input: that goes to a log, and only the final
# statistics (or, on a failure, the end of the log with the report) to the terminal.
log="$out/fuzz.log"
status=0
"$out/fuzz_api" \
    -max_total_time="$seconds" \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -max_len=2048 \
    -print_final_stats=1 \
    -artifact_prefix="$out/" \
    "$@" \
    "$out/corpus" "$root/tests/fuzz/corpus" >"$log" 2>&1 || status=$?
if ((status != 0)); then
    tail -n 100 "$log" >&2
    echo "fuzz: FAILED (exit status $status); full log in $log" >&2
    exit "$status"
fi
grep -E '^(Done|stat::)' "$log" || true
echo "fuzz: no failure in $seconds s; full log in $log"
