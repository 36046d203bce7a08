#!/usr/bin/env bash
# The GPU check: run it on a machine with an NVIDIA GPU (and nvcc). It builds the CUDA extension
# into build/cuda, says what the card and the driver are, runs the device suite (`pytest -m
# cuda`, tests/test_cuda.py) on the GPU, then the GPU benchmarks (bench/bench_cuda.py, their own
# table), and prints one summary table. Record the table in
# bench/README.md with the card named.
#
#   bash bench/gpu_check.sh            # about 2 minutes of build with a warm ccache
#
# On a machine without a GPU the same suite runs on the fake device (Note [The fake device]),
# which is what CI does; this script refuses to run there, since it would measure nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
start=$(date +%s)
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total \
  --format=csv,noheader || echo "nvidia-smi: not found"
PYTHON="$PYTHON" scripts/dev-build.sh cuda -DDEEPCORE_CUDA=ON -DDEEPCORE_BUILD_TESTS=OFF \
  > build/cuda.log 2>&1 || { tail -50 build/cuda.log; exit 1; }
built=$(date +%s)
export PYTHONPATH="$PWD/build/cuda/site"
"$PYTHON" -c "import deepcore as dc; dc.show_config()"
if ! "$PYTHON" -c "import deepcore as dc, sys; sys.exit(0 if dc.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device here; nothing to measure"
  exit 2
fi
log=$(mktemp)
(cd tests && "$PYTHON" -m pytest -m cuda -q -s -p no:cacheprovider --rootdir=.. \
  -c ../pyproject.toml test_cuda.py test_cuda_cpu.py) | tee "$log"
status=${PIPESTATUS[0]}
tested=$(date +%s)
bench=$(mktemp)
timeout 240 "$PYTHON" bench/bench_cuda.py 2>&1 | tee "$bench"
done_at=$(date +%s)
echo
echo "| item | result |"
echo "|---|---|"
echo "| card | $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) |"
echo "| build | $((built - start)) s |"
echo "| pytest -m cuda | $(grep -E '[0-9]+ (passed|failed)' "$log" | tail -1) |"
grep -E '^\[cuda opinfo\] (GPU|fake)' "$log" | sed 's/^\[cuda opinfo\] /| opinfo | /; s/$/ |/'
echo "| ops without a cuda kernel | $(grep -c '^\[cuda opinfo\] missing' "$log") |"
echo "| benchmarks (bench/bench_cuda.py, above) | $((done_at - tested)) s |"
echo "| total | $((done_at - start)) s |"
exit "$status"
