"""deepcore.sklearn: NeuralNetClassifier / NeuralNetRegressor as scikit-learn estimators.

scikit-learn's own estimator checks run one by one (parametrize_with_checks), then the
estimators go through GridSearchCV, Pipeline and cross_val_score on the bundled digits, and
the properties the checks do not cover are tested directly: partial_fit, seeding, clones,
pickling, image-shaped inputs and the errors.
"""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import deepcore as dc
import deepcore.nn.functional as F
from deepcore import nn, optim
from deepcore.sklearn import NeuralNetClassifier, NeuralNetRegressor


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


class Net(nn.Module):
    """A two-layer network whose sizes come in as module__ parameters."""

    def __init__(self, n_in=64, width=32, n_out=10, dropout=0.0):
        super().__init__()
        self.fc1 = nn.Linear(n_in, width)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(width, n_out)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class SmallCNN(nn.Module):
    def __init__(self, channels=8, n_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(channels * 16, n_classes)

    def forward(self, x):
        return self.fc(self.pool(F.relu(self.conv(x))).flatten(1))


def _params(estimator):
    return [p.detach().numpy().copy() for p in estimator.module_.parameters()]


# ---- scikit-learn's estimator checks -----------------------------------------------------------

@parametrize_with_checks([
    NeuralNetClassifier(),
    NeuralNetRegressor(),
    NeuralNetClassifier(hidden_layer_sizes=(16, 16), activation="tanh", optimizer=optim.SGD,
                        optimizer__momentum=0.9, lr=0.05, batch_size=16, max_epochs=20),
    NeuralNetRegressor(hidden_layer_sizes=(32,), optimizer=optim.AdamW, lr=1e-2, batch_size=32,
                       max_epochs=30, shuffle=False),
])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---- model selection on the digits ------------------------------------------------------------

def test_grid_search_pipeline_on_digits(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(StandardScaler(), NeuralNetClassifier(max_epochs=15, random_state=0))
    grid = GridSearchCV(pipe, {"neuralnetclassifier__lr": [1e-3, 1e-2],
                               "neuralnetclassifier__hidden_layer_sizes": [(16,), (64,)]}, cv=3)
    grid.fit(X_train, y_train)
    assert len(grid.cv_results_["params"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    best = grid.best_params_
    assert best["neuralnetclassifier__lr"] in (1e-3, 1e-2)
    fitted = grid.best_estimator_[-1]
    assert fitted.lr == best["neuralnetclassifier__lr"]
    assert fitted.n_iter_ == 15 and len(fitted.loss_curve_) == 15
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    assert grid.score(X_test, y_test) > 0.9


def test_grid_search_over_module_parameters(digits):
    X_train, X_test, y_train, y_test = digits
    est = NeuralNetClassifier(Net, module__n_in=64, module__width=8, lr=1e-2, max_epochs=10,
                              random_state=0)
    assert est.get_params()["module__width"] == 8
    grid = GridSearchCV(make_pipeline(StandardScaler(), est),
                        {"neuralnetclassifier__module__width": [4, 48]}, cv=2).fit(X_train, y_train)
    widths = [p["neuralnetclassifier__module__width"] for p in grid.cv_results_["params"]]
    assert widths == [4, 48]
    assert grid.best_params_ == {"neuralnetclassifier__module__width": 48}
    assert grid.best_estimator_[-1].module_.fc1.out_features == 48
    assert est.get_params()["module__width"] == 8  # the grid changed clones only
    assert grid.score(X_test, y_test) > 0.9


def test_cross_val_score_classifier(digits):
    X_train, _, y_train, _ = digits
    pipe = make_pipeline(StandardScaler(),
                         NeuralNetClassifier(hidden_layer_sizes=(32,), lr=1e-2, max_epochs=10,
                                             random_state=0))
    scores = cross_val_score(pipe, X_train, y_train, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9


# ---- targets ----------------------------------------------------------------------------------

def test_arbitrary_labels_and_probabilities():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    y_idx = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    for labels in (np.array(["cat", "dog", "eel"]), np.array([-5, 10, 1000])):
        y = labels[y_idx]
        clf = NeuralNetClassifier(lr=1e-2, max_epochs=40, random_state=0).fit(X, y)
        np.testing.assert_array_equal(clf.classes_, np.sort(labels))
        pred = clf.predict(X)
        assert pred.dtype == y.dtype and set(pred) <= set(labels)
        assert clf.score(X, y) > 0.9
        proba = clf.predict_proba(X)
        assert proba.shape == (120, 3) and proba.dtype == np.float64
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], pred)
        np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-12)


def test_regressor_on_a_smooth_function():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(400, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    X_train, X_test, y_train, y_test = X[:300], X[300:], y[:300], y[300:]
    reg = NeuralNetRegressor(hidden_layer_sizes=(64,), lr=1e-2, max_epochs=100, batch_size=32,
                             random_state=0).fit(X_train, y_train)
    pred = reg.predict(X_test)
    assert pred.shape == (100,) and pred.dtype == np.float64
    assert reg.score(X_test, y_test) > 0.95
    # Several targets: the module has one output per column, predict keeps the 2-D shape.
    Y = np.stack([y, -2 * y + 1], axis=1)
    multi = NeuralNetRegressor(hidden_layer_sizes=(64,), lr=1e-2, max_epochs=100, batch_size=32,
                               random_state=0).fit(X_train, Y[:300])
    assert multi.n_outputs_ == 2 and multi.predict(X_test).shape == (100, 2)
    assert multi.score(X_test, Y[300:]) > 0.95


def test_regressor_cross_val_score_with_scaled_targets():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((240, 5))
    y = 300.0 * X @ rng.standard_normal(5) + 50.0  # targets far from unit scale
    model = TransformedTargetRegressor(
        regressor=NeuralNetRegressor(hidden_layer_sizes=(32,), lr=1e-2, max_epochs=40,
                                     random_state=0),
        transformer=StandardScaler())
    scores = cross_val_score(model, X, y, cv=3, scoring="r2")
    assert scores.min() > 0.95


# ---- partial_fit ------------------------------------------------------------------------------

def test_partial_fit_replays_fit(digits):
    X_train, X_test, y_train, y_test = digits
    X_train = X_train / 16
    clf = NeuralNetClassifier(Net, module__dropout=0.2, lr=1e-2, random_state=3)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X_train, y_train)
    for k in range(3):
        clf.partial_fit(X_train, y_train, classes=np.arange(10))
        assert clf.n_iter_ == k + 1
    full = NeuralNetClassifier(Net, module__dropout=0.2, lr=1e-2, random_state=3,
                               max_epochs=3).fit(X_train, y_train)
    # Same seeds, same minibatch orders, same dropout masks: bit-identical parameters.
    for a, b in zip(_params(clf), _params(full)):
        np.testing.assert_array_equal(a, b)
    assert clf.loss_curve_ == full.loss_curve_
    # partial_fit after fit continues the same module.
    module = full.module_
    full.partial_fit(X_train, y_train)
    assert full.module_ is module and full.n_iter_ == 4
    assert full.score(X_test / 16, y_test) > 0.8  # 4 epochs of a 32-wide net; chance is 0.1


def test_partial_fit_errors():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = np.array(["a", "b"] * 10)
    clf = NeuralNetClassifier(max_epochs=2).partial_fit(X, y, classes=["a", "b", "c"])
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    assert clf.predict_proba(X).shape == (20, 3)
    with pytest.raises(ValueError, match=r"labels \['z'\] that are not in classes"):
        clf.partial_fit(X, np.array(["z"] * 20))
    with pytest.raises(ValueError, match="differs from the classes of the first call"):
        clf.partial_fit(X, y, classes=["a", "b"])
    with pytest.raises(ValueError, match="X has 2 features"):
        clf.partial_fit(X[:, :2], y)
    reg = NeuralNetRegressor().partial_fit(X, X[:, :2])
    with pytest.raises(ValueError, match=r"y has 1 targets \(shape \(20,\)\) but the regressor "
                                         r"was fitted on 2"):
        reg.partial_fit(X, X[:, 0])


# ---- seeding, clones, pickling ------------------------------------------------------------------

def test_random_state_makes_fits_reproducible():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)

    def fit(**kw):
        return NeuralNetClassifier(Net, module__n_in=6, module__n_out=2, module__dropout=0.3,
                                   max_epochs=5, batch_size=16, **kw).fit(X, y)

    state = dc.get_rng_state().tolist()
    a, b, c = fit(random_state=7), fit(random_state=7), fit(random_state=8)
    assert dc.get_rng_state().tolist() == state  # fitting left the global generator alone
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    # A RandomState instance is advanced by each fit, as in scikit-learn.
    rs = np.random.RandomState(0)
    first, second = fit(random_state=rs), fit(random_state=rs)
    assert first.loss_curve_ != second.loss_curve_
    # random_state=None follows deepcore's global generator.
    dc.manual_seed(11)
    d = fit()
    dc.manual_seed(11)
    e = fit()
    assert d.loss_curve_ == e.loss_curve_
    # The minibatch order is seeded too: shuffle=False differs from shuffled training.
    assert fit(random_state=7, shuffle=False).loss_curve_ != a.loss_curve_


def test_clones_are_independent():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 5))
    y = X @ rng.standard_normal(5)
    reg = NeuralNetRegressor(hidden_layer_sizes=(8,), max_epochs=5, random_state=0).fit(X, y)
    twin = clone(reg)
    assert not hasattr(twin, "module_") and twin.get_params() == reg.get_params()
    with pytest.raises(NotFittedError):
        twin.predict(X)
    before = reg.predict(X)
    twin.fit(X, -y)
    assert not set(map(id, twin.module_.parameters())) & set(map(id, reg.module_.parameters()))
    with dc.no_grad():
        for p in twin.module_.parameters():
            p.zero_()
    np.testing.assert_array_equal(reg.predict(X), before)
    # A fitted estimator copies as a whole: new module, same predictions.
    copied = copy.deepcopy(reg)
    assert copied.module_ is not reg.module_
    np.testing.assert_array_equal(copied.predict(X), before)


def test_pickle_round_trip_continues_training(digits):
    X_train, X_test, y_train, _ = digits
    clf = NeuralNetClassifier(Net, module__dropout=0.1, max_epochs=2, lr=1e-2,
                              random_state=0).fit(X_train / 16, y_train)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X_test / 16),
                                  clf.predict_proba(X_test / 16))
    assert restored.n_iter_ == 2 and restored.loss_curve_ == clf.loss_curve_
    # The optimizer state and the generator travel too: both continue identically.
    clf.partial_fit(X_train / 16, y_train)
    restored.partial_fit(X_train / 16, y_train)
    for a, b in zip(_params(restored), _params(clf)):
        np.testing.assert_array_equal(a, b)


def test_prediction_does_not_depend_on_the_batch(digits):
    # Note [Fixed-size inference batches]: a row predicted alone equals the same row predicted
    # among others, bit for bit, although a lone row takes a different GEMM path.
    X_train, X_test, y_train, _ = digits
    clf = NeuralNetClassifier(max_epochs=2, batch_size=50, random_state=0).fit(X_train / 16,
                                                                              y_train)
    X = X_test[:120] / 16
    full = clf.predict_proba(X)
    for i in (0, 49, 50, 119):
        np.testing.assert_array_equal(clf.predict_proba(X[i:i + 1])[0], full[i])
    np.testing.assert_array_equal(clf.predict_proba(X[::-1]), full[::-1])


# ---- modules, inputs, errors ---------------------------------------------------------------------

def test_image_inputs_with_a_cnn_and_the_default_mlp(digits):
    X_train, X_test, y_train, y_test = digits
    images_train = (X_train / 16).reshape(-1, 1, 8, 8)
    images_test = (X_test / 16).reshape(-1, 1, 8, 8)
    cnn = NeuralNetClassifier(SmallCNN, module__channels=8, lr=1e-2, max_epochs=8, batch_size=64,
                              random_state=0).fit(images_train, y_train)
    assert cnn.n_features_in_ == 1
    assert cnn.score(images_test, y_test) > 0.9
    mlp = NeuralNetClassifier(hidden_layer_sizes=(32,), lr=1e-2, max_epochs=10,
                              random_state=0).fit(images_train, y_train)
    assert isinstance(mlp.module_[0], nn.Flatten)
    assert mlp.score(images_test, y_test) > 0.9
    with pytest.raises(ValueError, match=r"X has samples of shape \(1, 4, 16\) but "
                                         r"NeuralNetClassifier was fitted on samples of shape "
                                         r"\(1, 8, 8\)"):
        mlp.predict(images_test.reshape(-1, 1, 4, 16))


def test_optimizer_and_criterion_parameters():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] > 0).astype(int)
    clf = NeuralNetClassifier(optimizer=optim.SGD, lr=0.1, optimizer__momentum=0.5,
                              criterion=nn.CrossEntropyLoss, criterion__label_smoothing=0.2,
                              max_epochs=3, random_state=0).fit(X, y)
    assert isinstance(clf.optimizer_, optim.SGD)
    assert clf.optimizer_.param_groups[0]["momentum"] == 0.5
    assert clf.optimizer_.param_groups[0]["lr"] == 0.1
    assert clf.criterion_.label_smoothing == 0.2
    clf.set_params(criterion__label_smoothing=0.0, lr=0.2)
    assert clf.get_params()["criterion__label_smoothing"] == 0.0
    clf.fit(X, y)
    assert clf.criterion_.label_smoothing == 0.0 and clf.optimizer_.param_groups[0]["lr"] == 0.2
    # A loss instance is copied, not shared.
    loss = nn.CrossEntropyLoss()
    clf = NeuralNetClassifier(criterion=loss, max_epochs=1).fit(X, y)
    assert clf.criterion_ is not loss and isinstance(clf.criterion_, nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match="Invalid parameter 'momentum'"):
        clf.set_params(momentum=0.9)


def test_verbose_prints_the_epoch_losses(capsys):
    X = np.random.default_rng(0).standard_normal((30, 3))
    NeuralNetRegressor(max_epochs=3, verbose=1, random_state=0).fit(X, X[:, 0])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[2].startswith("NeuralNetRegressor: epoch 3, loss = ")


def test_bad_parameters_and_modules_raise_typed_errors():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = np.arange(20) % 2
    # Constructor keywords are only stored; fit rejects what it cannot use.
    est = NeuralNetClassifier(hidden=3)
    with pytest.raises(TypeError, match=r"\[NeuralNetClassifier.fit\] unexpected parameter "
                                        r"'hidden'"):
        est.fit(X, y)
    cases = [
        ({"lr": -1.0}, ValueError, r"\[NeuralNetClassifier.fit\] lr must be a positive"),
        ({"max_epochs": 0}, ValueError, r"max_epochs must be an integer >= 1, got 0"),
        ({"batch_size": 2.5}, ValueError, r"batch_size must be an integer >= 1, got 2.5"),
        ({"hidden_layer_sizes": (4, 0)}, ValueError, r"hidden_layer_sizes must be a tuple"),
        ({"activation": "gelu"}, ValueError, r"activation must be one of"),
        ({"module": nn.Linear(3, 2)}, TypeError, r"got an instance of Linear: pass the class"),
        ({"module": 3}, TypeError, r"module must be an nn.Module class"),
        ({"module": lambda: "net"}, TypeError, r"returned str, expected an nn.Module"),
        ({"module__width": 3}, TypeError, r"module__ parameters \['width'\] need a module"),
        ({"optimizer": None}, TypeError, r"optimizer must be a deepcore.optim class"),
    ]
    for params, error, message in cases:
        with pytest.raises(error, match=message):
            NeuralNetClassifier(**{"max_epochs": 1, **params}).fit(X, y)
    # A module whose output does not fit the classes names the shapes.
    with pytest.raises(ValueError, match=r"the module returned shape \(20, 5\) for input "
                                         r"\(20, 3\); expected \(20, 2\)"):
        NeuralNetClassifier(Net, module__n_in=3, module__n_out=5, batch_size=32,
                            max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"the module returned shape \(20, 3\) for input "
                                         r"\(20, 3\); expected \(20, 1\)"):
        NeuralNetRegressor(Net, module__n_in=3, module__n_out=3, batch_size=32,
                           max_epochs=1).fit(X, y.astype(float))
    # A criterion that does not reduce, and a diverging fit.
    with pytest.raises(ValueError, match=r"it must reduce to one value"):
        NeuralNetRegressor(criterion=nn.MSELoss, criterion__reduction="none",
                           max_epochs=1).fit(X, y.astype(float))
    with pytest.raises(RuntimeError, match=r"the training loss became (inf|nan) in epoch 1"):
        NeuralNetRegressor(max_epochs=1).fit(X * 1e37, y * 1e37)
