"""deepcore.train: Keras-style fit for a plain nn.Module."""
import numpy as np
import pytest

import deepcore as dc
from deepcore import keras, nn, optim
from deepcore.datasets import load_digits
from deepcore.train import Trainer, fit
from deepcore.utils.data import DataLoader, TensorDataset


def loaders(batch_size=64, generator=None):
    (xtr, ytr), (xte, yte) = load_digits()
    train = DataLoader(TensorDataset(dc.from_numpy(xtr), dc.from_numpy(ytr)),
                       batch_size=batch_size, shuffle=True, generator=generator)
    test = DataLoader(TensorDataset(dc.from_numpy(xte), dc.from_numpy(yte)), batch_size=256)
    return train, test


def net():
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))


def test_fit_module_with_metrics_callbacks_and_scheduler():
    dc.manual_seed(0)
    model = net()
    train, test = loaders()
    opt = optim.Adam(model.parameters(), lr=3e-3)
    sched = optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    seen = []
    h = fit(model, train, optimizer=opt, loss_fn=nn.CrossEntropyLoss(), epochs=12,
            val_loader=test, metrics=["accuracy"], scheduler=sched, verbose=0,
            callbacks=[keras.callbacks.LambdaCallback(
                on_epoch_end=lambda e, logs: seen.append(logs["val_accuracy"]))])
    assert h.history["val_accuracy"] == seen and seen[-1] >= 0.95
    assert opt.param_groups[0]["lr"] == pytest.approx(3e-3 * 0.25)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_trainer_evaluate_predict_early_stopping():
    dc.manual_seed(1)
    model = net()
    train, test = loaders()
    tr = Trainer(model, optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                 metrics=["accuracy"])
    es = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    h = tr.fit(train, epochs=5, callbacks=[es], verbose=0)
    assert len(h.epoch) == 2  # no epoch can improve by 10
    logs = tr.evaluate(test)
    assert set(logs) == {"loss", "accuracy"}
    pred = tr.predict(test)
    assert pred.shape == (len(test.dataset), 10)
    _, (xte, yte) = load_digits()
    assert np.mean(pred.argmax(1) == yte) == pytest.approx(logs["accuracy"])


def test_trainer_resume_bit_exact_with_dataloader_generator(tmp_path):
    def run(epochs, ck=None, resume=None, seed=0):
        dc.manual_seed(seed)
        model = net()
        train, _ = loaders(generator=dc.Generator().manual_seed(seed + 10))
        opt = optim.Adam(model.parameters(), lr=1e-3)
        sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
        Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched).fit(
            train, epochs=epochs, verbose=0, checkpoint=ck, resume=resume)
        return model, opt
    straight, _ = run(3)
    ck = str(tmp_path / "t.ckpt")
    run(2, ck=ck)
    resumed, opt = run(3, resume=ck, seed=99)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.9 ** 3)


def test_verbose_modes_print(capsys):
    dc.manual_seed(0)
    model = nn.Linear(64, 10)
    train, _ = loaders(batch_size=512)
    fit(model, train, optimizer=optim.SGD(model.parameters(), lr=0.1),
        loss_fn=nn.CrossEntropyLoss(), epochs=2, verbose=2)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and out[0].startswith("Epoch 1/2") and "loss:" in out[0]
    assert "samples/s" in out[1]
    fit(model, train, optimizer=optim.SGD(model.parameters(), lr=0.1),
        loss_fn=nn.CrossEntropyLoss(), epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
