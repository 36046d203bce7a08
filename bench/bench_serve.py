"""`deepcore serve` under load: throughput and p50/p99 latency over HTTP at 1, 8 and 64
concurrent clients with dynamic batching on and off; the server's RSS over many requests; and
the inference engines side by side without HTTP (deepcore eager, the exported ONNX file run by
deepcore.onnx.load, and onnxruntime on the same file).

    python bench/bench_serve.py                       # both models, 128 requests per row
    python bench/bench_serve.py --quick               # 32 requests per row, fewer repeats
    python bench/bench_serve.py --rss-requests 10000  # the long RSS check
    PYTHONPATH=build/dev/site python bench/bench_serve.py   # a dev build (scripts/dev-build.sh)

Models (random weights, seeded; deepcore.models):
  resnet18   ResNet-18 (ImageNet stem, 1000 classes) on 3x64x64 images, FP32
  minilm     a MiniLM-L6-sized BERT encoder (6 layers, 384 wide, 12 heads, FFN 1536) on 32
             token ids (INT64), mean-pooled to a 384-d embedding
The server runs in its own process (`deepcore.serve.run` on a loopback port); the clients are
asyncio tasks in this process, each on its own keep-alive connection, sending its next request
when the previous one is answered. "batching on" merges up to --max-batch-size rows within --max-delay-ms; "off" is
--max-batch-size 1. Latency is request to last byte, as the client sees it. Client and server
share the machine's cores, so compare rows of the same run only.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cnn import _timed  # noqa: E402

MODELS = ("resnet18", "minilm")
IMAGE_SIDE = 64
SEQ_LEN = 32


# ---- the models ---------------------------------------------------------------------------------

def build(name: str):
    """(module, input TensorSpec, example batch maker) for a bench model."""
    import deepcore as dc
    from deepcore import models, nn
    from deepcore.serve import TensorSpec
    dc.manual_seed(0)
    if name == "resnet18":
        module = models.resnet18(num_classes=1000)
        spec = TensorSpec("input", (3, IMAGE_SIDE, IMAGE_SIDE), "float32")

        def example(batch, rng):
            return rng.standard_normal((batch,) + spec.shape).astype(np.float32)
    elif name == "minilm":
        config = models.BertConfig(hidden_size=384, num_hidden_layers=6,
                                   num_attention_heads=12, intermediate_size=1536)

        class MeanPooled(nn.Module):
            """input_ids (B, L) -> the mean of the last hidden states (B, 384)."""

            def __init__(self):
                super().__init__()
                self.bert = models.BertModel(config, add_pooling_layer=False)

            def forward(self, input_ids):
                return self.bert(input_ids).last_hidden_state.mean(1)
        module = MeanPooled()
        spec = TensorSpec("input", (SEQ_LEN,), "int64")

        def example(batch, rng):
            return rng.integers(1, config.vocab_size, (batch, SEQ_LEN)).astype(np.int64)
    else:
        raise ValueError(f"unknown bench model {name!r}; expected one of {MODELS}")
    return module.eval(), spec, example


def serve_child(args) -> None:
    """Runs in a subprocess: serves one bench model until SIGTERM."""
    from deepcore import serve
    module, spec, _ = build(args.serve)
    serve.run(module, name=args.serve, input_spec=spec, host="127.0.0.1", port=0,
              max_batch_size=args.max_batch_size, max_delay_ms=args.max_delay_ms,
              log_level="warning")


# ---- the server process --------------------------------------------------------------------------

class Server:
    def __init__(self, model: str, max_batch_size: int, max_delay_ms: float):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", model, "--max-batch-size",
             str(max_batch_size), "--max-delay-ms", str(max_delay_ms)],
            stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        line = self.proc.stdout.readline() if ready else ""
        if "http://" not in line:
            self.stop()
            raise RuntimeError(f"the {model} server did not start: {line!r}")
        self.url = "http://" + line.rsplit("http://", 1)[1].split("/", 1)[0]

    def rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1]) / 1024.0
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def _payloads(spec, example, n: int, seed: int):
    """n distinct request bodies (one row each), encoded once."""
    rng = np.random.default_rng(seed)
    datatype = {"float32": "FP32", "int64": "INT64"}[spec.dtype]
    out = []
    for _ in range(n):
        x = example(1, rng)
        out.append(json.dumps({"inputs": [{"name": spec.name, "shape": list(x.shape),
                                           "datatype": datatype,
                                           "data": x.ravel().tolist()}]}).encode())
    return out


async def _post(reader, writer, head: bytes, body: bytes):
    """One keep-alive HTTP/1.1 POST on an open connection; returns (status, body)."""
    writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _load(url: str, model: str, payloads, requests: int, concurrency: int):
    """Latencies (s) of ``requests`` requests from ``concurrency`` closed-loop clients, and the
    wall time. Each client holds one keep-alive connection and speaks HTTP/1.1 over asyncio
    streams directly: at 64 connections httpx's pool costs the client process several
    milliseconds per request, which would measure the client, not the server."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    head = (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()
    latencies = []
    counter = iter(range(requests))

    async def worker():
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in counter:
                t0 = time.perf_counter()
                status, body = await _post(reader, writer, head, payloads[i % len(payloads)])
                if status != 200:
                    raise RuntimeError(f"request {i}: HTTP {status}: {body[:200]!r}")
                latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def http_rows(model: str, requests: int, concurrencies, max_batch_size: int,
              max_delay_ms: float):
    _, spec, example = build(model)
    payloads = _payloads(spec, example, 64, seed=1)
    rows = []
    for batching, mbs in (("on", max_batch_size), ("off", 1)):
        server = Server(model, mbs, max_delay_ms)
        try:
            asyncio.run(_load(server.url, model, payloads, 8, 4))  # warm-up
            for c in concurrencies:
                lat, wall = asyncio.run(_load(server.url, model, payloads, requests, c))
                q = np.quantile(lat, [0.5, 0.99])
                rows.append((model, batching, c, requests / wall, q[0], q[1]))
                print(f"{model:<9} {batching:>8} {c:>6} {requests / wall:>10.1f} "
                      f"{q[0] * 1e3:>10.1f} {q[1] * 1e3:>10.1f}", flush=True)
        finally:
            server.stop()
    return rows


def rss_row(model: str, requests: int, max_batch_size: int, max_delay_ms: float) -> None:
    _, spec, example = build(model)
    payloads = _payloads(spec, example, 64, seed=2)
    server = Server(model, max_batch_size, max_delay_ms)
    try:
        warm = max(requests // 10, 16)
        asyncio.run(_load(server.url, model, payloads, warm, 8))
        before = server.rss_mib()
        _, wall = asyncio.run(_load(server.url, model, payloads, requests, 8))
        after = server.rss_mib()
    finally:
        server.stop()
    print(f"RSS of the {model} server over {requests} requests (8 clients, after {warm} "
          f"warm-up requests): {before:.1f} MiB -> {after:.1f} MiB ({after - before:+.1f} MiB, "
          f"{(after - before) * 1048576 / requests:+.0f} bytes/request; {requests / wall:.0f} "
          "req/s)")


# ---- engines side by side ------------------------------------------------------------------------

def engine_rows(model: str, batches, reps: int) -> None:
    import deepcore as dc
    from deepcore import onnx as dc_onnx
    module, spec, example = build(model)
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{model}.onnx")
        engines = {"deepcore eager": None, "deepcore.onnx.load": None, "onnxruntime": None}
        notes = {}

        def eager(x):
            with dc.no_grad():
                return module(dc.from_numpy(x)).numpy()
        engines["deepcore eager"] = eager
        try:
            dc_onnx.export(module, dc.from_numpy(example(1, rng)), path, input_names=["input"],
                           output_names=["output"],
                           dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        except Exception as e:  # noqa: BLE001 -- reported in the table
            notes["deepcore.onnx.load"] = notes["onnxruntime"] = f"export failed: {e}"
        else:
            try:
                loaded = dc_onnx.load(path).eval()

                def from_onnx(x):
                    with dc.no_grad():
                        return loaded(dc.from_numpy(x)).numpy()
                engines["deepcore.onnx.load"] = from_onnx
            except Exception as e:  # noqa: BLE001
                notes["deepcore.onnx.load"] = f"load failed: {e}"
            try:
                import onnxruntime as ort
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = dc.get_num_threads()
                opts.inter_op_num_threads = 1
                # Spinning pool threads would take the cores from the engine timed next.
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                engines["onnxruntime"] = lambda x: sess.run(None, {"input": x})[0]
            except Exception as e:  # noqa: BLE001
                notes["onnxruntime"] = f"onnxruntime failed: {e}"
        for batch in batches:
            x = example(batch, rng)
            ref = eager(x)
            live = {name: fn for name, fn in engines.items() if fn is not None}
            diffs = {name: float(np.max(np.abs(fn(x) - ref))) for name, fn in live.items()}
            samples = {name: [] for name in live}
            for _ in range(reps):  # the engines alternate, so a slow spell hits them alike
                for name, fn in live.items():
                    samples[name].append(_timed(lambda: fn(x)))
            times = {name: statistics.median(v) for name, v in samples.items()}
            base = times["deepcore eager"]
            for name in engines:
                if name in times:
                    t, diff = times[name], diffs[name]
                    print(f"{model:<9} {batch:>5} {name:<20} {t * 1e3:>10.2f} "
                          f"{t / base:>8.2f}x {diff:>10.2e}")
                else:
                    print(f"{model:<9} {batch:>5} {name:<20} {'n/a':>10}  "
                          f"({notes.get(name, '')[:90]})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="32 requests per row, 3 repeats")
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--requests", type=int, default=None, help="requests per HTTP row")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--max-batch-size", type=int, default=32)
    ap.add_argument("--max-delay-ms", type=float, default=2.0)
    ap.add_argument("--rss-requests", type=int, default=None,
                    help="requests for the RSS row (default 500, 100 with --quick; 0 skips)")
    ap.add_argument("--rss-model", choices=MODELS, default="minilm")
    ap.add_argument("--skip-engines", action="store_true")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--serve", choices=MODELS, help=argparse.SUPPRESS)  # the server process
    args = ap.parse_args(argv)
    if args.serve:
        serve_child(args)
        return
    import deepcore as dc
    requests = args.requests or (32 if args.quick else 128)
    reps = 3 if args.quick else 9
    rss = args.rss_requests if args.rss_requests is not None else (100 if args.quick else 500)
    print(f"deepcore {dc.__version__}, {dc.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"batching on = --max-batch-size {args.max_batch_size} --max-delay-ms "
          f"{args.max_delay_ms:g}")
    if not args.skip_engines:
        print("\nInference without HTTP (median ms per call; x: over deepcore eager; max |diff| "
              "from eager)")
        print(f"{'model':<9} {'batch':>5} {'engine':<20} {'ms':>10} {'ratio':>9} "
              f"{'max diff':>10}")
        for model in args.models:
            engine_rows(model, (1, 8), reps)
    if not args.skip_http:
        print(f"\nHTTP, {requests} requests per row (closed-loop clients)")
        print(f"{'model':<9} {'batching':>8} {'conc.':>6} {'req/s':>10} {'p50 ms':>10} "
              f"{'p99 ms':>10}")
        for model in args.models:
            http_rows(model, requests, args.concurrency, args.max_batch_size,
                      args.max_delay_ms)
    if rss > 0:
        print()
        rss_row(args.rss_model, rss, args.max_batch_size, args.max_delay_ms)


if __name__ == "__main__":
    main()
