#!/usr/bin/env bash
# Usage: tools/test.sh [--slow]
#
# Sets up everything and runs the whole test suite; exits non-zero on the first
# failure. This is what CI runs.
#
#   --slow   also run the Python tests marked `slow` (skipped by default)
#
# Stages:
#   1. system packages the tests need (installed with apt-get when root)
#   2. tools/setup.sh: .venv with microcrad (editable install, Release build of
#      the library) and test deps
#   3. C build: the `debug` CMake preset (-Og -g, assertions on, -Werror)
#   4. CTest on that build: C tests, examples, the install check
#   5. tools/memcheck.py: C tests and examples under ASan+UBSan and Valgrind,
#      thread stress under TSan, the whole Python suite under ASan+UBSan+LSan,
#      a Python smoke test under Valgrind; 60 s of libFuzzer on the C API
#   6. pytest against the installed package
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

slow=0
for arg in "$@"; do
    case $arg in
        --slow) slow=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        *)
            echo "test.sh: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

started=$SECONDS
stage() { printf '\n===== %s (at %d s) =====\n' "$*" "$((SECONDS - started))"; }

jobs=$(nproc 2>/dev/null || echo 2)
export CMAKE_BUILD_PARALLEL_LEVEL=$jobs
export CTEST_PARALLEL_LEVEL=$jobs

# --- 1. system packages ------------------------------------------------------------

# Debian package : a command that proves it is installed. Add new needs here.
system_packages=(
    cmake:cmake
    gcc:gcc
    pkg-config:pkg-config # tests/install: the pkg-config consumer
    graphviz:dot          # rendering of graphs to images
    valgrind:valgrind     # tools/memcheck.py valgrind, the memory-safety labs
    clang:clang           # tests/fuzz: the libFuzzer harness
    doxygen:doxygen       # the C reference manual (CTest test "docs": no warnings)
    g++:g++               # tests/install: a C++17 program against the installed library
)

stage "system packages"
missing=()
for entry in "${system_packages[@]}"; do
    package=${entry%%:*}
    command=${entry#*:}
    if command -v "$command" >/dev/null 2>&1; then
        echo "have $package ($command)"
    else
        missing+=("$package")
    fi
done
# libFuzzer's runtime (tests/fuzz) has no command of its own to look for.
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
if ((${#missing[@]})); then
    if ((EUID != 0)); then
        echo "test.sh: missing system packages: ${missing[*]}" >&2
        echo "test.sh: install them with: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- 2. Python environment -------------------------------------------------------

stage "python environment (tools/setup.sh)"
bash tools/setup.sh

# --- 3. C build ----------------------------------------------------------------

stage "C build (preset debug)"
cmake --preset debug
cmake --build --preset debug

# --- 4. C tests and examples ------------------------------------------------------

stage "C tests, examples and install check (ctest --preset debug)"
ctest --preset debug

# --- 5. sanitizers and Valgrind ---------------------------------------------------
#
# Every check runs through tools/memcheck.py, which builds the matching preset,
# sets up the environment, keeps every report in a log file and fails on any
# finding attributed to microcrad. The labs run in tests/test_labs.py (stage 6).

# The C tests and C examples of a preset's build.
c_programs() { find "build/$1/tests" "build/$1/examples" -maxdepth 1 -type f -perm -u+x | sort; }

for tool in asan valgrind tsan; do python3 tools/memcheck.py "$tool" --build-only; done

stage "ASan + UBSan: C tests and examples"
mapfile -t programs < <(c_programs asan)
python3 tools/memcheck.py asan --no-build --each -- "${programs[@]}"

stage "Valgrind: C tests and examples"
mapfile -t programs < <(c_programs valgrind)
python3 tools/memcheck.py valgrind --no-build --each -- "${programs[@]}"

stage "TSan: threads sharing nodes"
python3 tools/memcheck.py tsan --no-build --each -- \
    build/tsan/tests/test_node_threads build/tsan/tests/test_alloc_threads \
    build/tsan/tests/test_scope build/tsan/tests/test_alloc_cross_thread \
    build/tsan/tests/test_alloc_trim \
    build/tsan/tests/test_side_record \
    build/tsan/tests/test_node_release_many

stage "ASan + UBSan + LeakSanitizer: the whole Python test suite"
# The files left out here drive other programs (the labs and their runner, the
# examples, the benchmark, the tools' own tests, the README and tour commands): the
# library they exercise runs in those child processes, each under the tool it is
# about, and every one of them runs in stage 6. Under ASan they would only repeat
# that work, minutes of it, in a slower interpreter.
python3 tools/memcheck.py asan --no-build -- .venv/bin/pytest -q \
    --ignore=tests/test_lab_runner.py --ignore=tests/test_labs.py \
    --ignore=tests/test_labs_readme.py --ignore=tests/test_examples.py \
    --ignore=tests/test_bench.py --ignore=tests/test_tools_see_nodes.py \
    --ignore=tests/test_tour.py --ignore=tests/test_memcheck_attribution.py

stage "Valgrind: Python smoke test"
HYPOTHESIS_PROFILE=dev python3 tools/memcheck.py valgrind --no-build -- \
    .venv/bin/pytest -q -p no:cacheprovider tests/test_engine_ops.py

stage "fuzzing the C API (libFuzzer, 60 s)"
bash tests/fuzz/run.sh 60

# --- 6. Python tests -------------------------------------------------------------

stage "python tests (pytest$( ((slow)) && echo ', including slow'))"
pytest_args=()
if ((slow)); then
    # Replaces the default `-m "not slow"` from pyproject.toml.
    pytest_args+=(-m "slow or not slow")
fi
# The editable install makes `python -m pytest` from the root work as well.
.venv/bin/pytest "${pytest_args[@]}"

printf '\n===== all tests passed in %d s =====\n' "$((SECONDS - started))"
