"""``NeuralNetClassifier``: a deepcore module as a scikit-learn classifier."""
from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from .. import nn
from .._C import Tensor
from ._base import NeuralNetBase

__all__ = ["NeuralNetClassifier"]


class NeuralNetClassifier(ClassifierMixin, NeuralNetBase):
    """A classifier that trains a deepcore ``nn.Module`` (parameters: see ``NeuralNetBase``).

    The module maps a batch of samples to one logit per class, shape ``(batch, n_classes)``,
    in the order of ``classes_`` (the sorted labels, of any type: strings, non-contiguous
    integers). The default criterion is ``nn.CrossEntropyLoss``, which receives the logits
    and the class indices (int64). ``predict_proba`` is the softmax of the logits.

        clf = NeuralNetClassifier(max_epochs=30, lr=1e-2, random_state=0).fit(X, y)
        clf = NeuralNetClassifier(Net, module__width=64, criterion=nn.CrossEntropyLoss)

    Fitted attributes add ``classes_`` to the base ones.
    """

    _default_criterion = nn.CrossEntropyLoss

    def _validate_y_kwargs(self):
        return {}

    def _prepare_targets(self, y, method: str, first: bool, classes=None) -> np.ndarray:
        """The labels as class indices; ``classes_`` set on the first call."""
        where = self._where(method)
        check_classification_targets(y)
        if method == "fit":
            self.classes_, encoded = np.unique(y, return_inverse=True)
            return encoded.astype(np.int64).reshape(-1)
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            check_classification_targets(classes)
        if first:
            if classes is None:
                raise ValueError(f"{where} classes must be passed on the first call to "
                                 "partial_fit: the module's output size is fixed by it")
            self.classes_ = classes
        elif classes is not None and not np.array_equal(classes, self.classes_):
            raise ValueError(f"{where} classes={classes.tolist()} differs from the classes of "
                             f"the first call, {self.classes_.tolist()}")
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"{where} y holds labels {np.unique(y[unknown]).tolist()} that are "
                             f"not in classes {self.classes_.tolist()}")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _check_output(self, out: Tensor, batch: tuple[int, ...], method: str) -> Tensor:
        expected = (batch[0], len(self.classes_))
        if tuple(out.shape) != expected:
            raise ValueError(
                f"{self._where(method)} the module returned shape {tuple(out.shape)} for input "
                f"{tuple(batch)}; expected {expected}: one logit per class of "
                f"{self.classes_.tolist()}")
        return out

    def _target_tensor(self, y: np.ndarray) -> Tensor:
        return self._tensor(y)

    def partial_fit(self, X, y, classes=None) -> NeuralNetClassifier:
        """One epoch over (X, y), continuing the current module (built on the first call,
        which must pass every label the classifier will see as ``classes``)."""
        return self._fit(X, y, "partial_fit", partial=True, classes=classes)

    def _log_proba(self, X, method: str) -> np.ndarray:
        logits = self._forward(X, method).astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def predict_log_proba(self, X) -> np.ndarray:
        """log(predict_proba(X)), computed stably from the logits (float64)."""
        return self._log_proba(X, "predict_log_proba")

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes): the softmax of the module's
        logits, computed in float64 so that every row sums to 1."""
        proba = np.exp(self._log_proba(X, "predict_proba"))
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The most probable label of each sample, from ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

