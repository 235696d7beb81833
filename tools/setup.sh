#!/usr/bin/env bash
# Usage: tools/setup.sh [--demo]
#
# Prepares the Python environment of the repository:
#   1. creates .venv with python3 if it is missing (or broken);
#   2. installs microcrad into it from this checkout as an editable install, with
#      the `test` and `examples` extras: the Python code is used from ./microcrad
#      and the C library is compiled (progress shown) into .venv, so that the
#      repository root itself imports microcrad (`python -m pytest`, notebooks
#      started here, `python -c "import microcrad"`). The library is rebuilt on
#      every run, so re-run this after changing C code;
#   3. installs torch 2.13.0 (the optional reference for gradient comparisons)
#      when pip can take the wheel from a local find-links directory. Without a
#      local wheel torch is skipped: a download would run to gigabytes, and the
#      torch comparisons skip themselves when torch is absent.
#
#   --demo   only what tools/demo.sh needs: the `demo` extra, no torch
#
# Safe to re-run; dependencies that are already satisfied are left alone.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

extras=test,examples
with_torch=1
for arg in "$@"; do
    case $arg in
        --demo) extras=demo with_torch=0 ;;
        *)
            echo "setup.sh: unknown argument '$arg' (try: tools/setup.sh [--demo])" >&2
            exit 2
            ;;
    esac
done

say() { printf 'setup: %s\n' "$*"; }

venv=.venv
python=$venv/bin/python
pip=("$python" -m pip --disable-pip-version-check)

# --- 1. the virtual environment -------------------------------------------------

if [[ -x $python ]] && "$python" -c 'import sys' 2>/dev/null; then
    say "using $venv ($("$python" --version))"
else
    if [[ -e $venv ]]; then
        # Typically the interpreter it was made from has gone away.
        say "$venv exists but its python does not run; recreating it"
        rm -rf -- "$venv"
    fi
    say "creating $venv with $(command -v python3) ($(python3 --version))"
    python3 -m venv "$venv"
fi

# --- 2. microcrad and its dependencies ---------------------------------------------

# pip -v streams the build backend's output; only the progress lines are shown
# (packages fetched, CMake's "[ 40%] Building C object ..."), the whole log is kept
# and shown when the install fails.
log=$(mktemp)
cleanup() { rm -f -- "$log" "${report:-}"; }
trap cleanup EXIT
say "installing microcrad (editable) with extras [$extras]; compiling the C library:"
set +e
"${pip[@]}" install -v --progress-bar off -e ".[$extras]" 2>&1 | tee "$log" | {
    grep --line-buffered -E \
        '^(Obtaining|Collecting|Installing collected|Successfully installed|\*\*\*)|\[ *[0-9]+(%|/[0-9]+)\]' |
        sed -u 's/^/  /'
    true
}
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
    say "the install failed (pip exit status $status); the end of its log:" >&2
    tail -n 60 "$log" >&2
    exit 1
fi

# --- 3. torch, when it is cheap -------------------------------------------------

torch_version=2.13.0
installed_torch=$("$python" - <<'EOF' 2>/dev/null || true
from importlib.metadata import PackageNotFoundError, version
try:
    print(version("torch"))
except PackageNotFoundError:
    pass
EOF
)

if ((!with_torch)); then
    :
elif [[ ${installed_torch%%+*} == "$torch_version" ]]; then
    say "torch $installed_torch already installed"
else
    # Ask pip, offline, which wheel it would use: with --no-index only the
    # find-links directories from the pip configuration are searched.
    report=$(mktemp)
    if "${pip[@]}" install --dry-run --quiet --no-index --no-deps --only-binary :all: \
            --report "$report" "torch==$torch_version" >/dev/null 2>&1; then
        wheel=$("$python" - "$report" <<'EOF'
import json
import sys
from urllib.parse import unquote, urlparse

url = json.load(open(sys.argv[1]))["install"][0]["download_info"]["url"]
print(unquote(urlparse(url).path))
EOF
)
        # Install that exact file, so that pip cannot prefer a same-version
        # (CUDA) build from an index; its small dependencies come from the index.
        say "installing torch $torch_version from the local wheel $wheel"
        "${pip[@]}" install --quiet --progress-bar off "$wheel"
    else
        say "no local wheel for torch==$torch_version in pip's find-links; skipping torch" \
            "(the comparisons against torch will be skipped)"
    fi
fi

# From the repository root, as a user would: the editable install makes ./microcrad
# importable with its compiled library.
say "done: microcrad $("$python" -c 'import microcrad; print(microcrad.__version__, "from", microcrad.__file__)')"
