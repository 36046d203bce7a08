"""The layering of the package and the engine: which layer may use which.

- ``deepcore.train`` (the loop, its callbacks and metrics) sits below ``deepcore.keras``: keras
  builds on it, and train never imports keras.
- nn modules run their forward through ``deepcore.nn.functional``, as torch's do, never
  ``deepcore._C`` directly.
- C++ never imports the deepcore package: Python hands _C what it needs (Note [Python hooks] in
  csrc/python/hooks.h).
"""
import ast
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deepcore as dc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = pathlib.Path(dc.__file__).resolve().parent


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)


# ---- train below keras ---------------------------------------------------------------------

def _imported_modules(path: pathlib.Path, package: str):
    """Absolute names of every module `path` imports (relative imports resolved)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield name
            yield from (f"{name}.{alias.name}" for alias in node.names)


def test_train_never_imports_keras():
    offenders = [f"{path.name} imports {name}"
                 for path in sorted((PACKAGE / "train").glob("*.py"))
                 for name in _imported_modules(path, "deepcore.train")
                 if name == "deepcore.keras" or name.startswith("deepcore.keras.")]
    assert not offenders, offenders


def test_train_runs_with_keras_blocked():
    # A None entry in sys.modules makes any import of deepcore.keras fail.
    result = _run("""
        import sys
        sys.modules["deepcore.keras"] = None
        import numpy as np
        import deepcore as dc
        from deepcore import nn, optim
        from deepcore.train import Trainer
        from deepcore.train.callbacks import Callback
        from deepcore.utils.data import DataLoader, TensorDataset

        class Count(Callback):
            epochs = 0
            def on_epoch_end(self, epoch, logs=None):
                Count.epochs += 1

        dc.manual_seed(0)
        x = np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32)
        y = (x.sum(1, keepdims=True) > 0).astype(np.float32)
        model = nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())
        trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), nn.BCELoss(),
                          metrics=["accuracy"])
        loader = DataLoader(TensorDataset(dc.from_numpy(x), dc.from_numpy(y)), batch_size=8)
        history = trainer.fit(loader, epochs=2, callbacks=[Count()], verbose=0)
        assert Count.epochs == 2 and len(history.history["accuracy"]) == 2, history.history
        assert sys.modules["deepcore.keras"] is None
        print("ok")
    """)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_keras_reexports_the_loop_callbacks_and_metrics():
    from deepcore import keras
    from deepcore.train import callbacks, metrics

    for name in ("Callback", "CallbackList", "History", "get_lr", "set_lr"):
        assert getattr(keras.callbacks, name) is getattr(callbacks, name)
    for name in metrics.__all__:
        assert getattr(keras.metrics, name) is getattr(metrics, name)
    # 'accuracy' follows the keras loss through its accuracy_kind, logits included.
    y_true, y_pred = np.zeros((4, 1)), np.zeros((4, 1))
    acc = metrics.resolve_accuracy(keras.losses.BinaryCrossentropy(from_logits=True), y_true,
                                   y_pred)
    assert isinstance(acc, metrics.BinaryAccuracy) and acc.threshold == 0.0
    acc = metrics.resolve_accuracy(keras.losses.SparseCategoricalCrossentropy(),
                                   np.zeros((4,)), np.zeros((4, 1)))
    assert isinstance(acc, metrics.SparseCategoricalAccuracy)


# ---- nn modules through nn.functional ---------------------------------------------------------

def _direct_engine_calls(path: pathlib.Path):
    """`_C.name` uses in every forward method of `path` and in the functions of the same file it
    calls (module-level functions and self._methods), transitively."""
    tree = ast.parse(path.read_text())
    functions, methods = {}, {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    methods.setdefault(item.name, []).append((node.name, item))
    todo = [(cls, fn) for cls, fn in methods.get("forward", [])]
    seen, found = set(), []
    while todo:
        owner, fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        for node in ast.walk(fn):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "_C"):
                found.append(f"{path.name}:{node.lineno} {owner}.{fn.name} uses _C.{node.attr}")
            elif isinstance(node, ast.Name) and node.id in functions:
                todo.append(("<module>", functions[node.id]))
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "self" and node.attr in methods):
                todo.extend(methods[node.attr])
    return found


def test_nn_module_forwards_go_through_functional():
    paths = sorted((PACKAGE / "nn" / "modules").glob("*.py"))
    assert len(paths) > 10
    offenders = [hit for path in paths for hit in _direct_engine_calls(path)]
    assert not offenders, "\n".join(offenders)


# ---- C++ never imports the package ------------------------------------------------------------

def test_csrc_never_imports_deepcore():
    pattern = re.compile(r'(import\w*|PyImport_\w+)\s*\(\s*"deepcore')
    offenders = [f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
                 for path in sorted((ROOT / "csrc").rglob("*"))
                 if path.suffix in (".cpp", ".h", ".cu", ".cuh")
                 for i, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, offenders


def test_python_hooks_are_required_before_use():
    # The extension alone, without the package that registers the hooks: the conversions that
    # need deepcore.tensor / deepcore.Size say so instead of importing the package.
    so = pathlib.Path(dc._C.__file__)
    result = _run(f"""
        import importlib.machinery, importlib.util
        loader = importlib.machinery.ExtensionFileLoader("_C", {str(so)!r})
        spec = importlib.util.spec_from_loader("_C", loader)
        _C = importlib.util.module_from_spec(spec)
        loader.exec_module(_C)
        t = _C._full([2], 1.0, _C.dtype.float32, False)
        for use in (lambda: t.shape, lambda: _C.Tensor([1.0, 2.0])):
            try:
                use()
            except RuntimeError as err:
                assert "_register_python_hooks" in str(err), err
            else:
                raise AssertionError("expected a RuntimeError")
        print("ok")
    """)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_shape_and_list_conversion_use_the_registered_hooks():
    t = dc.tensor([[1.0, 2.0, 3.0]])
    assert type(t.shape) is dc.Size and t.shape == (1, 3) and t.size() == (1, 3)
    assert dc.Tensor([1.0, 2.0]).tolist() == [1.0, 2.0]
    assert (dc.ones(3) + [1.0, 2.0, 3.0]).tolist() == [2.0, 3.0, 4.0]
    with pytest.raises(TypeError, match="callable"):
        dc._C._register_python_hooks(tensor=None, Size=dc.Size)
