"""GPU workloads of the CUDA backend, measured with CUDA events (median of the repeats), against
the card's own limits and, where a CUDA build of torch is installed, against torch on the same
card (cuBLAS for the GEMMs, torch's flash attention for SDPA) in the same run.

    python bench/bench_cuda.py            # the installed deepcore, on cuda:0
    python bench/bench_cuda.py --quick    # fewer repeats and smaller sizes
    PYTHONPATH=build/cuda/site python bench/bench_cuda.py   # a CUDA dev build
    python bench/bench_cuda.py --fake     # the fake device: checks the script, measures nothing

The GEMM rows time deepcore's own kernels (preferred_blas_library("deepcore")) against cuBLAS:
through deepcore's cuBLAS path where the nvidia-cublas wheel (or the system's library) is
installed, else through torch. Rows (the targets of the CUDA issue, on an H100):
  bf16 GEMM 4096^3                   >= 80% of cuBLAS
  fp32 GEMM 4096^3 on TF32           >= 70% of cuBLAS (set_float32_matmul_precision("high"))
  fp32 GEMM 4096^3, full precision   informative: the CUDA-core kernel
  add of two 256 MB float32 tensors  >= 85% of the memory bandwidth (3 x 256 MB moved)
  SDPA forward, L = 4096, d = 64     >= 50% of the card's bf16 tensor-core peak
  ResNet-18 training step            <= 1.5x torch's time (small-input stem, batch 128, 32x32)

The memory bandwidth is 2 x memory clock x bus width (double data rate), the tensor-core peak
SMs x clock x dense bf16 FLOP per SM and cycle of the architecture (sm_80: 2048, sm_90: 4096),
from the device attributes. A row whose kernel deepcore lacks says so instead of a figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import deepcore as dc

BF16_FLOP_PER_SM_CYCLE = {80: 2048, 86: 1024, 87: 1024, 89: 1024, 90: 4096}


def torch_cuda():
    """torch when it is a CUDA build with a device, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def device_ms(lib, fn, repeats: int, warmup: int = 2) -> float:
    """Median milliseconds of fn() between two CUDA events of `lib` (deepcore or torch)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = lib.cuda.Event(enable_timing=True), lib.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def card_limits():
    p = dc.cuda.get_device_properties(0)
    bandwidth = 2 * p.memory_clock_rate * 1e3 * p.memory_bus_width / 8  # bytes/s
    per_sm = BF16_FLOP_PER_SM_CYCLE.get(p.major * 10 + p.minor, 0)
    peak_bf16 = p.multi_processor_count * p.clock_rate * 1e3 * per_sm  # FLOP/s
    return p, bandwidth, peak_bf16


def cublas_loaded() -> bool:
    return bool(dc.cuda._BUILT and dc._C._cuda_cublas_where()[0])


def gemm_row(n, dtype_name, precision, torch, repeats):
    """deepcore's own GEMM kernels against cuBLAS: deepcore's cuBLAS path where cuBLAS is
    installed, else torch's matmul (cuBLAS too) where a CUDA torch is."""
    dtype = getattr(dc, dtype_name)
    dc.set_float32_matmul_precision(precision)
    a = dc.randn(n, n).to(dtype).cuda()
    b = dc.randn(n, n).to(dtype).cuda()
    dc.backends.cuda.preferred_blas_library("deepcore")
    ours = device_ms(dc, lambda: a @ b, repeats)
    dc.backends.cuda.preferred_blas_library("cublas")
    flops = 2 * n ** 3
    theirs = None
    if cublas_loaded():
        theirs = device_ms(dc, lambda: a @ b, repeats)
    elif torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = precision != "highest"
        ta = torch.randn(n, n, device="cuda", dtype=getattr(torch, dtype_name))
        tb = torch.randn(n, n, device="cuda", dtype=getattr(torch, dtype_name))
        theirs = device_ms(torch, lambda: ta @ tb, repeats)
    dc.set_float32_matmul_precision("highest")
    return ours, theirs, f"{flops / ours / 1e9:.1f} TFLOP/s"


def add_row(mbytes, bandwidth, torch, repeats):
    n = mbytes * (1 << 20) // 4
    x, y = dc.ones(n, device="cuda"), dc.ones(n, device="cuda")
    ours = device_ms(dc, lambda: x + y, repeats)
    theirs = None
    if torch is not None:
        tx, ty = torch.ones(n, device="cuda"), torch.ones(n, device="cuda")
        theirs = device_ms(torch, lambda: tx + ty, repeats)
    rate = 3 * n * 4 / (ours / 1e3)
    share = f", {100 * rate / bandwidth:.0f}% of {bandwidth / 1e9:.0f} GB/s" if bandwidth else ""
    return ours, theirs, f"{rate / 1e9:.0f} GB/s{share}"


def sdpa_row(L, d, peak, torch, repeats):
    B, H = 4, 16
    F = dc.nn.functional
    for dtype in (dc.bfloat16, dc.float32):  # bf16 first; float32 where no bf16 kernel exists
        q, k, v = (dc.randn(B, H, L, d).to(dtype).cuda() for _ in range(3))
        try:
            ours = device_ms(dc, lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v),
                             repeats)
            break
        except (TypeError, NotImplementedError):
            continue
    else:
        raise NotImplementedError("no cuda kernel for scaled_dot_product_attention")
    theirs = None
    if torch is not None:
        tq, tk, tv = (torch.randn(B, H, L, d, device="cuda", dtype=torch.bfloat16)
                      for _ in range(3))
        TF = torch.nn.functional
        theirs = device_ms(torch, lambda: TF.scaled_dot_product_attention(tq, tk, tv), repeats)
    rate = 4 * B * H * L * L * d / (ours / 1e3)
    share = f", {100 * rate / peak:.0f}% of the bf16 peak" if peak else ""
    return ours, theirs, f"{rate / 1e12:.1f} TFLOP/s in {dtype}{share}"


def resnet_row(batch, torch, repeats):
    import numpy as np
    from bench_cnn import resnet_torch
    from deepcore import models as dm
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y_np = rng.integers(0, 10, batch)
    model = dm.resnet18(small_input=True, num_classes=10).cuda()
    opt = dc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = dc.tensor(x_np).cuda(), dc.tensor(y_np).cuda()

    def step():
        opt.zero_grad()
        dc.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    ours = device_ms(dc, step, repeats)
    theirs = None
    if torch is not None:
        tmodel = resnet_torch().cuda()
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tx, ty = torch.from_numpy(x_np).cuda(), torch.from_numpy(y_np).cuda()

        def tstep():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
            topt.step()

        theirs = device_ms(torch, tstep, repeats)
    return ours, theirs, f"{batch / (ours / 1e3):.0f} images/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    ap.add_argument("--fake", action="store_true",
                    help="run on the fake device (checks the script; the figures mean nothing)")
    args = ap.parse_args()
    if args.fake:
        dc._C._fake_cuda(True)
    elif not dc.cuda.is_available():
        sys.exit("bench_cuda: no CUDA device here (deepcore.cuda.is_available() is False)")
    small = args.quick or args.fake
    repeats = 3 if small else 20
    torch = None if args.fake else torch_cuda()
    props, bandwidth, peak = card_limits()
    print(f"card: {props.name} (sm_{props.major}{props.minor}, {props.multi_processor_count} SMs); "
          f"torch on the card: {torch.__version__ if torch else 'not installed (no CUDA build)'}")
    n = 256 if args.fake else (2048 if args.quick else 4096)
    rows = [
        (f"bf16 GEMM {n}^3", lambda: gemm_row(n, "bfloat16", "highest", torch, repeats)),
        (f"fp32 GEMM {n}^3, TF32", lambda: gemm_row(n, "float32", "high", torch, repeats)),
        (f"fp32 GEMM {n}^3", lambda: gemm_row(n, "float32", "highest", torch, repeats)),
        ("add, 2 x 256 MB float32" if not small else "add, 2 x 16 MB float32",
         lambda: add_row(16 if small else 256, bandwidth, torch, repeats)),
        ("SDPA forward, L=4096, d=64" if not small else "SDPA forward, L=256, d=64",
         lambda: sdpa_row(256 if small else 4096, 64, peak, torch, repeats)),
        ("ResNet-18 training step", lambda: resnet_row(8 if small else 128, torch, repeats)),
    ]
    ref = "cuBLAS (deepcore's path)" if cublas_loaded() else "cuBLAS (torch)"
    print(f"GEMM rows: deepcore's own kernels against {ref}; other rows against torch")
    print("| workload | deepcore | reference | deepcore / reference | rate |")
    print("|---|---|---|---|---|")
    for name, run in rows:
        try:
            ours, theirs, rate = run()
        except (NotImplementedError, TypeError) as e:
            print(f"| {name} | missing: {str(e).splitlines()[0][:90]} | | | |")
            continue
        t = f"{theirs:.3f} ms" if theirs is not None else "-"
        r = f"{ours / theirs:.2f}x" if theirs is not None else "-"
        print(f"| {name} | {ours:.3f} ms | {t} | {r} | {rate} |")


if __name__ == "__main__":
    main()
