"""Why 16-bit convolutions run Winograd in float32: the error of Winograd F(2x2, 3x3) on
bfloat16 inputs when its transformed operands are kept in float32 (what deepcore does) and
when they are rounded to bfloat16 (what a bf16 GEMM on them would need), next to torch's
bfloat16 convolution. Errors against a float64 convolution of the same bfloat16 values, in
bfloat16 ulps of each output element and relative to the output's largest magnitude.

    python bench/winograd_bf16_error.py
"""
import ml_dtypes
import numpy as np
import torch

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)


def bf16(a):
    return a.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)


def winograd(x, w, round_operands):
    n, c, h, _ = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    u = np.einsum("ai,kcij,bj->kcab", G, w, G)
    u = bf16(u) if round_operands else u.astype(np.float32).astype(np.float64)
    y = np.zeros((n, w.shape[0], h, h))
    for ti in range(h // 2):
        for tj in range(h // 2):
            v = np.einsum("ar,ncrs,bs->ncab", BT, xp[:, :, 2 * ti:2 * ti + 4, 2 * tj:2 * tj + 4], BT)
            v = bf16(v) if round_operands else v.astype(np.float32).astype(np.float64)
            m = np.einsum("kcab,ncab->nkab", u, v)
            y[:, :, 2 * ti:2 * ti + 2, 2 * tj:2 * tj + 2] = np.einsum("ia,nkab,jb->nkij", AT, m, AT)
    return bf16(y)


def report(name, out, ref):
    ulp = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(ref), 1e-30))) - 7)
    e = np.abs(out - ref) / ulp
    print(f"| {name} | {e.mean():.2f} | {np.percentile(e, 99):.2f} | "
          f"{np.abs(out - ref).max() / np.abs(ref).max():.1e} |")


def main():
    rng = np.random.default_rng(0)
    x = bf16(rng.standard_normal((2, 128, 8, 8)))
    w = bf16(rng.standard_normal((128, 128, 3, 3)) * 0.05)
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
    tb = torch.nn.functional.conv2d(torch.tensor(x).bfloat16(), torch.tensor(w).bfloat16(),
                                    padding=1).double().numpy()
    print("128 -> 128 channels, 3x3, 8x8, batch 2, bfloat16 inputs")
    print("| computed by | mean ulps | 99th percentile ulps | max error / max output |")
    print("|---|---:|---:|---:|")
    report("torch bfloat16 conv2d", tb, ref)
    report("Winograd, float32 operands", winograd(x, w, False), ref)
    report("Winograd, bfloat16 operands", winograd(x, w, True), ref)


if __name__ == "__main__":
    main()
