#!/usr/bin/env bash
# Usage: tools/demo.sh [arguments for examples/moons.py]
#
# Sets up .venv with only what the demo needs (tools/setup.sh --demo: microcrad and
# numpy, scikit-learn, tqdm, matplotlib; build progress shown) and runs the main
# demo: an MLP trained on the two-moons data set, as in micrograd's demo notebook.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

demo=examples/moons.py
if [[ ! -f $demo ]]; then
    echo "demo.sh: $demo does not exist in this checkout; nothing to run" >&2
    exit 1
fi

bash tools/setup.sh --demo
exec .venv/bin/python "$demo" "$@"
