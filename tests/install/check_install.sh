#!/usr/bin/env bash
# Usage: tests/install/check_install.sh     (CTest runs it as the test "install")
#
# Checks that an installed microcrad is usable by an outside project:
#   1. builds the library from this checkout (Release, no tests) in a scratch
#      directory and installs it with `cmake --install --prefix` into a prefix
#      other than the configured one, so a hard-coded path would show;
#   2. checks the installed files, and that the library exports exactly the
#      functions the header declares with MICROCRAD_API (nothing internal);
#   3. builds main.c with pkg-config and runs it;
#   4. builds main.c with find_package(microcrad CONFIG) and runs it.
# Each program must load the installed library, not some other copy.
# Honours CC. Needs cmake, a C compiler, pkg-config and nm.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${CC:-cc}

step() { printf 'check_install: %s\n' "$*"; }
fail() {
    printf 'check_install: FAILED: %s\n' "$*" >&2
    exit 1
}

for tool in cmake "$cc" pkg-config nm; do
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

step "building the pkg-config consumer"
# Flags after the source, so that linkers using --as-needed keep the library.
# shellcheck disable=SC2086 # pkg-config output is a list of words
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror $cflags "$here/main.c" \
    $ldflags -Wl,-rpath,"$libdir" -o "$work/consumer-pkg-config"
check_loads_installed "$work/consumer-pkg-config"
step "running the pkg-config consumer"
run_consumer "$work/consumer-pkg-config"

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

step "passed"
