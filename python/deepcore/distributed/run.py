"""``deepcore run``: start a training script on N processes, wired up for deepcore.distributed.

    deepcore run --nproc 4 train.py --epochs 3
    deepcore run --nproc 8 --hostfile hosts.txt train.py        # ranks on several machines
    deepcore run --nproc 2 --threads 4 -m mypackage.train
    python -m deepcore.distributed.run --nproc 2 train.py       # the same, without the CLI

It wraps Open MPI's ``mpirun``, which starts the ranks; each runs the script with this Python
(``sys.executable``) and finds, as under torchrun, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``LOCAL_WORLD_SIZE`` in its environment (deepcore/distributed/_boot.py sets them). Each rank
gets ``OMP_NUM_THREADS`` = the cores of its machine / the ranks on it, unless ``--threads`` or
an ``OMP_NUM_THREADS`` already set says otherwise; so that those threads may use every core,
ranks are not bound to cores (``--bind-to none``; pass your own binding with ``--mpi-args``,
and ``--threads`` with it). Without a hostfile every rank runs here (``--oversubscribe``: more
ranks than cores is allowed). As root, Open MPI's ``OMPI_ALLOW_RUN_AS_ROOT`` variables are set.

Scripts also run under plain ``mpirun -np N python train.py``: init_process_group reads MPI's
own view of the ranks and sets the variables above where they are missing.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

_APT_HINT = "install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev)"
# Forwarded to ranks on other machines (-x); ranks on this machine inherit the environment.
_FORWARD = ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "CONDA_PREFIX")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the ``run`` command to ``deepcore``'s subparsers."""
    p = subparsers.add_parser(
        "run", help="run a script on N processes with MPI (deepcore.distributed)",
        description="Run SCRIPT on N processes with mpirun; each rank finds RANK, WORLD_SIZE, "
                    "LOCAL_RANK and LOCAL_WORLD_SIZE in its environment, as under torchrun.")
    _add_arguments(p)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nproc", "--nproc-per-node", "--nproc_per_node", dest="nproc", type=int,
                   default=1, help="number of processes (ranks) in all (default 1)")
    p.add_argument("--hostfile", default=None,
                   help="Open MPI hostfile listing the machines and their slots")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per rank (default: OMP_NUM_THREADS if set, else the "
                        "machine's cores / its ranks)")
    p.add_argument("--mpirun", default=None, help="the mpirun to use (default: the one on PATH)")
    p.add_argument("--mpi-args", default="",
                   help="more mpirun arguments, as one string (e.g. \"--mca btl self,tcp\")")
    p.add_argument("--dry-run", action="store_true",
                   help="print the mpirun command instead of running it")
    p.add_argument("-m", "--module", action="store_true",
                   help="SCRIPT is a module name, run as python -m SCRIPT")
    p.add_argument("script", help="the Python script (or module, with -m) each rank runs")
    p.add_argument("script_args", nargs=argparse.REMAINDER,
                   help="arguments passed to the script")


def _find_mpirun(given: Optional[str]) -> str:
    path = shutil.which(given or "mpirun")
    if path is None:
        what = f"'{given}'" if given else "mpirun"
        raise SystemExit(f"deepcore run: {what} was not found on PATH; {_APT_HINT}, and pip "
                         "install 'deepcore[distributed]' for mpi4py")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        version = (out.stdout + out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SystemExit(f"deepcore run: cannot run '{path} --version': {e}") from None
    if "Open MPI" not in version and "OpenRTE" not in version:
        first = version.splitlines()[0] if version else "no version output"
        raise SystemExit(f"deepcore run: '{path}' is not Open MPI's mpirun ({first}); deepcore "
                         "run drives Open MPI. With another MPI, start the ranks directly: "
                         "mpiexec -n N python script.py (init_process_group reads MPI's ranks)")
    return path


def build_command(args: argparse.Namespace,
                  environ: Optional[Dict[str, str]] = None) -> Tuple[List[str], Dict[str, str]]:
    """The mpirun command line and its environment for parsed ``deepcore run`` arguments."""
    env = dict(os.environ if environ is None else environ)
    if args.nproc < 1:
        raise SystemExit(f"deepcore run: --nproc must be >= 1, got {args.nproc}")
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"deepcore run: --threads must be >= 1, got {args.threads}")
    if not args.module and not os.path.isfile(args.script):
        raise SystemExit(f"deepcore run: script '{args.script}' does not exist")
    if args.hostfile is not None and not os.path.isfile(args.hostfile):
        raise SystemExit(f"deepcore run: hostfile '{args.hostfile}' does not exist")
    try:
        extra = shlex.split(args.mpi_args)
    except ValueError as e:
        raise SystemExit(f"deepcore run: cannot split --mpi-args {args.mpi_args!r}: {e}") from None
    if args.threads is not None:
        threads = str(args.threads)
    elif env.get("OMP_NUM_THREADS", "").strip():
        threads = env["OMP_NUM_THREADS"].strip()
    else:
        threads = "auto"
    cmd = [_find_mpirun(args.mpirun), "-np", str(args.nproc)]
    if args.hostfile is not None:
        cmd += ["--hostfile", args.hostfile]
        for var in _FORWARD + tuple(sorted(v for v in env if v.startswith("DEEPCORE_"))):
            if var in env:
                cmd += ["-x", var]
    else:
        cmd += ["--oversubscribe"]
    cmd += ["--bind-to", "none", *extra]
    boot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot.py")
    cmd += [sys.executable, boot, threads] + (["-m"] if args.module else [])
    cmd += [args.script, *args.script_args]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Open MPI refuses to start as root unless told twice.
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return cmd, env


def main(args: argparse.Namespace) -> int:
    """Runs the parsed ``deepcore run`` command; returns mpirun's exit status."""
    cmd, env = build_command(args)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    proc = subprocess.Popen(cmd, env=env)
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            continue  # mpirun got the same SIGINT and is ending the ranks; wait for it
    return code if code >= 0 else 128 - code


def _cli(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepcore.distributed.run",
                                     description=__doc__.split("\n\n")[0])
    _add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_cli())
