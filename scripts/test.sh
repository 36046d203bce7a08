#!/usr/bin/env bash
# Installs deepcore with its test extra and runs the whole test suite: the C++ GoogleTest
# tests (built with CMake, when GoogleTest is installed), once more under AddressSanitizer and
# UndefinedBehaviorSanitizer (SANITIZE=0 skips that), and the pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
JOBS="${JOBS:-2}"

"$PYTHON" -m pip install --quiet ".[test]"

if [ -e /usr/include/gtest/gtest.h ] || [ -n "${GTEST_ROOT:-}" ]; then
  cmake -S . -B build/cpp-tests -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDEEPCORE_BUILD_TESTS=ON -DDEEPCORE_BUILD_PYTHON=OFF > build-cpp-tests.log
  cmake --build build/cpp-tests -j "$JOBS" >> build-cpp-tests.log
  ctest --test-dir build/cpp-tests --output-on-failure -j "$JOBS"
  if [ "${SANITIZE:-1}" != 0 ]; then
    # Only the test binary and the library it links; ccache keeps rebuilds short.
    mkdir -p build
    cmake -S . -B build/cpp-tests-asan -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DDEEPCORE_BUILD_TESTS=ON -DDEEPCORE_BUILD_PYTHON=OFF -DDEEPCORE_SANITIZE=ON \
      > build/cpp-tests-asan.log
    cmake --build build/cpp-tests-asan -j "$JOBS" --target deepcore_cpp_tests \
      >> build/cpp-tests-asan.log
    ctest --test-dir build/cpp-tests-asan --output-on-failure -j "$JOBS"
  fi
else
  echo "GoogleTest not found (apt-get install libgtest-dev): skipping the C++ tests" >&2
fi

# The CUDA build (-DDEEPCORE_CUDA=ON, its CUDA sources with warnings as errors), where nvcc is
# installed: it must compile, and on a machine without a GPU its entry points must say there is
# no CUDA device (tests/test_cuda_cpu.py). CUDA=0 skips it.
if [ "${CUDA:-1}" != 0 ] && command -v nvcc >/dev/null 2>&1; then
  "$PYTHON" -m pip install --quiet "pybind11>=2.12"
  mkdir -p build
  PYTHON="$PYTHON" scripts/dev-build.sh cuda -DDEEPCORE_CUDA=ON -DDEEPCORE_BUILD_TESTS=OFF \
    > build/cuda.log 2>&1 || { tail -50 build/cuda.log; exit 1; }
  (cd tests && PYTHONPATH=../build/cuda/site "$PYTHON" -m pytest -q -p no:cacheprovider \
    --rootdir=.. -c ../pyproject.toml test_cuda_cpu.py test_user_programs.py)
fi

# Run from outside the source tree so the installed package, not python/, is imported.
cd tests
"$PYTHON" -m pytest -q -p no:cacheprovider --rootdir=.. -c ../pyproject.toml . "$@"
