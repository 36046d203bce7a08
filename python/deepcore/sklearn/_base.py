"""What deepcore's scikit-learn estimators share: parameters, the training loop, batched
prediction, seeding and pickling.

``NeuralNetClassifier`` and ``NeuralNetRegressor`` (_classifier.py, _regressor.py) add their
targets: labels and probabilities, or float targets with one or more outputs.

Note [Estimator parameters]
scikit-learn clones an estimator by reading ``get_params()`` and calling the constructor with
them, so ``__init__`` only stores what it is given and every check of a value happens in
``fit`` / ``partial_fit``. Keywords for the module, the optimizer and the loss follow skorch:
``module__hidden=64`` reaches ``module(hidden=64)``, ``optimizer__weight_decay=1e-4`` reaches
``optimizer(params, lr=lr, weight_decay=1e-4)``, ``criterion__label_smoothing=0.1`` reaches
``criterion(label_smoothing=0.1)``. These are parameters like the named ones (``get_params``
lists them, ``set_params`` and ``GridSearchCV`` change them); a constructor keyword without one
of these prefixes is kept as given and rejected by ``fit`` (init never validates).

Note [Seeding]
``random_state`` (an int, a ``numpy.random.RandomState``, or None for deepcore's global
generator, which ``deepcore.manual_seed`` seeds) gives one seed per ``fit`` (and per first
``partial_fit``); from it a NumPy generator draws the seed of the parameter initialisation,
then for every epoch the seed of its training randomness (dropout) and the order of its
minibatches. The initialisation and the training steps run inside
``deepcore.random.fork_rng``, so fitting leaves the global generator where it was (apart from
the one draw ``random_state=None`` takes from it); as that generator is process-wide, fit in
parallel with processes (joblib's default backend), not threads. The NumPy generator is part
of the fitted state, so ``k`` calls of ``partial_fit`` train exactly as ``fit`` with
``max_epochs=k`` does, and a pickled estimator continues as the original would.

Note [Fixed-size inference batches]
``predict`` runs the module on chunks of exactly ``batch_size`` rows, zero-padding the last
one. A GEMM may pick a different kernel for a different number of rows and round differently:
on a 64-100-10 MLP, batches of 1 to 4 rows gave outputs up to 3.8e-6 away from the same rows
in a batch of 300 (larger batches agreed bit for bit), so a prediction would otherwise depend
on which other rows were predicted with it. With every forward the same shape,
``predict(X)[i]`` equals ``predict(X[i:i + 1])`` bit for bit, as scikit-learn's estimator
checks demand (atol 1e-7), whatever thresholds the kernels use. The cost is the padding of the
last chunk: keep ``batch_size`` near the number of rows usually predicted at once.
"""
from __future__ import annotations

import copy
import math
import numbers
from typing import Any, Callable

import numpy as np

try:
    from sklearn.base import BaseEstimator
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("deepcore.sklearn needs scikit-learn >= 1.6: "
                      "pip install 'deepcore[sklearn]'") from err

from .. import _C, nn, optim
from .._C import Tensor
from ..autograd.grad_mode import no_grad
from ..random import fork_rng
from ..utils._generator import draw_seed

_EXTRA_PREFIXES = ("module__", "optimizer__", "criterion__")
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid,
                "identity": nn.Identity}
_NUMPY_DTYPES = {_C.dtype.float32: np.float32, _C.dtype.float64: np.float64}
_SEED_BOUND = 1 << 62


class _SavedTensor:
    """A tensor's values in a pickled estimator (deepcore tensors do not pickle)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __getstate__(self):
        return self.array

    def __setstate__(self, array):
        self.array = array


def _save_tree(value: Any) -> Any:
    if isinstance(value, Tensor):
        return _SavedTensor(np.array(value.detach().to("cpu").numpy(), copy=True))
    if isinstance(value, dict):
        return {k: _save_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_save_tree(v) for v in value)
    return value


def _load_tree(value: Any) -> Any:
    if isinstance(value, _SavedTensor):
        return _C.from_numpy(np.array(value.array, copy=True))
    if isinstance(value, dict):
        return {k: _load_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_load_tree(v) for v in value)
    return value


def default_mlp(n_features: int, n_outputs: int, hidden_layer_sizes=(100,),
                activation: str = "relu", flatten: bool = False) -> nn.Module:
    """The module built when ``module=None``: Linear layers of ``hidden_layer_sizes`` with
    ``activation`` between them and a Linear output layer of ``n_outputs`` (no activation:
    the classifier's loss takes logits). ``flatten`` puts an ``nn.Flatten`` first, for samples
    that are not vectors."""
    layers = [nn.Flatten()] if flatten else []
    width = n_features
    for size in hidden_layer_sizes:
        layers += [nn.Linear(width, int(size)), _ACTIVATIONS[activation]()]
        width = int(size)
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class NeuralNetBase(BaseEstimator):
    """Trains a deepcore ``nn.Module`` on NumPy data with scikit-learn's estimator API.

    Use :class:`NeuralNetClassifier` or :class:`NeuralNetRegressor`; this base holds what they
    share. Parameters:

    module : nn.Module class, callable returning an nn.Module, or None
        Called as ``module(**module__kwargs)`` at every ``fit``, inside the seeded context, so
        every fit and every clone gets fresh parameters. None builds :func:`default_mlp` sized
        from the data (``n_features_in_`` inputs, one output per class or target).
    hidden_layer_sizes, activation : the default MLP's hidden widths and activation
        ('relu', 'tanh', 'logistic' or 'identity'); used only when ``module`` is None.
    criterion : loss class (or callable) called as ``criterion(**criterion__kwargs)``, or an
        nn loss instance (copied at fit); None for the estimator's default.
    optimizer : deepcore.optim class (or callable), called as
        ``optimizer(module.parameters(), lr=lr, **optimizer__kwargs)``; default Adam.
    lr, max_epochs, batch_size, shuffle : learning rate, epochs per ``fit`` (``partial_fit``
        runs one), minibatch rows (also the inference chunk, Note [Fixed-size inference
        batches]), and whether each epoch visits the rows in a fresh random order.
    random_state : int, RandomState or None (Note [Seeding]).
    verbose : print the mean training loss of each epoch when > 0.
    device : where the module and the batches live ("cpu", "cuda", "cuda:1").
    **kwargs : ``module__*``, ``optimizer__*``, ``criterion__*`` (Note [Estimator parameters]).

    Fitted attributes: ``module_``, ``optimizer_``, ``criterion_``, ``n_features_in_``,
    ``n_iter_`` (epochs trained), ``loss_curve_`` (mean training loss of each epoch).
    """

    _default_criterion: Callable[..., nn.Module]

    def __init__(self, module=None, *, hidden_layer_sizes=(100,), activation="relu",
                 criterion=None, optimizer=optim.Adam, lr=1e-3, max_epochs=100,
                 batch_size=128, shuffle=True, random_state=None, verbose=0, device="cpu",
                 **kwargs):
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self._extra_params = dict(kwargs)

    # ---- parameters (Note [Estimator parameters]) ---------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update(self._extra_params)
        return params

    def set_params(self, **params: Any) -> NeuralNetBase:
        extra = {k: v for k, v in params.items()
                 if k.startswith(_EXTRA_PREFIXES) or k in self._extra_params}
        if extra:
            self._extra_params = {**self._extra_params, **extra}
        named = {k: v for k, v in params.items() if k not in extra}
        if named:
            super().set_params(**named)
        return self

    def _prefixed(self, prefix: str) -> dict[str, Any]:
        return {k[len(prefix):]: v for k, v in self._extra_params.items() if k.startswith(prefix)}

    def _where(self, method: str) -> str:
        return f"[{type(self).__name__}.{method}]"

    def _check_params(self, method: str) -> None:
        where = self._where(method)
        for key in self._extra_params:
            if not key.startswith(_EXTRA_PREFIXES) or key in _EXTRA_PREFIXES:
                raise TypeError(f"{where} unexpected parameter {key!r}: extra parameters are "
                                "'module__<name>', 'optimizer__<name>' or 'criterion__<name>'")
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (
                math.isfinite(lr) and lr > 0):
            raise ValueError(f"{where} lr must be a positive finite number, got {lr!r}")
        for name in ("max_epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{where} {name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise TypeError(f"{where} shuffle must be a bool, got {self.shuffle!r}")
        if not isinstance(self.verbose, (numbers.Integral, bool)):
            raise TypeError(f"{where} verbose must be an int, got {self.verbose!r}")
        if self.module is None:
            if self._prefixed("module__"):
                raise TypeError(f"{where} module__ parameters "
                                f"{sorted(self._prefixed('module__'))} need a module; the "
                                "default MLP takes hidden_layer_sizes and activation")
            sizes = self.hidden_layer_sizes
            if isinstance(sizes, numbers.Integral):
                sizes = (sizes,)
            if not isinstance(sizes, (tuple, list)) or not all(
                    isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
                    for s in sizes):
                raise ValueError(f"{where} hidden_layer_sizes must be a tuple of integers "
                                 f">= 1, got {self.hidden_layer_sizes!r}")
            if self.activation not in _ACTIVATIONS:
                raise ValueError(f"{where} activation must be one of {sorted(_ACTIVATIONS)}, "
                                 f"got {self.activation!r}")
        elif isinstance(self.module, nn.Module):
            raise TypeError(
                f"{where} module must be an nn.Module class or a callable returning one, got "
                f"an instance of {type(self.module).__name__}: pass the class (module=Net, "
                "module__width=64) so that every fit and every clone builds fresh parameters")
        elif not callable(self.module):
            raise TypeError(f"{where} module must be an nn.Module class, a callable returning "
                            f"one, or None, got {self.module!r}")
        if self.optimizer is None or isinstance(self.optimizer, optim.Optimizer) or \
                not callable(self.optimizer):
            raise TypeError(f"{where} optimizer must be a deepcore.optim class (or a callable "
                            f"taking (params, lr=...)), got {self.optimizer!r}")
        if isinstance(self.criterion, nn.Module) and self._prefixed("criterion__"):
            raise TypeError(f"{where} criterion__ parameters need a criterion class, not the "
                            f"instance {self.criterion!r}")
        if self.criterion is not None and not callable(self.criterion):
            raise TypeError(f"{where} criterion must be a loss class, a loss instance or None, "
                            f"got {self.criterion!r}")

    # ---- building ---------------------------------------------------------------------------

    # What a subclass provides: how y is validated and encoded, the module's output size, the
    # check of the module's output and the target tensor of a batch.

    def _validate_y_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def _prepare_targets(self, y, method: str, first: bool, **kwargs) -> np.ndarray:
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _build(self, method: str) -> None:
        """module_, criterion_ and optimizer_ from the parameters and the fitted shapes."""
        where = self._where(method)
        if self.module is None:
            sizes = self.hidden_layer_sizes
            sizes = (sizes,) if isinstance(sizes, numbers.Integral) else sizes
            module = default_mlp(int(np.prod(self._sample_shape)), self._n_outputs(), sizes,
                                 self.activation, flatten=len(self._sample_shape) > 1)
        else:
            module = self.module(**self._prefixed("module__"))
            if not isinstance(module, nn.Module):
                raise TypeError(f"{where} module {self.module!r} returned "
                                f"{type(module).__name__}, expected an nn.Module")
        self.module_ = module.to(self.device)
        if isinstance(self.criterion, nn.Module):
            criterion = copy.deepcopy(self.criterion)
        else:
            factory = self._default_criterion if self.criterion is None else self.criterion
            criterion = factory(**self._prefixed("criterion__"))
        self.criterion_ = criterion
        self.optimizer_ = self.optimizer(self.module_.parameters(), lr=self.lr,
                                         **self._prefixed("optimizer__"))
        dtypes = [p.dtype for p in self.module_.parameters() if p.dtype.is_floating_point]
        self._dtype = dtypes[0] if dtypes else _C.get_default_dtype()

    def _initialize(self, method: str) -> None:
        """Fresh generator, fresh module (Note [Seeding])."""
        if self.random_state is None:
            seed = draw_seed()
        else:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self._rng = np.random.default_rng(seed)
        with fork_rng():
            _C.manual_seed(int(self._rng.integers(_SEED_BOUND)))
            self._build(method)
        self.n_iter_ = 0
        self.loss_curve_ = []

    # ---- data ---------------------------------------------------------------------------------

    def _validate_X(self, X, method: str, y="no_validation", reset: bool = False, **kwargs):
        """validate_data (of y too unless y is "no_validation", scikit-learn's marker), plus
        the trailing shape of samples that are not vectors."""
        validate = {"dtype": (np.float32, np.float64), "allow_nd": True, "reset": reset}
        if isinstance(y, str) and y == "no_validation":
            X = validate_data(self, X, **validate)
        else:
            X, y = validate_data(self, X, y, **validate, **kwargs)
        if reset:
            self._sample_shape = tuple(X.shape[1:])
        elif tuple(X.shape[1:]) != self._sample_shape:
            raise ValueError(f"{self._where(method)} X has samples of shape {tuple(X.shape[1:])} "
                             f"but {type(self).__name__} was fitted on samples of shape "
                             f"{self._sample_shape}")
        return X, y

    def _numpy_dtype(self):
        return _NUMPY_DTYPES.get(self._dtype, np.float32)

    def _tensor(self, array: np.ndarray, dtype=None) -> Tensor:
        t = _C.from_numpy(np.ascontiguousarray(array))
        if dtype is not None and t.dtype != dtype:
            t = t.to(dtype)
        if str(self.device) != "cpu":
            t = t.to(self.device)
        return t

    def _check_output(self, out: Tensor, batch: tuple[int, ...], method: str) -> Tensor:
        raise NotImplementedError

    def _target_tensor(self, y: np.ndarray) -> Tensor:
        raise NotImplementedError

    # ---- training -----------------------------------------------------------------------------

    def _train(self, X: np.ndarray, y: np.ndarray, epochs: int, method: str) -> None:
        X = np.asarray(X, dtype=self._numpy_dtype())
        n = X.shape[0]
        batch = min(int(self.batch_size), n)
        module, optimizer, criterion = self.module_, self.optimizer_, self.criterion_
        module.train()
        try:
            with fork_rng():
                for _ in range(epochs):
                    # One seed and one order per epoch, so that k partial_fit calls replay
                    # fit(max_epochs=k) exactly.
                    _C.manual_seed(int(self._rng.integers(_SEED_BOUND)))
                    order = self._rng.permutation(n) if self.shuffle else np.arange(n)
                    total = 0.0
                    for start in range(0, n, batch):
                        rows = order[start:start + batch]
                        xb = self._tensor(X[rows], self._dtype)
                        optimizer.zero_grad()
                        out = self._check_output(module(xb), xb.shape, method)
                        loss = criterion(out, self._target_tensor(y[rows]))
                        if loss.numel() != 1:
                            raise ValueError(
                                f"{self._where(method)} the criterion {criterion!r} returned "
                                f"shape {tuple(loss.shape)}; it must reduce to one value")
                        loss.backward()
                        optimizer.step()
                        total += float(loss.item()) * len(rows)
                    epoch_loss = total / n
                    if not math.isfinite(epoch_loss):
                        raise RuntimeError(
                            f"{self._where(method)} the training loss became {epoch_loss} in "
                            f"epoch {self.n_iter_ + 1} (lr={self.lr}); lower lr or scale X")
                    self.n_iter_ += 1
                    self.loss_curve_.append(epoch_loss)
                    if self.verbose > 0:
                        print(f"{type(self).__name__}: epoch {self.n_iter_}, "
                              f"loss = {epoch_loss:.6f}", flush=True)
        finally:
            module.eval()

    def _fit(self, X, y, method: str, partial: bool, **target_kwargs) -> NeuralNetBase:
        self._check_params(method)
        first = not (partial and hasattr(self, "module_"))
        X, y = self._validate_X(X, method, y, reset=first, **self._validate_y_kwargs())
        y = self._prepare_targets(y, method, first, **target_kwargs)
        if first:
            self._initialize(method)
        self._train(X, y, 1 if partial else int(self.max_epochs), method)
        return self

    def fit(self, X, y) -> NeuralNetBase:
        """Builds a fresh module and trains it for ``max_epochs`` epochs on (X, y)."""
        return self._fit(X, y, "fit", partial=False)

    # ---- prediction ---------------------------------------------------------------------------

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def _forward(self, X, method: str) -> np.ndarray:
        """The module's outputs for X as a NumPy array, computed in fixed-size chunks
        (Note [Fixed-size inference batches])."""
        check_is_fitted(self)
        X, _ = self._validate_X(X, method)
        X = np.asarray(X, dtype=self._numpy_dtype())
        n, chunk = X.shape[0], int(self.batch_size)
        outputs = []
        self.module_.eval()
        with no_grad():
            for start in range(0, n, chunk):
                rows = X[start:start + chunk]
                if rows.shape[0] < chunk:
                    padded = np.zeros((chunk,) + rows.shape[1:], dtype=rows.dtype)
                    padded[:rows.shape[0]] = rows
                    rows_used, rows = rows.shape[0], padded
                else:
                    rows_used = chunk
                xb = self._tensor(rows, self._dtype)
                out = self._check_output(self.module_(xb), xb.shape, method).detach()
                if out.dtype not in _NUMPY_DTYPES:
                    out = out.to(_C.dtype.float32)
                outputs.append(np.array(out.to("cpu").numpy()[:rows_used], copy=True))
        return np.concatenate(outputs, axis=0)

    # ---- pickling -----------------------------------------------------------------------------
    # scikit-learn pickles estimators (joblib workers, check_estimator, deepcopy). Tensors do
    # not pickle, so the fitted module and optimizer travel as their state dicts of arrays and
    # are rebuilt from the parameters on load. Loading a pickle runs code: keep pickles to
    # trusted, in-process use, and save weights to files with deepcore.save(module_.state_dict()).

    def __getstate__(self):
        state = dict(super().__getstate__())
        if "module_" in state:
            state["_module_state"] = _save_tree(dict(state.pop("module_").state_dict()))
            state["_optimizer_state"] = _save_tree(state.pop("optimizer_").state_dict())
            state.pop("criterion_", None)
        return state

    def __setstate__(self, state):
        state = dict(state)
        module_state = state.pop("_module_state", None)
        optimizer_state = state.pop("_optimizer_state", None)
        super().__setstate__(state)
        if module_state is None:
            return
        with fork_rng():  # the fresh initial values are overwritten just below
            self._build("__setstate__")
        self.module_.load_state_dict(_load_tree(module_state))
        self.optimizer_.load_state_dict(_load_tree(optimizer_state))
        self.module_.eval()
