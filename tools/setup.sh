#!/usr/bin/env bash
# Usage: tools/setup.sh
#
# Prepares the Python environment of the repository:
#   1. creates .venv with python3 if it is missing (or broken);
#   2. installs microcrad into it from this checkout, with the `test` and
#      `examples` extras. The C library is compiled on every run (a regular,
#      non-editable install), so the venv always holds the current code;
#   3. installs torch 2.13.0 (the optional reference for gradient comparisons)
#      when pip can take the wheel from a local find-links directory. Without a
#      local wheel torch is skipped: a download would run to gigabytes, and the
#      torch comparisons skip themselves when torch is absent.
#
# Safe to re-run; dependencies that are already satisfied are left alone.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

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

# --- 2. microcrad and its test/example dependencies -------------------------------

# pip rebuilds a local directory on every install, even when the version is
# unchanged, so this also picks up any change to the C sources.
say "building and installing microcrad with extras [test,examples]"
"${pip[@]}" install --quiet --progress-bar off ".[test,examples]"

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

if [[ ${installed_torch%%+*} == "$torch_version" ]]; then
    say "torch $installed_torch already installed"
else
    # Ask pip, offline, which wheel it would use: with --no-index only the
    # find-links directories from the pip configuration are searched.
    report=$(mktemp)
    trap 'rm -f -- "$report"' EXIT
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

# -I: isolated mode, so the source folder ./microcrad (no library in it) cannot
# shadow the installed package.
say "done: microcrad $("$python" -I -c 'import microcrad, os; print("installed in", os.path.dirname(microcrad.__file__))')"
