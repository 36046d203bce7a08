#!/usr/bin/env bash
# Builds the C++ microbenchmarks (bench/*.cpp, Google Benchmark) into build/bench and prints
# the binary's path. Needs Google Benchmark's CMake package: apt-get install libbenchmark-dev
# (Debian, Ubuntu). Arguments go to cmake's configure step, e.g. -DCMAKE_CXX_COMPILER=clang++.
#
#   scripts/bench-build.sh && build/bench/deepcore_bench --benchmark_filter=gemm
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DDEEPCORE_BUILD_BENCH=ON \
  -DDEEPCORE_BUILD_TESTS=OFF -DDEEPCORE_BUILD_PYTHON=OFF "$@" > build/bench.configure.log 2>&1 ||
  { cat build/bench.configure.log; exit 1; }
cmake --build build/bench -j "${JOBS:-2}" --target deepcore_bench
echo "$PWD/build/bench/deepcore_bench"
