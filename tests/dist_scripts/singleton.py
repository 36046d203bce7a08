"""Started with plain ``python`` (no mpirun): MPI runs one rank, and every API works on it."""
import os

import deepcore as dc
import deepcore.distributed as dist

dist.init_process_group("mpi")
assert dist.get_rank() == 0 and dist.get_world_size() == 1
assert os.environ["RANK"] == "0" and os.environ["WORLD_SIZE"] == "1"
assert os.environ["LOCAL_RANK"] == "0"
t = dc.arange(4, dtype=dc.float32)
dist.all_reduce(t, op=dist.ReduceOp.AVG)
assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
out = [dc.zeros(4)]
dist.all_gather(out, t)
assert out[0].tolist() == t.tolist()
objs = [None]
dist.all_gather_object(objs, "only")
assert objs == ["only"]
dist.barrier()
dist.destroy_process_group()
print("SINGLETON OK", flush=True)
