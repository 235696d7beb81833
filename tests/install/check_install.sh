#!/usr/bin/env bash
# Usage: tests/install/check_install.sh     (CTest runs it as the test "install")
#
# Checks that an installed microcrad is usable by an outside project:
#   1. builds the library from this checkout (Release, no tests) in a scratch
#      directory and installs it with `cmake --install --prefix` into a prefix
#      other than the configured one, so a hard-coded path would show;
#   2. checks the installed files, and that the library exports exactly the
#      functions the header declares with MICROCRAD_API (nothing internal);
#   3. builds main.c with exactly `cc main.c $(pkg-config --cflags --libs microcrad)`
#      and runs it with no LD_LIBRARY_PATH; builds main.cpp (C++17) the same way;
#   4. builds main.c with find_package(microcrad CONFIG), and main.cpp from a
#      C++-only project, and runs them;
#   5. builds and installs the static library (-DBUILD_SHARED_LIBS=OFF) and links
#      main.c against it with exactly `cc main.c $(pkg-config --cflags --libs
#      microcrad)` (no --static), through `pkg-config --static` and through
#      find_package; checks that only the API is global in the archive, and that a
#      program with a function named like an internal one (mc_alloc) links;
#   6. builds main.c in a project that adds this checkout with add_subdirectory,
#      and in one that uses FetchContent: only the library is built.
# Each program must load the installed library, not some other copy.
# Honours CC and CXX. Needs cmake, a C and a C++ compiler, pkg-config, nm and objdump.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${CC:-cc}
cxx=${CXX:-c++}

step() { printf 'check_install: %s\n' "$*"; }
fail() {
    printf 'check_install: FAILED: %s\n' "$*" >&2
    exit 1
}

for tool in cmake "$cc" "$cxx" pkg-config nm objdump; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not installed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/microcrad-install.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
prefix=$work/prefix

# --- 1. build and install -------------------------------------------------------

step "building the library in $work/build"
cmake -S "$root" -B "$work/build" \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$work/configured-prefix" \
    -DMICROCRAD_BUILD_TESTS=OFF \
    -DMICROCRAD_BUILD_EXAMPLES=OFF
cmake --build "$work/build"
step "installing into $prefix"
cmake --install "$work/build" --prefix "$prefix"
[[ ! -e $work/configured-prefix ]] || fail "files were installed into the configured prefix"

# --- 2. installed files and exported symbols ------------------------------------

header=$prefix/include/microcrad.h
[[ -f $header ]] || fail "no header at $header"

mapfile -t libs < <(find "$prefix" -name 'libmicrocrad.so' \( -type f -o -type l \))
((${#libs[@]} == 1)) || fail "expected one libmicrocrad.so under $prefix, found ${#libs[@]}"
lib=${libs[0]}
libdir=$(dirname "$lib")
pcdir=$libdir/pkgconfig
[[ -f $pcdir/microcrad.pc ]] || fail "no pkg-config file at $pcdir/microcrad.pc"
[[ -f $libdir/cmake/microcrad/microcrad-config.cmake ]] ||
    fail "no CMake package config in $libdir/cmake/microcrad"
step "installed: $(cd "$prefix" && find . \( -type f -o -type l \) | sort | tr '\n' ' ')"

# Functions declared at the start of a line as `MICROCRAD_API <type> name(`.
declared=$(grep -E '^MICROCRAD_API ' "$header" |
    sed -E 's/^[^(]*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sort -u)
[[ -n $declared ]] || fail "found no MICROCRAD_API declarations in $header"
if [[ $declared != "$exported" ]]; then
    diff <(echo "$declared") <(echo "$exported") | sed 's/^/    /' >&2 || true
    fail "exported symbols differ from the header's API ('<' declared only, '>' exported only)"
fi
step "exports match the header: $(echo "$declared" | wc -l) functions"

# The ABI policy (README, "ABI policy"): SONAME libmicrocrad.so.0.MINOR while the
# version is 0.x, libmicrocrad.so.MAJOR from 1.0 on.
pc_version=$(sed -n 's/^Version: //p' "$pcdir/microcrad.pc")
IFS=. read -r major minor _ <<<"$pc_version"
if ((major == 0)); then expected_soname=libmicrocrad.so.0.$minor; else expected_soname=libmicrocrad.so.$major; fi
soname=$(objdump -p "$(realpath "$lib")" | awk '$1 == "SONAME" { print $2 }')
[[ $soname == "$expected_soname" ]] ||
    fail "the library's SONAME is '$soname', the ABI policy says '$expected_soname'"
[[ -e $libdir/$soname ]] || fail "no $soname link in $libdir"
step "SONAME $soname (version $pc_version)"

# A consumer must run against the installed library: its path must be the one
# the dynamic loader resolves.
check_loads_installed() {
    local program=$1 resolved
    resolved=$(ldd "$program" | awk '$1 ~ /^libmicrocrad\.so/ { print $3 }')
    [[ -n $resolved ]] || fail "$program does not link libmicrocrad"
    [[ $(realpath "$resolved") == "$(realpath "$libdir")"/* ]] ||
        fail "$program loads $resolved instead of the copy in $libdir"
}

# Runs a consumer and checks that it reports the installed package's version.
run_consumer() {
    local program=$1 output
    output=$("$program") || fail "$program exited with status $?"
    printf '%s\n' "$output" | sed 's/^/    /'
    [[ $(head -n 1 <<<"$output") == "microcrad $version" ]] ||
        fail "$program reports '$(head -n 1 <<<"$output")', expected 'microcrad $version'"
}

# --- 3. pkg-config consumer -----------------------------------------------------

export PKG_CONFIG_PATH=$pcdir
version=$(pkg-config --modversion microcrad) || fail "pkg-config cannot read microcrad.pc"
cflags=$(pkg-config --cflags microcrad)
ldflags=$(pkg-config --libs microcrad)
static_libs=$(pkg-config --static --libs microcrad)
step "pkg-config: version $version; cflags: $cflags; libs: $ldflags; static: $static_libs"
[[ " $static_libs " == *" -lm "* ]] || fail "pkg-config --static --libs lacks -lm"

step "building the pkg-config consumer with exactly: $cc main.c \$(pkg-config --cflags --libs microcrad)"
(cd "$work" && "$cc" "$here/main.c" $(pkg-config --cflags --libs microcrad) -o consumer-pkg-config)
check_loads_installed "$work/consumer-pkg-config"
step "running the pkg-config consumer with no LD_LIBRARY_PATH"
(unset LD_LIBRARY_PATH && run_consumer "$work/consumer-pkg-config")

step "building the C++17 program with pkg-config"
# shellcheck disable=SC2046 # pkg-config output is a list of words
"$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror "$here/main.cpp" \
    $(pkg-config --cflags --libs microcrad) -o "$work/consumer-cxx"
check_loads_installed "$work/consumer-cxx"
step "running the C++17 program"
(unset LD_LIBRARY_PATH && run_consumer "$work/consumer-cxx")

# --- 4. CMake find_package consumer ---------------------------------------------

step "building the find_package consumer"
cmake -S "$here" -B "$work/consumer" \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DMICROCRAD_EXPECTED_VERSION="$version"
found=$(sed -n 's/^microcrad_DIR:PATH=//p' "$work/consumer/CMakeCache.txt")
[[ $(realpath "$found") == "$(realpath "$libdir")"/* ]] ||
    fail "find_package found microcrad in '$found', not in the install at $prefix"
cmake --build "$work/consumer"
check_loads_installed "$work/consumer/consumer"
step "running the find_package consumer"
run_consumer "$work/consumer/consumer"

step "building a C++-only find_package consumer"
cmake -S "$here/cxx" -B "$work/consumer-cxx-cmake" \
    -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$work/consumer-cxx-cmake"
check_loads_installed "$work/consumer-cxx-cmake/cxx_consumer"
run_consumer "$work/consumer-cxx-cmake/cxx_consumer"

# --- 5. the static library ------------------------------------------------------

static_prefix=$work/static-prefix
step "building and installing the static library into $static_prefix"
cmake -S "$root" -B "$work/build-static" \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DMICROCRAD_BUILD_TESTS=OFF \
    -DMICROCRAD_BUILD_EXAMPLES=OFF
cmake --build "$work/build-static"
cmake --install "$work/build-static" --prefix "$static_prefix"
[[ -z $(find "$static_prefix" -name 'libmicrocrad.so*') ]] ||
    fail "BUILD_SHARED_LIBS=OFF installed a shared library"
mapfile -t archives < <(find "$static_prefix" -name 'libmicrocrad.a' -type f)
((${#archives[@]} == 1)) || fail "expected one libmicrocrad.a under $static_prefix"
static_pcdir=$(dirname "${archives[0]}")/pkgconfig

check_static() {
    local program=$1
    ! ldd "$program" | grep -q libmicrocrad ||
        fail "$program links a shared libmicrocrad instead of the static library"
    run_consumer "$program"
}

# Only the API is global in the archive: an internal function left global (mc_alloc,
# ...) would clash with a program's function of the same name.
archive_globals=$(nm -g --defined-only "${archives[0]}" | awk 'NF == 3 { print $3 }' | sort -u)
if [[ $declared != "$archive_globals" ]]; then
    diff <(echo "$declared") <(echo "$archive_globals") | sed 's/^/    /' >&2 || true
    fail "libmicrocrad.a's global symbols differ from the header's API ('<' declared only, '>' global only)"
fi
step "the static archive's global symbols match the header: $(echo "$archive_globals" | wc -l)"
step "a program defining its own mc_alloc links against the static library"
printf '%s\n' '#include <stdlib.h>' 'void *mc_alloc(size_t n);' \
    'void *mc_alloc(size_t n) { return calloc(1, n); }' >"$work/own_mc_alloc.c"
"$cc" -c "$work/own_mc_alloc.c" -o "$work/own_mc_alloc.o"
# shellcheck disable=SC2046 # pkg-config output is a list of words
"$cc" "$here/main.c" "$work/own_mc_alloc.o" \
    $(PKG_CONFIG_PATH=$static_pcdir pkg-config --cflags --libs microcrad) -o "$work/consumer-clash"
check_static "$work/consumer-clash"

# What most build scripts do, without --static: the .pc file of a static install must
# name libm and pthreads in Libs, not only in Libs.private.
step "linking the static library with exactly: $cc main.c \$(pkg-config --cflags --libs microcrad)"
# shellcheck disable=SC2046 # pkg-config output is a list of words
(cd "$work" && "$cc" "$here/main.c" $(PKG_CONFIG_PATH=$static_pcdir pkg-config --cflags --libs microcrad) \
    -o consumer-static-plain-pkg-config)
check_static "$work/consumer-static-plain-pkg-config"

step "linking the static library with pkg-config --static"
static_flags=$(PKG_CONFIG_PATH=$static_pcdir pkg-config --static --cflags --libs microcrad)
step "pkg-config --static: $static_flags"
# shellcheck disable=SC2086 # pkg-config output is a list of words
"$cc" "$here/main.c" $static_flags -o "$work/consumer-static-pkg-config"
check_static "$work/consumer-static-pkg-config"

step "linking the static library with find_package"
cmake -S "$here" -B "$work/consumer-static" \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$static_prefix" \
    -DMICROCRAD_EXPECTED_VERSION="$version"
cmake --build "$work/consumer-static"
check_static "$work/consumer-static/consumer"

# --- 6. a subproject: add_subdirectory and FetchContent -------------------------

for how in add_subdirectory FetchContent; do
    step "building a project that adds this checkout with $how"
    cmake -S "$here/subproject" -B "$work/sub-$how" \
        -DCMAKE_C_COMPILER="$cc" \
        -DMICROCRAD_HOW="$how" \
        -DMICROCRAD_SOURCE="$root"
    cmake --build "$work/sub-$how"
    (unset LD_LIBRARY_PATH && run_consumer "$work/sub-$how/consumer")
done

step "passed"
