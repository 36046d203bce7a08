"""deepcore.distributed (torch.distributed's API on MPI) and the ``deepcore run`` launcher.

Most tests start 2 or 3 ranks with ``mpirun --oversubscribe`` on loopback TCP and run one of the
scripts in tests/dist_scripts/, which check their results on every rank and report through
their output and exit status. Every launch has a timeout, and its whole process group is killed
when it passes one, so a hang fails the test instead of the run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import deepcore
import deepcore.distributed as dist
from deepcore.distributed import run as dist_run

MPIRUN = shutil.which("mpirun")
pytestmark = [
    pytest.mark.skipif(MPIRUN is None, reason="mpirun not found: install Open MPI (Debian/Ubuntu:"
                       " apt-get install openmpi-bin libopenmpi-dev)"),
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                       reason="mpi4py not installed (pip install 'deepcore[distributed]')"),
]

SCRIPTS = Path(__file__).parent / "dist_scripts"
SITE = os.path.dirname(os.path.dirname(os.path.abspath(deepcore.__file__)))


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SITE] + [p for p in [env.get("PYTHONPATH")] if p])
    # Loopback only, and no shared-memory transport: the machine may be a container.
    env.update(OMPI_MCA_btl="self,tcp", OMPI_MCA_btl_tcp_if_include="lo",
               OMPI_MCA_oob_tcp_if_include="lo")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    # Each rank's lines must reach mpirun whole: print(..., flush=True) on a buffered stdout
    # writes a line at once, an unbuffered one writes its text and newline separately.
    for var in ("OMP_NUM_THREADS", "DEEPCORE_DISTRIBUTED_CHECKS", "RANK", "WORLD_SIZE",
                "LOCAL_RANK", "LOCAL_WORLD_SIZE", "PYTHONUNBUFFERED"):
        env.pop(var, None)
    env.update(extra)
    return env


def _run(cmd, timeout: float, env=None):
    """Runs ``cmd`` in a session of its own; returns (exit status, output, seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(map(str, cmd))} did not finish within {timeout} s:\n{out}")
    return proc.returncode, out, time.monotonic() - t0


def _mpirun(script: str, *args, np: int = 2, timeout: float = 60):
    cmd = [MPIRUN, "-np", str(np), "--oversubscribe", sys.executable, str(SCRIPTS / script),
           *args]
    return _run(cmd, timeout)


# ---- every collective on 2 and 3 ranks ----------------------------------------------------------

@pytest.mark.parametrize("np_", [2, 3])
def test_collectives_match_numpy(np_):
    code, out, _ = _mpirun("collectives.py", np=np_)
    assert code == 0, out
    for r in range(np_):
        assert re.search(rf"^RANK {r} OK \d+$", out, re.M), out
    assert "FAIL" not in out


@pytest.mark.parametrize("np_", [2, 3])
def test_groups_point_to_point_async_objects(np_):
    code, out, _ = _mpirun("groups_p2p.py", np=np_)
    assert code == 0, out
    for r in range(np_):
        assert re.search(rf"^RANK {r} OK \d+$", out, re.M), out


@pytest.mark.parametrize("np_, backend", [(2, "nccl"), (3, "cpu:gloo,cuda:nccl")])
def test_nccl_collectives(np_, backend):
    # On one GPU per rank when there are enough; on a CPU build, on the fake device with an
    # mpi4py stand-in for NCCL: everything but the NCCL calls (deepcore/distributed/_nccl.py).
    if deepcore._C._build_info()["cuda"] and deepcore.cuda.device_count() < np_:
        pytest.skip(f"{np_} ranks need {np_} CUDA devices (the fake device needs a CPU build)")
    code, out, _ = _mpirun("nccl_collectives.py", backend, np=np_, timeout=120)
    assert code == 0, out
    for r in range(np_):
        assert re.search(rf"^RANK {r} OK \d+$", out, re.M), out
    assert "FAIL" not in out


def test_single_process_without_mpirun():
    code, out, _ = _run([sys.executable, str(SCRIPTS / "singleton.py")], timeout=60)
    assert code == 0 and "SINGLETON OK" in out, out


# ---- failures -----------------------------------------------------------------------------------

def test_exception_on_one_rank_ends_every_rank():
    # Rank 0 waits in all_reduce with a 2 s group timeout; rank 1's exception must end the job
    # first, with rank 1's traceback.
    code, out, secs = _mpirun("failures.py", "exception", timeout=60)
    assert code != 0, out
    assert "[rank1]: Traceback (most recent call last):" in out, out
    assert "[rank1]: ValueError: boom on rank 1" in out, out
    assert "rank 0 passed" not in out and "timed out" not in out, out
    assert secs < 20, f"took {secs:.1f} s\n{out}"


def test_timeout_uncaught_ends_every_rank():
    # Rank 1 sleeps 60 s and never joins; rank 0's Work.wait(timeout=1 s) raises, uncaught.
    code, out, secs = _mpirun("failures.py", "timeout_uncaught", timeout=60)
    assert code != 0, out
    assert "[rank0]: deepcore.distributed.DistTimeoutError: [all_reduce] rank 0: timed out " \
           "after 1 s in all_reduce" in out, out
    assert secs < 20, f"took {secs:.1f} s: rank 1 was not ended\n{out}"


def test_timeout_raises_on_every_rank():
    code, out, secs = _mpirun("failures.py", "timeout_caught", timeout=60)
    m0 = re.search(r"^rank 0 caught after ([\d.]+) s: (.*)$", out, re.M)
    m1 = re.search(r"^rank 1 caught after ([\d.]+) s: (.*)$", out, re.M)
    assert m0 and m1, out
    assert "[all_reduce] rank 0: timed out after 2 s in all_reduce #2 on group WORLD" in m0[2]
    # Rank 1 waited on a message with a 60 s timeout: rank 0's notice stopped it.
    assert "[irecv] rank 1:" in m1[2] and "rank 0 reported: timed out after 2 s in " \
           "all_reduce #2" in m1[2], out
    assert 1.5 < float(m0[1]) < 10 and float(m1[1]) < 15, out
    # Afterwards the group refuses work on both ranks, and the job ends.
    assert re.search(r"^rank 0 then: \[barrier\] rank 0: the process group is unusable", out,
                     re.M), out
    assert re.search(r"^rank 1 then: \[barrier\] rank 1: the process group is unusable", out,
                     re.M), out
    assert code != 0 and secs < 30, out


def test_rank_that_exits_stops_the_others():
    # Rank 1 calls sys.exit(3) while rank 0 waits in all_reduce with a 60 s timeout: rank 0
    # learns that rank 1 ended and raises after the grace period instead.
    code, out, secs = _mpirun("failures.py", "exit", timeout=60)
    m = re.search(r"^rank 0 caught after ([\d.]+) s: (.*)$", out, re.M)
    assert m, out
    # (Had rank 0 been slower than rank 1's 1 s sleep, it would have been told at once that
    # rank 1 "has ended": both name the rank.)
    assert m[2].startswith(("[all_reduce] rank 0: rank 1 ended (its program exited, or it "
                            "destroyed its process groups) while all_reduce #2 on group WORLD "
                            "(float32 (4,)) waited for it",
                            "[all_reduce] rank 0: rank 1 has ended")), out
    assert float(m[1]) < 20 and code != 0 and secs < 40, out


def test_mismatched_collectives_raise_on_every_rank():
    code, out, _ = _mpirun("failures.py", "mismatch", timeout=60)
    assert code == 0, out
    for r in (0, 1):
        assert f"rank {r} shape: [all_reduce] rank {r}: the ranks of group WORLD passed " \
               "different tensors to all_reduce #2: rank 0: float32 (4,); rank 1: float32 (5,)" \
               in out, out
        assert f"rank {r} dtype: [all_reduce] rank {r}:" in out and \
               "rank 0: float32 (2, 3); rank 1: float64 (2, 3)" in out, out
        assert f"rank {r} collective: " in out and \
               "called different collectives: rank 0: broadcast #4; rank 1: all_reduce #4" in out
        assert f"rank {r} root: " in out and f"rank {r} op: " in out, out
        assert "rank 0: ReduceOp.SUM; rank 1: ReduceOp.MAX" in out
        assert f"rank {r} gather shape: " in out
        assert f"rank {r} reduce_scatter lists: [reduce_scatter] rank {r}: the ranks of group " \
               "WORLD passed different input_list shapes to reduce_scatter #8" in out, out
        assert f"RANK {r} OK" in out, out
    assert "FAIL" not in out


# ---- the launcher -------------------------------------------------------------------------------

ENV_SCRIPT = SCRIPTS / "launcher_env.py"


def _launch_env(extra_args=(), **env):
    cmd = [sys.executable, "-m", "deepcore.distributed.run", "--nproc", "2", *extra_args,
           str(ENV_SCRIPT), "a", "--flag", "3"]
    code, out, _ = _run(cmd, timeout=60, env=_env(**env))
    assert code == 0, out
    ranks = [json.loads(m) for m in re.findall(r"^ENV (\{.*\})$", out, re.M)]
    assert sorted(r["RANK"] for r in ranks) == ["0", "1"], out
    return ranks


def test_launcher_sets_rank_variables_and_threads():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    want = str(max(1, cores // 2))
    for r in _launch_env():
        assert r["WORLD_SIZE"] == "2" and r["LOCAL_WORLD_SIZE"] == "2", r
        assert r["LOCAL_RANK"] == r["RANK"] and r["rank"] == int(r["RANK"]), r
        assert r["OMP_NUM_THREADS"] == want and r["threads"] == int(want), r
        assert r["argv"] == ["a", "--flag", "3"] and r["executable"] == sys.executable, r


@pytest.mark.parametrize("how", ["--threads", "OMP_NUM_THREADS"])
def test_launcher_threads_as_told(how):
    ranks = (_launch_env(["--threads", "3"]) if how == "--threads"
             else _launch_env(OMP_NUM_THREADS="3"))
    assert all(r["OMP_NUM_THREADS"] == "3" and r["threads"] == 3 for r in ranks), ranks


def test_launcher_command_line(tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text("")
    assert dist_run._cli(["--nproc", "4", "--dry-run", str(script), "--lr", "0.1"]) == 0
    cmd = capsys.readouterr().out.split()
    assert cmd[1:5] == ["-np", "4", "--oversubscribe", "--bind-to"], cmd
    assert cmd[-6:] == [sys.executable, str(Path(dist_run.__file__).parent / "_boot.py"),
                        "auto", str(script), "--lr", "0.1"], cmd
    # The same through a `deepcore run` subcommand, as cli.py wires it.
    top = argparse.ArgumentParser(prog="deepcore")
    dist_run.add_parser(top.add_subparsers(dest="command"))
    args = top.parse_args(["run", "--nproc", "4", "--dry-run", str(script), "--lr", "0.1"])
    assert args.command == "run" and dist_run.main(args) == 0
    assert capsys.readouterr().out.split() == cmd
    hosts = tmp_path / "hosts"
    hosts.write_text("localhost slots=2\n")
    parser = argparse.ArgumentParser()
    dist_run._add_arguments(parser)
    args = parser.parse_args(["--nproc", "2", "--hostfile", str(hosts), "--threads", "2",
                              "--mpi-args", "--mca btl self,tcp", "-m", "pkg.train", "x"])
    cmd, env = dist_run.build_command(args, {"PATH": "/bin", "DEEPCORE_CPU_ISA": "avx2"})
    assert cmd[3:5] == ["--hostfile", str(hosts)] and "--oversubscribe" not in cmd, cmd
    # Ranks on other machines get the environment they need to find Python and deepcore.
    assert cmd[5:9] == ["-x", "PATH", "-x", "DEEPCORE_CPU_ISA"], cmd
    assert cmd[cmd.index(sys.executable) + 2:] == ["2", "-m", "pkg.train", "x"], cmd
    assert cmd[cmd.index("--mca"):cmd.index("--mca") + 3] == ["--mca", "btl", "self,tcp"], cmd
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    assert (env.get("OMPI_ALLOW_RUN_AS_ROOT") == "1") == root, env


@pytest.mark.parametrize("argv, message", [
    (["--nproc", "0", "{script}"], "--nproc must be >= 1"),
    (["--nproc", "2", "--threads", "0", "{script}"], "--threads must be >= 1"),
    (["--nproc", "2", "missing_script.py"], "script 'missing_script.py' does not exist"),
    (["--nproc", "2", "--hostfile", "no_hostfile", "{script}"], "hostfile 'no_hostfile'"),
    (["--mpirun", "no-such-mpirun", "{script}"], "'no-such-mpirun' was not found on PATH"),
])
def test_launcher_errors(tmp_path, argv, message):
    script = tmp_path / "s.py"
    script.write_text("")
    with pytest.raises(SystemExit, match=re.escape(message)):
        dist_run._cli([a.format(script=script) for a in argv] + ["--dry-run"])


# ---- the API without MPI ------------------------------------------------------------------------

def test_api_before_init_and_bad_arguments():
    assert not dist.is_initialized() and dist.is_available() and dist.is_mpi_available()
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier, dist.destroy_process_group):
        with pytest.raises(RuntimeError, match="has not been initialized"):
            fn()
    with pytest.raises(RuntimeError, match=r"\[all_reduce\] the default process group"):
        dist.all_reduce(deepcore.ones(2))
    with pytest.raises(ValueError, match="unknown backend 'ucc'"):
        dist.init_process_group("ucc")
    with pytest.raises(ValueError, match="unknown backend 'cpu:gloo,cuda:gloo'"):
        dist.init_process_group("cpu:gloo,cuda:gloo")
    with pytest.raises(ValueError, match="meets its peers through mpirun"):
        dist.init_process_group("mpi", init_method="tcp://127.0.0.1:23456")
    with pytest.raises(ValueError, match="timeout must be positive"):
        dist.init_process_group("mpi", timeout=-1)
    with pytest.raises(TypeError, match=r"timeout must be a datetime\.timedelta"):
        dist.init_process_group("mpi", timeout="30m")
    assert dist.Backend("GLOO") == "gloo" and dist.Backend.MPI == "mpi"
    assert {op.name for op in dist.ReduceOp} >= {"SUM", "AVG", "MAX", "MIN", "PRODUCT"}
    assert issubclass(dist.DistTimeoutError, TimeoutError)
    assert issubclass(dist.DistMismatchError, ValueError)
    assert issubclass(dist.DistTimeoutError, RuntimeError)


def test_nccl_without_a_gpu(monkeypatch, tmp_path):
    from deepcore.distributed import _nccl
    built = deepcore._C._build_info()["cuda"]
    for backend in ("nccl", "cuda", "cpu:gloo,cuda:nccl"):
        if not built:
            expected = "deepcore was built without CUDA"
        elif deepcore.cuda.device_count() == 0:
            expected = "no CUDA device"
        else:
            pytest.skip("a CUDA device is here: tests/dist_scripts/nccl_collectives.py covers it")
        with pytest.raises(RuntimeError, match=rf"\[init_process_group\] backend "
                           rf"'{re.escape(backend)}': {expected}"):
            dist.init_process_group(backend)
    assert dist.is_nccl_available() == bool(built and _nccl.library()[0])
    assert not dist.is_initialized()
    if not built:  # the fake device stands in for NCCL too
        deepcore._C._fake_cuda(True)
        try:
            assert dist.is_nccl_available()
        finally:
            deepcore._C._fake_cuda(False)
    # Where libnccl.so.2 is looked for: $DEEPCORE_NCCL first, then the wheel's copy.
    lib = tmp_path / "libnccl.so.2"
    monkeypatch.setenv("DEEPCORE_NCCL", str(lib))
    assert _nccl.search_paths()[0] == str(lib)
    monkeypatch.delenv("DEEPCORE_NCCL")
    wheel = tmp_path / "nvidia" / "nccl" / "lib"
    wheel.mkdir(parents=True)
    (wheel / "libnccl.so.2").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "nvidia", argparse.Namespace(__path__=[str(tmp_path /
                                                                             "nvidia")]))
    assert _nccl.search_paths() == [str(wheel / "libnccl.so.2")]


def test_nccl_tables():
    from deepcore.distributed import _nccl
    ReduceOp = dist.ReduceOp
    f32, b16, i64, flag = (_nccl.DTYPES[d] for d in (deepcore.float32, deepcore.bfloat16,
                                                     deepcore.int64, deepcore.bool))
    # ncclRedOp_t values (nccl.h): sum 0, prod 1, max 2, min 3, avg 4.
    assert [_nccl.reduce_op("t", op, f32) for op in (ReduceOp.SUM, ReduceOp.PRODUCT,
            ReduceOp.MAX, ReduceOp.MIN, ReduceOp.AVG)] == [0, 1, 2, 3, 4]
    assert _nccl.reduce_op("t", ReduceOp.AVG, b16) == 4
    # bool travels as uint8: "or" is max, "and" is min.
    assert [_nccl.reduce_op("t", op, flag) for op in (ReduceOp.SUM, ReduceOp.BOR, ReduceOp.MAX,
            ReduceOp.PRODUCT, ReduceOp.BAND, ReduceOp.MIN)] == [2, 2, 2, 3, 3, 3]
    for op, info in ((ReduceOp.AVG, i64), (ReduceOp.BAND, i64), (ReduceOp.BXOR, flag),
                     (ReduceOp.AVG, flag), ("sum", f32)):
        with pytest.raises(TypeError, match=r"^\[t\] "):
            _nccl.reduce_op("t", op, info)
    with pytest.raises(NotImplementedError):
        _nccl.reduce_op("t", ReduceOp.PREMUL_SUM, f32)
    # Check codes (Note [Collective checks]) apart from the MPI backend's.
    from deepcore.distributed import _mpi
    codes = [d.code for d in _nccl.DTYPES.values()]
    assert len(set(codes)) == len(codes) and not set(codes) & {d.code for d in
                                                              _mpi.DTYPES.values()}


def test_import_does_not_load_mpi():
    code, out, _ = _run([sys.executable, "-c", "import sys, deepcore.distributed.run; "
                         "print('mpi4py.MPI' in sys.modules)"], timeout=60)
    assert code == 0 and out.strip() == "False", out
