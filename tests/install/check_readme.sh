#!/usr/bin/env bash
# Usage: tests/install/check_readme.sh     (CTest runs it as the test "readme_commands")
#
# Runs the shell commands of README.md's "C" section verbatim, in a fresh copy of
# this checkout (its tracked and new files, no build directories), as a new user
# would after cloning: build and install the library into $HOME/.local, compile the
# section's first C example as demo.c with pkg-config and run it, and build the
# reference manual when Doxygen is installed. HOME points into a scratch directory.
# The section's other C example is compiled and run the same way.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

step() { printf 'check_readme: %s\n' "$*"; }
fail() {
    printf 'check_readme: FAILED: %s\n' "$*" >&2
    exit 1
}

for tool in cmake cc pkg-config python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not installed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/microcrad-readme.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
clone=$work/microcrad
mkdir -p "$clone" "$work/home"

# A fresh clone: the files git knows of (committed or not), nothing ignored.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 -I{} sh -c 'test -e "$1" && printf "%s\0" "$1" || true' _ {} |
        tar --null -T - -cf -) | tar -xf - -C "$clone"
else
    fail "$root is not a git checkout"
fi
[[ ! -e $clone/build ]] || fail "the copy has a build directory"

# The C section's blocks: sh blocks to run, c blocks to compile.
python3 - "$clone/README.md" "$work" <<'PY'
import re, sys
from pathlib import Path
readme, work = Path(sys.argv[1]).read_text(encoding="utf-8"), Path(sys.argv[2])
section = re.search(r"^## C\n(.*?)(?=^## )", readme, flags=re.S | re.M).group(1)
blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
sh = [body for lang, body in blocks if lang == "sh"]
c = [body for lang, body in blocks if lang == "c"]
assert len(sh) >= 3 and len(c) >= 2, (len(sh), len(c))
for i, body in enumerate(sh):
    (work / f"block{i}.sh").write_text(body, encoding="utf-8")
for i, body in enumerate(c):
    (work / f"example{i}.c").write_text(body, encoding="utf-8")
PY

export HOME=$work/home
unset LD_LIBRARY_PATH PKG_CONFIG_PATH
cp "$work/example0.c" "$clone/demo.c"
for block in "$work"/block*.sh; do
    if grep -q -- '--target docs' "$block" && ! command -v doxygen >/dev/null 2>&1; then
        step "skipping the manual's commands: doxygen is not installed"
        continue
    fi
    step "running $(basename "$block"):"
    sed 's/^/    /' "$block"
    (cd "$clone" && bash -euo pipefail "$block") || fail "the commands of $(basename "$block") failed"
done

[[ -x $clone/demo ]] || fail "the commands did not build ./demo"
if grep -q -- '--target docs' "$work"/block*.sh && command -v doxygen >/dev/null 2>&1; then
    [[ -f $clone/build/release/docs/html/index.html ]] || fail "no reference manual was built"
fi

# The second example (scopes), built and run with the same command.
step "building and running the scope example"
(cd "$clone" && export PKG_CONFIG_PATH="$HOME/.local/lib/pkgconfig" &&
    cp "$work/example1.c" scoped.c &&
    cc scoped.c $(pkg-config --cflags --libs microcrad) -o scoped && ./scoped) ||
    fail "the scope example failed"
step "passed"
