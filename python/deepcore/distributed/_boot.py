"""What ``deepcore run`` starts on each rank, before the user's script: it sets the variables
torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE) from the MPI launcher's, sets
OMP_NUM_THREADS, then replaces itself with ``python script.py args...`` (or ``python -m
module``), so the script starts exactly as under plain ``python``.

It runs as a file, by path, and imports nothing from deepcore: deepcore must be imported after
OMP_NUM_THREADS is set, by the script itself.

    python _boot.py THREADS [-m] SCRIPT [ARGS...]     THREADS: a number, or "auto"
"""
import os
import sys

# (our name, the variables MPI launchers set, in order of preference: Open MPI, MPICH / Intel
# MPI (Hydra), PMIx, Slurm)
_FROM_LAUNCHER = (
    ("RANK", ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID")),
    ("WORLD_SIZE", ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS")),
    ("LOCAL_RANK", ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID")),
    ("LOCAL_WORLD_SIZE", ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")),
)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def main(argv) -> None:
    if len(argv) < 2:
        sys.exit("deepcore run: the rank bootstrap needs THREADS and a script")
    threads, program = argv[0], argv[1:]
    for name, sources in _FROM_LAUNCHER:
        for var in sources:
            if var in os.environ:
                os.environ[name] = os.environ[var]
                break
    os.environ.setdefault("LOCAL_RANK", os.environ.get("RANK", "0"))
    os.environ.setdefault("LOCAL_WORLD_SIZE", "1")
    if threads == "auto":
        local = max(1, int(os.environ["LOCAL_WORLD_SIZE"]))
        threads = str(max(1, _cores() // local))
    os.environ["OMP_NUM_THREADS"] = threads
    os.execv(sys.executable, [sys.executable] + program)


if __name__ == "__main__":
    main(sys.argv[1:])
