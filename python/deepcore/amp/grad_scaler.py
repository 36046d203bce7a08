"""``GradScaler``: scales the loss so small half-precision gradients do not flush to zero.

The algorithm is PyTorch's: multiply the loss by ``scale`` before ``backward``; before the
step, divide the gradients by it, and skip the step when any of them is inf/NaN; then halve
the scale after a skipped step, or double it after ``growth_interval`` clean ones.

A scaler built for ``"cuda"`` on a build without a CUDA backend disables itself with a
warning, as PyTorch does on a machine without a GPU; disabled, every method is a
pass-through (``scale`` returns its input, ``step`` calls ``optimizer.step()``), so the
usual ``scaler.scale(loss).backward(); scaler.step(opt); scaler.update()`` loop runs as a
plain training loop.
"""
from __future__ import annotations

import warnings
from typing import Any

from .. import _C


class GradScaler:
    _stacklevel = 2  # the warning names the caller's line (one more for the cuda.amp spelling)

    def __init__(self, device: str = "cuda", init_scale: float = 2.0**16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = str(device)
        from .. import cuda
        if enabled and self._device.startswith("cuda") and not cuda.is_available():
            warnings.warn("GradScaler is enabled, but CUDA is not available. Disabling.",
                          stacklevel=self._stacklevel)
            enabled = False
        if enabled:
            if growth_factor <= 1.0:
                raise ValueError("GradScaler: growth_factor should be > 1")
            if not 0.0 < backoff_factor < 1.0:
                raise ValueError("GradScaler: backoff_factor should be in (0, 1)")
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._found_inf: dict[int, bool] = {}  # id(optimizer) -> inf seen, once unscaled

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def scale(self, outputs: Any) -> Any:
        """``outputs * scale`` for a tensor, or each tensor of a list/tuple."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def unscale_(self, optimizer) -> None:
        """Divides the gradients of ``optimizer``'s parameters by the scale, in place."""
        if not self._enabled:
            return
        if id(optimizer) in self._found_inf:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        from .. import isfinite, no_grad
        inv = 1.0 / self._scale
        found_inf = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.dtype == _C.dtype.float16:
                        # Dividing in float16 would flush the small values the scale saved.
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    p.grad.mul_(inv)
                    if not found_inf and not isfinite(p.grad).all().item():
                        found_inf = True
        self._found_inf[id(optimizer)] = found_inf

    def step(self, optimizer, *args, **kwargs):
        """Unscales (unless ``unscale_`` already did), then steps unless a gradient is inf/NaN."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if id(optimizer) not in self._found_inf:
            self.unscale_(optimizer)
        if self._found_inf[id(optimizer)]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | None = None) -> None:
        """Adjusts the scale for the next iteration (or sets it to ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if hasattr(new_scale, "item") else new_scale)
        elif any(self._found_inf.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        elif self._found_inf:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                self._scale *= self._growth_factor
                self._growth_tracker = 0
        self._found_inf.clear()

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
