"""One rank of ``deepcore train --nproc N`` (``deepcore.train.distributed.train_distributed``):
joins the process group and runs ``deepcore.cli.train`` with the arguments the launcher passed
as JSON in DEEPCORE_TRAIN_ARGS. Ranks other than 0 print nothing on stdout."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys


def main() -> int:
    from deepcore import cli
    from deepcore import distributed as dist
    from deepcore.train.distributed import ARGS_ENV

    raw = os.environ.get(ARGS_ENV)
    if raw is None:
        raise SystemExit(f"deepcore train: {ARGS_ENV} is not set; start the ranks with "
                         "deepcore train --nproc N")
    fields = json.loads(raw)
    if not isinstance(fields, dict):
        raise SystemExit(f"deepcore train: {ARGS_ENV} must hold a JSON object of arguments")
    args = argparse.Namespace(**fields)
    dist.init_process_group("mpi")
    try:
        with contextlib.ExitStack() as stack:
            if dist.get_rank() != 0:
                sink = stack.enter_context(open(os.devnull, "w"))
                stack.enter_context(contextlib.redirect_stdout(sink))
            cli.train(args)
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
