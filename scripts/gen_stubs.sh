#!/usr/bin/env bash
# Regenerates python/deepcore/_C.pyi from csrc/ops/ops.schema (the ops) and
# tools/stubs/_C_base.pyi (Tensor's own members, dtype, autograd and interop). No build needed.
# tests/test_schema.py fails while the checked-in stub differs from what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
"${PYTHON:-python3}" tools/gen_ops.py --pyi python/deepcore/_C.pyi
echo "wrote python/deepcore/_C.pyi"
