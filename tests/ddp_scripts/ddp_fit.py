"""One rank of tests/test_ddp.py's checks of distributed fit (started by mpirun with two
processes): ``deepcore.train.Trainer`` and ``keras.Model.fit`` under a process group.

    mpirun -np 2 python ddp_fit.py OUT_DIR trainer|keras

- metrics: a callback records each rank's local metric states; the test checks that the logs
  every rank saw are the all-reduced values;
- output from rank 0 only: a ``rank_zero_only`` callback (and keras' TensorBoard) writes files
  named by rank; every call of the checkpoint writer is counted per rank;
- bit-exact resume: a run interrupted mid-epoch (SIGINT on rank 0 only) and resumed from its
  checkpoint ends with the same weights, on every rank, as an uninterrupted run. The ranks
  seed their generators differently (different dropout masks), so each must get its own
  random streams back.
"""
from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import deepcore as dc
import deepcore.distributed as dist
import deepcore.train.loop as loop_mod
import deepcore.train.state as state_mod
from deepcore import nn, optim
from deepcore.train import Trainer
from deepcore.train.callbacks import Callback
from deepcore.utils.data import DataLoader, TensorDataset

import _common as C

N_TRAIN, N_VAL, BATCH, EPOCHS = 48, 20, 6, 3
writes = {"count": 0}


def _counting(save):
    def wrapped(path, state):
        writes["count"] += 1
        return save(path, state)
    return wrapped


# Every checkpoint write goes through deepcore.train.state.save_state.
state_mod.save_state = _counting(state_mod.save_state)
loop_mod.save_state = state_mod.save_state


class Recorder(Callback):
    """Each rank's local metric states at the end of every epoch's training and validation,
    and the logs the callbacks were given."""

    def __init__(self, res, case):
        super().__init__()
        self.res, self.case = res, case
        self.train_states, self.val_states, self.logs = [], [], []
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        self._last = [m.get_state() for m in self.model.metric_objects()]

    def on_test_end(self, logs=None):
        self.val_states.append([m.get_state() for m in self.model.metric_objects()])

    def on_epoch_end(self, epoch, logs=None):
        self.train_states.append(self._last)
        self.logs.append(dict(logs))
        self.res.put_state(self.case, f"epoch{epoch}", self.model.module)

    def on_train_end(self, logs=None):
        self.res.note(self.case, "train_states", self.train_states)
        self.res.note(self.case, "val_states", self.val_states)
        self.res.note(self.case, "logs", self.logs)


class RankFile(Callback):
    """Output-only: writes a file named by its rank at every epoch end."""

    rank_zero_only = True

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path.format(rank=dist.get_rank()), "a") as f:
            f.write(f"{epoch}\n")


class InterruptOnRankZero(Callback):
    """Ctrl-C on rank 0 only, after batch ``at`` of epoch ``epoch``."""

    def __init__(self, epoch, at):
        super().__init__()
        self.epoch, self.at, self.current = epoch, at, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if dist.get_rank() == 0 and self.current == self.epoch and batch == self.at:
            os.kill(os.getpid(), signal.SIGINT)


class Recording(TensorDataset):
    """A TensorDataset that remembers the indices it was asked for (this rank's data order)."""

    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.seen = []

    def __getitem__(self, index):
        self.seen.append(int(index))
        return super().__getitem__(index)


def net():
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))


def trainer_run(rank, *, epochs, checkpoint=None, resume=None, callbacks=()):
    dc.manual_seed(10 + rank)  # different weights and dropout streams on each rank
    model = net()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), metrics=["accuracy"], scheduler=sched)
    x, y = C.classification_data(0, N_TRAIN + N_VAL, 5, 3)
    data = Recording(dc.from_numpy(x[:N_TRAIN]), dc.from_numpy(y[:N_TRAIN]))
    train = DataLoader(data, batch_size=BATCH, shuffle=True)
    val = DataLoader(TensorDataset(dc.from_numpy(x[N_TRAIN:]), dc.from_numpy(y[N_TRAIN:])),
                     batch_size=8)
    trainer.fit(train, epochs=epochs, val_loader=val, callbacks=list(callbacks), verbose=0,
                checkpoint=checkpoint, resume=resume)
    trainer.data_order = data.seen
    return trainer


def trainer_case(res, out, rank):
    rec = Recorder(res, "trainer")
    trainer = trainer_run(rank, epochs=EPOCHS, callbacks=[
        rec, RankFile(os.path.join(out, "trainer_epochs_rank{rank}.txt"))])
    res.note("trainer", "history", trainer.history.history)
    res.note("trainer", "data_order", trainer.data_order)
    res.put_state("trainer", "final", trainer.module)

    ckpt = os.path.join(out, "trainer_ckpt.safetensors")
    writes["count"] = 0
    first = trainer_run(rank, epochs=EPOCHS, checkpoint=ckpt,
                        callbacks=[InterruptOnRankZero(epoch=1, at=2)])
    res.note("resume", "interrupted", bool(first.interrupted))
    res.note("resume", "writes", writes["count"])
    resumed = trainer_run(rank, epochs=EPOCHS, resume=ckpt)
    res.put_state("resume", "resumed", resumed.module)
    res.note("resume", "resumed_history", resumed.history.history)
    straight = trainer_run(rank, epochs=EPOCHS)
    res.put_state("resume", "straight", straight.module)
    res.note("resume", "straight_history", straight.history.history)


def keras_model(rank):
    from deepcore import keras
    dc.manual_seed(20 + rank)
    model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(5,)),
                              keras.layers.Dropout(0.2),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def keras_case(res, out, rank):
    from deepcore import keras
    x, y = C.classification_data(1, N_TRAIN + N_VAL, 5, 3)
    model = keras_model(rank)
    rec = Recorder(res, "keras")
    tb = keras.callbacks.TensorBoard(log_dir=os.path.join(out, f"tb_rank{rank}"))
    hist = model.fit(x, y, batch_size=BATCH, epochs=2, validation_split=N_VAL / (N_TRAIN + N_VAL),
                     callbacks=[rec, tb], verbose=0)
    res.note("keras", "history", hist.history)
    res.put_state("keras", "final", model)

    ckpt = os.path.join(out, "keras_ckpt.safetensors")
    writes["count"] = 0
    model = keras_model(rank)
    model.fit(x, y, batch_size=BATCH, epochs=3, checkpoint=ckpt, verbose=0,
              callbacks=[InterruptOnRankZero(epoch=1, at=3)])
    res.note("keras_resume", "interrupted", bool(model.interrupted))
    res.note("keras_resume", "writes", writes["count"])
    model = keras_model(rank)
    model.fit(x, y, batch_size=BATCH, epochs=3, resume=ckpt, verbose=0)
    res.put_state("keras_resume", "resumed", model)
    model = keras_model(rank)
    model.fit(x, y, batch_size=BATCH, epochs=3, verbose=0)
    res.put_state("keras_resume", "straight", model)


def main() -> None:
    out, which = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    dist.init_process_group("mpi")
    rank = dist.get_rank()
    dc.set_num_threads(1)
    res = C.Results(out, rank)
    if which == "trainer":
        trainer_case(res, out, rank)
    else:
        keras_case(res, out, rank)
    res.write()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
