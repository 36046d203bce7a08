"""``NeuralNetRegressor``: a deepcore module as a scikit-learn regressor."""
from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin

from .. import nn
from .._C import Tensor
from ._base import NeuralNetBase

__all__ = ["NeuralNetRegressor"]


class NeuralNetRegressor(RegressorMixin, NeuralNetBase):
    """A regressor that trains a deepcore ``nn.Module`` (parameters: see ``NeuralNetBase``).

    y is one target, shape (n_samples,), or several, shape (n_samples, n_targets); the module
    returns ``(batch, n_targets)`` (or ``(batch,)`` for one target). The default criterion is
    ``nn.MSELoss``. ``predict`` returns float64 in the shape y had at fit.

        reg = NeuralNetRegressor(max_epochs=50, lr=1e-2, random_state=0).fit(X, y)

    Fitted attributes add ``n_outputs_`` to the base ones.
    """

    _default_criterion = nn.MSELoss

    def _validate_y_kwargs(self):
        return {"y_numeric": True, "multi_output": True}

    def _prepare_targets(self, y, method: str, first: bool) -> np.ndarray:
        """y as (n_samples, n_outputs); ``n_outputs_`` set on the first call."""
        y = np.asarray(y)
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if first:
            self.n_outputs_ = y2.shape[1]
            self._target_ndim = y.ndim
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(f"{self._where(method)} y has {y2.shape[1]} targets (shape "
                             f"{y.shape}) but the regressor was fitted on {self.n_outputs_}")
        return y2

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def _check_output(self, out: Tensor, batch: tuple[int, ...], method: str) -> Tensor:
        shape = tuple(out.shape)
        if shape == (batch[0], self.n_outputs_):
            return out
        if self.n_outputs_ == 1 and shape == (batch[0],):
            return out.reshape(batch[0], 1)
        raise ValueError(f"{self._where(method)} the module returned shape {shape} for input "
                         f"{tuple(batch)}; expected ({batch[0]}, {self.n_outputs_}): one "
                         "output per target")

    def _target_tensor(self, y: np.ndarray) -> Tensor:
        return self._tensor(y.astype(self._numpy_dtype()), self._dtype)

    def partial_fit(self, X, y) -> NeuralNetRegressor:
        """One epoch over (X, y), continuing the current module (built on the first call)."""
        return self._fit(X, y, "partial_fit", partial=True)

    def predict(self, X) -> np.ndarray:
        """The module's outputs: shape (n_samples,) if y was 1-D at fit, else
        (n_samples, n_outputs_)."""
        out = self._forward(X, "predict").astype(np.float64)
        return out.reshape(-1) if self._target_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
