#!/usr/bin/env bash
# Regenerates python/deepcore/_C.pyi from the built extension (pip install pybind11-stubgen).
# The stub is generated, never edited by hand; rerun this after changing the bindings.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
PYTHONPATH="${PYTHONPATH:-$PWD/python}" pybind11-stubgen deepcore._C -o "$out" --ignore-all-errors
cp "$out/deepcore/_C.pyi" python/deepcore/_C.pyi
rm -rf "$out"
echo "wrote python/deepcore/_C.pyi"
