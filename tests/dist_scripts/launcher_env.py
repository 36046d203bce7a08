"""Prints, as ``ENV {json}``, what ``deepcore run`` gave this rank: the torchrun variables, the
thread count, the arguments and the Python running it."""
import json
import os
import sys

import deepcore as dc
import deepcore.distributed as dist

dist.init_process_group()
info = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                       "OMP_NUM_THREADS")}
info.update(threads=dc.get_num_threads(), rank=dist.get_rank(), argv=sys.argv[1:],
            executable=sys.executable)
print("ENV " + json.dumps(info), flush=True)
dist.destroy_process_group()
