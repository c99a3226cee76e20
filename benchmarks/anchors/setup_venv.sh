#!/usr/bin/env bash
# Benchmark-only environment with the GPL anchors (Atomap, HyperSpy) and scikit-optimize.
# Never a dependency of atomscope: it lives outside the package, in .venv-anchors.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${ATOMSCOPE_ANCHOR_VENV:-.venv-anchors}
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet atomap scikit-optimize scikit-image
echo "anchor environment ready: $VENV"
