"""End to end with the training stack: an MLP on scikit-learn's digits, and step-for-step
agreement with PyTorch from the same initial weights."""
import numpy as np
import pytest
import torch

import deepcore as dc
from deepcore import nn, optim
from deepcore.utils.data import DataLoader, TensorDataset

sklearn = pytest.importorskip("sklearn")


def _digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    test, train = order[:360], order[360:]
    return x[train], y[train], x[test], y[test]


def _mlp(lib):
    return lib.nn.Sequential(lib.nn.Linear(64, 128), lib.nn.ReLU(), lib.nn.Linear(128, 10))


def test_mlp_on_digits_reaches_97_percent():
    dc.manual_seed(0)
    xtr, ytr, xte, yte = _digits()
    model = _mlp(dc)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(dc.from_numpy(xtr), dc.from_numpy(ytr)), batch_size=64,
                        shuffle=True)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(40):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    model.eval()
    with dc.no_grad():
        acc = (model(dc.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    assert acc >= 0.97


@pytest.mark.parametrize("make_opt", [
    lambda lib, p: lib.optim.Adam(p, lr=1e-3),
    lambda lib, p: lib.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
])
def test_loss_curve_matches_pytorch_step_for_step(make_opt):
    xtr, ytr, _, _ = _digits()
    torch.manual_seed(0)
    tmodel = _mlp(torch)
    model = _mlp(dc)
    model.load_state_dict({k: dc.tensor(v.detach().numpy()) for k, v in
                           tmodel.state_dict().items()})
    topt, opt = make_opt(torch, tmodel.parameters()), make_opt(dc, model.parameters())
    rng = np.random.default_rng(1)
    for step in range(200):
        idx = rng.integers(0, len(xtr), 64)
        xb, yb = xtr[idx], ytr[idx]
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(xb)),
                                                  torch.from_numpy(yb))
        tloss.backward()
        topt.step()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(dc.from_numpy(xb)), dc.from_numpy(yb))
        loss.backward()
        opt.step()
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-4, abs=1e-6), step
