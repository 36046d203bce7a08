"""DistributedDataParallel and distributed fit, run as two MPI processes.

Each group of checks starts ``mpirun -np 2`` once on a per-rank script in tests/ddp_scripts/
(module-scoped fixtures) and compares what the ranks wrote with references computed here, in
one process: DDP steps must equal single-process steps on the concatenated batch (float64 to
1e-10, float32 to 1e-5 relative: the two differ only in the order of the loss's sums), the
ranks must agree, metrics must be the all-reduced values, and resumed runs bit-exact.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import deepcore as dc
from deepcore import nn, optim

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "ddp_scripts")
sys.path.insert(0, SCRIPTS)

import _common as C

MPIRUN = shutil.which("mpirun")
if MPIRUN is None:
    pytest.skip("mpirun is not installed (OpenMPI: apt-get install openmpi-bin)",
                allow_module_level=True)
pytest.importorskip("mpi4py", reason="the MPI backend of deepcore.distributed needs mpi4py")

# Loopback only, oversubscribed: the two ranks share whatever cores the machine has.
MPI_FLAGS = ["--oversubscribe", "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo",
             "--mca", "oob_tcp_if_include", "lo"]
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


def mpi_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", DEEPCORE_NUM_THREADS="1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def run_ranks(script: str, *args: str, timeout: float = 90, nproc: int = 2):
    cmd = [MPIRUN, "-np", str(nproc)] + MPI_FLAGS + [sys.executable,
                                                     os.path.join(SCRIPTS, script)] + list(args)
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout,
                              env=mpi_env())
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{script} did not finish within {timeout} s:\n{e.stdout}\n{e.stderr}")
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def assert_close(actual, expected, dtype, what: str):
    np.testing.assert_allclose(actual, expected, err_msg=what, **TOL[dtype])


# ---- in this process: no process group needed ---------------------------------------------------

def test_bucket_assignment_reverse_order_first_bucket_small():
    from deepcore.nn.parallel.distributed import _assign_buckets
    # 4 float32 parameters of 400 KB each, then a float64 one, in registration order
    params = [nn.Parameter(dc.zeros(100_000)) for _ in range(4)]
    params.append(nn.Parameter(dc.zeros(10, dtype=dc.float64)))
    buckets = _assign_buckets(params, cap_bytes=1_000_000, first_cap_bytes=500_000)
    # float32, in reverse order: the first bucket closes at 800 KB >= the 500 KB first cap, the
    # next stays open below the 1 MB cap; the float64 parameter gets a bucket of its own, first
    # because its parameter comes last
    assert buckets == [[4], [3, 2], [1, 0]]
    assert sorted(i for b in buckets for i in b) == list(range(5))


def test_ddp_needs_a_process_group():
    import deepcore.distributed as dist
    from deepcore.nn.parallel import DistributedDataParallel
    from deepcore.train.distributed import wrap_model
    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="nn.Module"):
        DistributedDataParallel(lambda x: x)
    with pytest.raises(RuntimeError, match=r"\[Trainer\] distributed=True"):
        wrap_model(nn.Linear(2, 2), True, "Trainer")
    model = nn.Linear(2, 2)
    assert wrap_model(model, None, "Trainer") == (model, None)  # single process: no wrapper


# ---- single-process references --------------------------------------------------------------

def reference_steps(make, dtype, make_opt, loss_fn, x, y, init):
    model = make().to(dtype)
    C.load_arrays(model, init)
    opt = make_opt(model.parameters())
    for s in range(C.STEPS):
        sl = slice(s * C.GLOBAL_BATCH, (s + 1) * C.GLOBAL_BATCH)
        opt.zero_grad()
        loss_fn(model(dc.from_numpy(x[sl])), dc.from_numpy(y[sl])).backward()
        opt.step()
    return C.state_arrays(model)


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ddp_core"))
    run_ranks("ddp_core.py", out)
    return out


def _check_training(core, case, make, np_dtype, make_opt, x, y):
    (a0, n0), (a1, _) = C.read_results(core, case)
    init0, init1 = C.prefixed(a0, "init"), C.prefixed(a1, "init")
    for k in init0:  # the ranks started from different seeds: rank 0's weights everywhere
        np.testing.assert_array_equal(init0[k], init1[k], err_msg=f"{case} init {k}")
    expected = reference_steps(make, dc.float64 if np_dtype == np.float64 else dc.float32,
                               make_opt, nn.functional.mse_loss, x, y, init0)
    for r, arrays in enumerate((a0, a1)):
        final = C.prefixed(arrays, "final")
        for k, v in expected.items():
            assert_close(final[k], v, np_dtype, f"{case} rank {r} {k}")
    return n0


def test_mlp_float64_matches_single_process(core):
    x, y = C.regression_data(1, C.STEPS * C.GLOBAL_BATCH, (6,), 3, np.float64)
    notes = _check_training(core, "mlp64", C.mlp, np.float64,
                            lambda p: optim.SGD(p, lr=0.05, momentum=0.9), x, y)
    assert notes["buckets"] > 1  # a 1 KB cap splits the MLP into several buckets


def test_mlp_float32_matches_single_process(core):
    x, y = C.regression_data(1, C.STEPS * C.GLOBAL_BATCH, (6,), 3, np.float64)
    notes = _check_training(core, "mlp32", C.mlp, np.float32,
                            lambda p: optim.Adam(p, lr=1e-2), x.astype(np.float32),
                            y.astype(np.float32))
    assert notes["buckets"] == 1


def test_cnn_float32_matches_single_process(core):
    x, y = C.regression_data(2, C.STEPS * C.GLOBAL_BATCH, (2, 8, 8), 5, np.float32)
    notes = _check_training(core, "cnn32", C.cnn, np.float32,
                            lambda p: optim.SGD(p, lr=0.05, momentum=0.9), x, y)
    assert notes["buckets"] > 1


def test_no_sync_accumulates_then_averages(core):
    (a0, _), (a1, _) = C.read_results(core, "nosync")
    model = C.mlp().double()
    C.load_arrays(model, C.prefixed(a0, "init"))
    opt = optim.SGD(model.parameters(), lr=0.05)
    x, y = C.regression_data(3, 5 * 3 * C.GLOBAL_BATCH, (6,), 3, np.float64)
    for s in range(5):
        opt.zero_grad()
        for k in range(3):  # three micro-batches accumulate, as under no_sync
            sl = slice((3 * s + k) * C.GLOBAL_BATCH, (3 * s + k + 1) * C.GLOBAL_BATCH)
            nn.functional.mse_loss(model(dc.from_numpy(x[sl])), dc.from_numpy(y[sl])).backward()
        if s == 0:
            for arrays in (a0, a1):
                assert_close(arrays["grad_after_sync"], model[0].weight.grad.numpy(),
                             np.float64, "accumulated gradient")
        opt.step()
    for r, arrays in enumerate((a0, a1)):
        for k, v in C.state_arrays(model).items():
            assert_close(C.prefixed(arrays, "final")[k], v, np.float64, f"no_sync rank {r} {k}")


def test_find_unused_parameters(core):
    (a0, n0), (a1, n1) = C.read_results(core, "unused")
    model = C.Branchy().double()
    C.load_arrays(model, C.prefixed(a0, "init"))
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = C.regression_data(4, 6 * C.GLOBAL_BATCH, (4,), 2, np.float64)
    half = C.GLOBAL_BATCH // 2
    expected_none = []
    for s in range(6):
        # the average of the ranks' gradients, a rank that did not use a parameter counting 0;
        # a parameter no rank used keeps .grad None
        sums = {n: None for n, _ in model.named_parameters()}
        for r in range(2):
            model.zero_grad()
            lo = s * C.GLOBAL_BATCH + r * half
            out = model(dc.from_numpy(x[lo:lo + half]), C.uses_b(r, s))
            nn.functional.mse_loss(out, dc.from_numpy(y[lo:lo + half])).backward()
            for n, p in model.named_parameters():
                if p.grad is not None:
                    g = p.grad.numpy().copy()
                    sums[n] = g if sums[n] is None else sums[n] + g
        for n, p in model.named_parameters():
            p.grad = None if sums[n] is None else dc.from_numpy(sums[n] / 2)
        expected_none.append([model.b.weight.grad is None, model.c.weight.grad is None])
        opt.step()
    assert n0["grads_none"] == expected_none and n1["grads_none"] == expected_none
    for r, arrays in enumerate((a0, a1)):
        for k, v in C.state_arrays(model).items():
            assert_close(C.prefixed(arrays, "final")[k], v, np.float64, f"unused rank {r} {k}")


def test_unused_parameter_without_the_flag_is_a_clear_error(core):
    for r, (_, notes) in enumerate(C.read_results(core, "unused")):
        msg = notes["error"]
        assert msg is not None, f"rank {r}: backward with unused parameters did not fail"
        assert f"on rank {r}" in msg and "'b.weight' (2, 8)" in msg and "'c.bias' (2,)" in msg
        assert "find_unused_parameters=True" in msg and "'a.weight'" not in msg
        assert notes["after_error_ok"]


def test_buffers_broadcast_from_rank_zero(core):
    (a0, _), (a1, _) = C.read_results(core, "buffers")
    # Each rank's last training forward updated the running stats with its own batch ...
    assert not np.array_equal(a0["on/before"], a1["on/before"])
    # ... and the next forward starts from rank 0's on every rank.
    np.testing.assert_array_equal(a1["on/after"], a0["on/before"])
    np.testing.assert_array_equal(a0["on/after"], a0["on/before"])
    np.testing.assert_array_equal(a0["on/tracked"], a1["on/tracked"])
    # broadcast_buffers=False leaves every rank its own.
    np.testing.assert_array_equal(a1["off/after"], a1["off/before"])
    assert not np.array_equal(a0["off/after"], a1["off/after"])


def test_distributed_sampler_epochs_and_drop_last(core):
    (_, n0), (_, n1) = C.read_results(core, "sampler")
    assert n0["meta/False"] == [0, 2, 6] and n1["meta/False"] == [1, 2, 6]
    assert n0["meta/True"] == [0, 2, 5] and n1["meta/True"] == [1, 2, 5]
    for epoch in ("0", "1"):
        a, b = n0[f"order/False/{epoch}"], n1[f"order/False/{epoch}"]
        assert len(a) == len(b) == 6 and set(a) | set(b) == set(range(11))  # padded by one
        a, b = n0[f"order/True/{epoch}"], n1[f"order/True/{epoch}"]
        assert len(a) == len(b) == 5 and not set(a) & set(b)  # the tail sample dropped
    assert n0["order/False/0"] != n0["order/False/1"]  # set_epoch reshuffles
    # the same seed and epoch give the same split in this process
    from deepcore.utils.data.distributed import DistributedSampler
    ds = list(range(11))
    for r, notes in enumerate((n0, n1)):
        s = DistributedSampler(ds, num_replicas=2, rank=r, seed=5, drop_last=True)
        s.set_epoch(1)
        assert list(s) == notes["order/True/1"]


def test_uneven_dataset_with_drop_last_matches_single_process(core):
    from deepcore.utils.data.distributed import DistributedSampler
    (a0, n0), (a1, n1) = C.read_results(core, "uneven")
    assert n0["steps"] == n1["steps"] == 6  # 5 samples per rank in batches of 2, 2 epochs
    x, y = C.regression_data(6, 11, (6,), 3, np.float64)
    model = C.mlp().double()
    C.load_arrays(model, C.prefixed(a0, "init"))
    opt = optim.SGD(model.parameters(), lr=0.1)
    samplers = [DistributedSampler(range(11), num_replicas=2, rank=r, seed=7, drop_last=True)
                for r in range(2)]
    for epoch in range(2):
        orders = []
        for s in samplers:
            s.set_epoch(epoch)
            orders.append(list(s))
        for lo in range(0, 5, 2):  # equal batch sizes on both ranks: the mean of means is global
            idx = orders[0][lo:lo + 2] + orders[1][lo:lo + 2]
            opt.zero_grad()
            nn.functional.mse_loss(model(dc.from_numpy(x[idx])), dc.from_numpy(y[idx])).backward()
            opt.step()
    for r, arrays in enumerate((a0, a1)):
        for k, v in C.state_arrays(model).items():
            assert_close(C.prefixed(arrays, "final")[k], v, np.float64, f"uneven rank {r} {k}")


# ---- Trainer and keras fit under two ranks ------------------------------------------------------

@pytest.fixture(scope="module")
def fit_trainer(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ddp_trainer"))
    run_ranks("ddp_fit.py", out, "trainer")
    return out


@pytest.fixture(scope="module")
def fit_keras(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ddp_keras"))
    run_ranks("ddp_fit.py", out, "keras")
    return out


def _combined(states_per_rank, epoch: int, index: int) -> float:
    total = sum(float(s[epoch][index]["total"]) for s in states_per_rank)
    count = sum(float(s[epoch][index]["count"]) for s in states_per_rank)
    return total / count


def _check_all_reduced_metrics(out: str, case: str, epochs: int, n_val: int):
    ranks = C.read_results(out, case)
    (a0, n0), (a1, n1) = ranks
    assert n0["history"] == n1["history"]  # every rank saw the same logs
    for e in range(epochs):
        logs = n0["logs"][e]
        train = [n["train_states"] for _, n in ranks]
        val = [n["val_states"] for _, n in ranks]
        for i, name in enumerate(("loss", "accuracy")):
            assert logs[name] == pytest.approx(_combined(train, e, i), rel=1e-12)
            assert logs["val_" + name] == pytest.approx(_combined(val, e, i), rel=1e-12)
            assert n0["history"][name][e] == logs[name]
        # each rank counted only its share: the validation split has no padding
        assert [s[e][1]["count"] for s in val] == [(n_val + 1 - r) // 2 for r in range(2)]
        np.testing.assert_array_equal(a0[f"epoch{e}/0.weight" if case == "trainer"
                                         else f"epoch{e}/0.kernel"],
                                      a1[f"epoch{e}/0.weight" if case == "trainer"
                                         else f"epoch{e}/0.kernel"])
    return n0


def test_trainer_metrics_are_all_reduced(fit_trainer):
    from ddp_fit import EPOCHS, N_TRAIN, N_VAL, net
    notes = _check_all_reduced_metrics(fit_trainer, "trainer", EPOCHS, N_VAL)
    # validation accuracy is per sample: it equals one process evaluating every sample
    (a0, _), _ = C.read_results(fit_trainer, "trainer")
    x, y = C.classification_data(0, N_TRAIN + N_VAL, 5, 3)
    model = net().eval()
    for e in range(EPOCHS):
        C.load_arrays(model, C.prefixed(a0, f"epoch{e}"))
        with dc.no_grad():
            pred = model(dc.from_numpy(x[N_TRAIN:])).numpy().argmax(1)
        assert notes["history"]["val_accuracy"][e] == pytest.approx(
            float((pred == y[N_TRAIN:]).mean()), rel=1e-12)


def test_trainer_splits_and_reshuffles_the_data(fit_trainer):
    from ddp_fit import EPOCHS, N_TRAIN
    (_, n0), (_, n1) = C.read_results(fit_trainer, "trainer")
    per_epoch = N_TRAIN // 2
    orders = [[n["data_order"][e * per_epoch:(e + 1) * per_epoch] for e in range(EPOCHS)]
              for n in (n0, n1)]
    assert len(n0["data_order"]) == len(n1["data_order"]) == EPOCHS * per_epoch
    for e in range(EPOCHS):  # the ranks partition the training set every epoch
        assert sorted(orders[0][e] + orders[1][e]) == list(range(N_TRAIN))
    assert orders[0][0] != orders[0][1] != orders[0][2]  # set_epoch reshuffles each epoch


def test_trainer_writes_from_rank_zero_only(fit_trainer):
    with open(os.path.join(fit_trainer, "trainer_epochs_rank0.txt")) as f:
        assert f.read().split() == ["0", "1", "2"]
    assert not os.path.exists(os.path.join(fit_trainer, "trainer_epochs_rank1.txt"))
    (_, n0), (_, n1) = C.read_results(fit_trainer, "resume")
    assert n0["writes"] == 2 and n1["writes"] == 0  # end of epoch 0, then the interrupt
    assert os.path.exists(os.path.join(fit_trainer, "trainer_ckpt.safetensors"))


def _check_bit_exact_resume(out: str, case: str):
    ranks = C.read_results(out, case)
    finals = []
    for r, (arrays, notes) in enumerate(ranks):
        assert notes["interrupted"], f"rank {r} was not interrupted with rank 0"
        resumed, straight = C.prefixed(arrays, "resumed"), C.prefixed(arrays, "straight")
        assert resumed.keys() == straight.keys() and resumed
        for k in straight:
            np.testing.assert_array_equal(resumed[k], straight[k], err_msg=f"rank {r} {k}")
        finals.append(resumed)
    for k in finals[0]:
        np.testing.assert_array_equal(finals[0][k], finals[1][k], err_msg=f"ranks differ: {k}")
    return ranks


def test_trainer_resume_is_bit_exact_on_every_rank(fit_trainer):
    ranks = _check_bit_exact_resume(fit_trainer, "resume")
    for _, notes in ranks:
        assert notes["resumed_history"] == notes["straight_history"]


def test_keras_fit_metrics_are_all_reduced(fit_keras):
    from ddp_fit import N_TRAIN, N_VAL
    split = int((N_TRAIN + N_VAL) * (1.0 - N_VAL / (N_TRAIN + N_VAL)))
    _check_all_reduced_metrics(fit_keras, "keras", 2, N_TRAIN + N_VAL - split)


def test_keras_fit_writes_from_rank_zero_only(fit_keras):
    assert os.listdir(os.path.join(fit_keras, "tb_rank0"))  # TensorBoard logs of rank 0
    assert not os.path.exists(os.path.join(fit_keras, "tb_rank1"))
    (_, n0), (_, n1) = C.read_results(fit_keras, "keras_resume")
    assert n0["writes"] == 2 and n1["writes"] == 0


def test_keras_fit_resume_is_bit_exact_on_every_rank(fit_keras):
    _check_bit_exact_resume(fit_keras, "keras_resume")


# ---- deepcore train --nproc 2 -----------------------------------------------------------------

def test_train_distributed_runs_the_cli_job_on_two_ranks(tmp_path):
    pytest.importorskip("sklearn")  # the digits dataset
    from deepcore.train.distributed import train_distributed
    out = str(tmp_path / "run")
    argv = ["train", "--model", "mlp", "--epochs", "1", "--out", out, "--verbose", "2",
            "--no-tensorboard"]
    code = """
import sys
from deepcore import cli
from deepcore.train.distributed import train_distributed
args = cli._build_parser().parse_args(sys.argv[1:])
args.nproc = 2
sys.exit(train_distributed(args))
"""

    def run(*extra):
        proc = subprocess.run([sys.executable, "-c", code] + argv + list(extra),
                              check=False, capture_output=True, text=True, timeout=90, env=mpi_env())
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    first = run()
    assert first.count("deepcore train: mlp") == 1  # rank 0 alone prints
    assert first.count("Epoch 1/1") == 1 and "test accuracy" in first
    ckpt = os.path.join(out, "checkpoint.safetensors")
    state = dc.load(ckpt)
    assert len(state["ranks"]) == 2 and state["epoch"] == 1
    assert not any(k.startswith("module.") for k in state["model"])
    second = run("--epochs", "2", "--resume", ckpt)
    assert "Epoch 2/2" in second and "Epoch 1/2" not in second
    with pytest.raises(SystemExit, match="--nproc"):
        train_distributed(argparse.Namespace(nproc=0, model="mlp"))
    with pytest.raises(SystemExit, match="--model gpt"):
        train_distributed(argparse.Namespace(nproc=2, model="gpt"))
