#!/usr/bin/env bash
# Incremental developer build. Compiles deepcore._C (and the GoogleTest binary) into
# build/<name> with ninja and ccache, then lays out build/<name>/site/deepcore: the package
# sources of python/deepcore, linked, plus the fresh extension. Several checkouts' worth of
# builds can live side by side under different names.
#
#   scripts/dev-build.sh dev                      # build
#   PYTHONPATH=build/dev/site python -c 'import deepcore'
#   (cd tests && PYTHONPATH=../build/dev/site python -m pytest -q -c ../pyproject.toml .)
#   build/dev/deepcore_cpp_tests                  # the C++ tests
# Extra arguments go to cmake's configure step (e.g. -DDEEPCORE_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-dev}"
shift || true
dir="build/$name"
PYTHON="${PYTHON:-python3}"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDEEPCORE_BUILD_TESTS=ON \
    -Dpybind11_DIR="$("$PYTHON" -m pybind11 --cmakedir)" "$@" > "$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; exit 1; }
fi
cmake --build "$dir" -j "${JOBS:-2}"
site="$dir/site/deepcore"
mkdir -p "$site"
# Link every top-level entry of the package (new files included), then the extension.
for entry in python/deepcore/*; do
  base="$(basename "$entry")"
  case "$base" in _C*.so|__pycache__) continue ;; esac
  ln -sfn "$PWD/$entry" "$site/$base"
done
for so in "$dir"/_C*.so; do ln -sfn "$PWD/$so" "$site/$(basename "$so")"; done
echo "PYTHONPATH=$PWD/$dir/site"
