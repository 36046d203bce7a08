"""`deepcore serve`: the KServe v2 HTTP API on real sockets (loopback only), dynamic batching
under concurrency, bad requests, Prometheus metrics and graceful shutdown on SIGTERM.

Two kinds of server: `python -m deepcore serve CHECKPOINT --port 0` in a subprocess (the
command line, signals), and deepcore.serve.create_app run by uvicorn in a background thread
(the Python API with hand-built modules). Every server is stopped in a finally/fixture."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import deepcore as dc
from deepcore import nn

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
prom_parser = pytest.importorskip("prometheus_client.parser")
pytest.importorskip("sklearn")  # `deepcore train` trains on scikit-learn's digits

from deepcore._model_files import TensorSpec, load_model_file  # noqa: E402
from deepcore.serve import create_app  # noqa: E402
from deepcore.serve.app import bind_socket  # noqa: E402
from deepcore.serve.batching import DynamicBatcher  # noqa: E402

ENV = dict(os.environ, OMP_NUM_THREADS="1")
# float32 results of the same weights, batched differently: the summation order may differ.
RTOL, ATOL = 1e-5, 1e-6


# ---- helpers -------------------------------------------------------------------------------------

def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "deepcore", *args], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


class CliServer:
    """`python -m deepcore serve ...` on a free loopback port; the port is read from the line
    the command prints."""

    def __init__(self, model_path, *args, tmp_path):
        self.log = open(tmp_path / f"serve-{os.getpid()}-{time.monotonic_ns()}.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deepcore", "serve", str(model_path), "--host", "127.0.0.1",
             "--port", "0", "--log-level", "info", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=ENV)
        line = self._readline(30)
        assert "deepcore serve:" in line, (line, self.stderr())
        self.url = "http://" + line.rsplit("http://", 1)[1].split("/", 1)[0]
        _wait_ready(self.url, 30)

    def _readline(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError(f"the server printed nothing in {timeout} s: {self.stderr()}")
        return self.proc.stdout.readline()

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.log.close()


def _wait_ready(url, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} was not ready within {timeout} s")


@contextlib.contextmanager
def thread_server(app):
    """Runs ``app`` with uvicorn on a background thread; yields its base URL."""
    import uvicorn
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
        assert not thread.is_alive()


def _request(name, x, datatype="FP32", **extra):
    x = np.asarray(x)
    return {"inputs": [{"name": name, "shape": list(x.shape), "datatype": datatype,
                        "data": x.ravel().tolist()}], **extra}


def _output(resp, i=0):
    out = resp.json()["outputs"][i]
    return np.asarray(out["data"]).reshape(out["shape"])


def _metrics(url):
    """{sample name + sorted labels: value} from /metrics, parsed by prometheus_client."""
    text = httpx.get(url + "/metrics", timeout=10).text
    samples = {}
    for family in prom_parser.text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _concurrent_infer(url, model, inputs, concurrency):
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one(x):
            async with sem:
                return await client.post(f"{url}/v2/models/{model}/infer",
                                         json=_request("input", x))
        return await asyncio.gather(*(one(x) for x in inputs))


# ---- a checkpoint from `deepcore train` ----------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp")
    res = _cli("train", "--model", "mlp", "--epochs", "1", "--out", str(out), "--verbose", "0",
               "--no-tensorboard")
    assert res.returncode == 0, res.stderr
    return out / "checkpoint.safetensors"


@pytest.fixture(scope="module")
def reference(checkpoint):
    module, specs = load_model_file(checkpoint)

    def forward(x):
        with dc.no_grad():
            return module(dc.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    return forward


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    srv = CliServer(checkpoint, "--name", "digits", "--max-batch-size", "16", "--max-delay-ms",
                    "20", "--max-body-mb", "0.25", tmp_path=tmp_path_factory.mktemp("log"))
    try:
        yield srv
    finally:
        srv.stop()


def test_train_checkpoint_rebuilds_the_model(checkpoint):
    module, specs = load_model_file(checkpoint)
    assert specs == (TensorSpec("input", (1, 8, 8), "float32"),)
    state = dc.load(str(checkpoint))
    weights = state["model"]
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), weights[k].numpy())
    assert not module.training


def test_model_file_errors_name_the_file(tmp_path, checkpoint):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_model_file(missing)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="junk.bin.*neither a deepcore checkpoint"):
        load_model_file(junk)
    weights = tmp_path / "weights.safetensors"
    dc.save(nn.Linear(2, 2).state_dict(), str(weights))
    with pytest.raises(ValueError, match="weights.safetensors.*not a checkpoint written by"):
        load_model_file(weights)
    # A training checkpoint from before the spec was recorded: clear advice, no guessing.
    state = dc.load(str(checkpoint))
    old = tmp_path / "old.safetensors"
    dc.save({**state, "callbacks": {}}, str(old))
    with pytest.raises(ValueError, match="old.safetensors.*without a model spec"):
        load_model_file(old)
    # Architectures come from a fixed table: a name in the file is never resolved as code.
    spec = dict(next(iter(state["callbacks"].values()))["model_spec"], model="os.system")
    evil = tmp_path / "evil.safetensors"
    dc.save({**state, "callbacks": {"0": {"model_spec": spec}}}, str(evil))
    with pytest.raises(ValueError, match="unknown model 'os.system'"):
        load_model_file(evil)
    out = _cli("serve", str(junk), "--port", "0", timeout=60)
    assert out.returncode != 0 and "junk.bin" in out.stderr


# ---- the command-line server ---------------------------------------------------------------------

def test_metadata_and_health_endpoints(server):
    url = server.url
    assert httpx.get(url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(url + "/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(url + "/v2").json()
    assert meta["name"] == "deepcore" and meta["version"] == dc.__version__
    model = httpx.get(url + "/v2/models/digits").json()
    assert model["name"] == "digits" and model["platform"] == "deepcore"
    assert model["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert model["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]
    assert httpx.get(url + "/v2/models/digits/ready").json() == {"name": "digits",
                                                                 "ready": True}


def test_infer_flat_and_nested_data_match_the_model(server, reference):
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 8, 8), dtype=np.float32)
    r = httpx.post(server.url + "/v2/models/digits/infer",
                   json=_request("input", x, id="req-7"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "digits" and body["id"] == "req-7"
    assert body["outputs"][0]["name"] == "output" and body["outputs"][0]["datatype"] == "FP32"
    assert body["outputs"][0]["shape"] == [3, 10]
    np.testing.assert_allclose(_output(r), reference(x), rtol=RTOL, atol=ATOL)
    nested = {"inputs": [{"name": "input", "shape": [3, 1, 8, 8], "datatype": "FP32",
                          "data": x.tolist()}], "outputs": [{"name": "output"}]}
    r2 = httpx.post(server.url + "/v2/models/digits/infer", json=nested)
    assert r2.status_code == 200, r2.text
    np.testing.assert_allclose(_output(r2), _output(r), rtol=RTOL, atol=ATOL)


GOOD = {"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}

BAD_BODIES = [
    ("malformed json", b'{"inputs": [', "malformed JSON"),
    ("not an object", b"[1, 2]", "JSON object"),
    ("no inputs", b'{"id": "1"}', "'inputs'"),
    ("unknown input name", {"inputs": [dict(GOOD, name="x")]}, "unknown: ['x']"),
    ("wrong datatype", {"inputs": [dict(GOOD, datatype="INT64")]}, "expected FP32"),
    ("made-up datatype", {"inputs": [dict(GOOD, datatype="FLOAT")]}, "not a protocol"),
    ("wrong shape", {"inputs": [dict(GOOD, shape=[1, 1, 8, 9], data=[0.5] * 72)]},
     "does not match the model's [-1, 1, 8, 8]"),
    ("missing batch dim", {"inputs": [dict(GOOD, shape=[1, 8, 8])]}, "does not match"),
    ("zero batch", {"inputs": [dict(GOOD, shape=[0, 1, 8, 8], data=[])]}, "does not match"),
    ("too few values", {"inputs": [dict(GOOD, data=[0.5] * 63)]}, "holds 63 values"),
    ("strings", {"inputs": [dict(GOOD, data=["a"] * 64)]}, "only numbers"),
    ("booleans for FP32", {"inputs": [dict(GOOD, data=[True] * 64)]}, "not booleans"),
    ("ragged nesting", {"inputs": [dict(GOOD, data=[[0.5] * 63, [0.5]])]}, "rectangular"),
    ("data not a list", {"inputs": [dict(GOOD, data=0.5)]}, "JSON array"),
    ("shape not ints", {"inputs": [dict(GOOD, shape=[1, 1, 8, "8"])]}, "'shape' must"),
    ("unknown output", {"inputs": [GOOD], "outputs": [{"name": "logits"}]},
     "unknown output(s) ['logits']"),
]


@pytest.mark.parametrize("label,body,message", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_requests_get_400_with_a_json_error(server, label, body, message):
    url = server.url + "/v2/models/digits/infer"
    r = (httpx.post(url, content=body) if isinstance(body, bytes)
         else httpx.post(url, json=body))
    assert r.status_code == 400, (label, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert message in r.json()["error"]


def test_unknown_model_path_and_method(server):
    r = httpx.post(server.url + "/v2/models/nope/infer", json={"inputs": [GOOD]})
    assert r.status_code == 404 and "unknown model 'nope'" in r.json()["error"]
    r = httpx.get(server.url + "/v2/models/nope")
    assert r.status_code == 404 and "digits" in r.json()["error"]
    r = httpx.get(server.url + "/nowhere")
    assert r.status_code == 404 and "error" in r.json()
    r = httpx.get(server.url + "/v2/models/digits/infer")
    assert r.status_code == 405 and "error" in r.json()


def test_oversized_bodies_get_413(server):
    url = server.url + "/v2/models/digits/infer"
    big = json.dumps({"inputs": [dict(GOOD, data=[0.5] * 60000)]}).encode()  # > 0.25 MB
    assert len(big) > 0.25 * (1 << 20)
    r = httpx.post(url, content=big)  # judged from Content-Length
    assert r.status_code == 413 and "0.25 MB" in r.json()["error"]

    def chunks():  # no Content-Length: judged while reading
        for i in range(0, len(big), 16384):
            yield big[i:i + 16384]
    r = httpx.post(url, content=chunks())
    assert r.status_code == 413 and "over the 0.25 MB limit" in r.json()["error"]
    assert httpx.get(server.url + "/v2/health/live").status_code == 200


def test_64_concurrent_clients_get_their_own_answers_in_batches(server, reference):
    before = _metrics(server.url)
    rng = np.random.default_rng(1)
    inputs = [rng.random((1, 1, 8, 8), dtype=np.float32) * (i + 1) for i in range(64)]
    responses = asyncio.run(_concurrent_infer(server.url, "digits", inputs, 64))
    for x, r in zip(inputs, responses):
        assert r.status_code == 200, r.text
        # A merged batch takes other GEMM blocks than a lone request: float32 sums in another
        # order, off by a few ulps of the largest logit (inputs are scaled up to 64x here), so
        # a logit near zero is judged against the row's scale.
        want = reference(x)
        np.testing.assert_allclose(_output(r), want, rtol=RTOL,
                                   atol=ATOL * max(1.0, float(np.abs(want).max())))
    after = _metrics(server.url)
    key = "deepcore_serve_batch_requests"
    passes = (_metric(after, key + "_count", model="digits")
              - _metric(before, key + "_count", model="digits"))
    merged = (_metric(after, key + "_sum", model="digits")
              - _metric(before, key + "_sum", model="digits"))
    singles = (_metric(after, key + "_bucket", model="digits", le="1.0")
               - _metric(before, key + "_bucket", model="digits", le="1.0"))
    assert merged == 64 and passes < 64 and singles < passes  # some batches held > 1 request
    size = "deepcore_serve_batch_size"
    assert _metric(after, size + "_bucket", model="digits", le="16.0") == \
        _metric(after, size + "_count", model="digits")  # never over --max-batch-size
    ok = _metric(after, "deepcore_serve_requests_total", endpoint="/v2/models/{name}/infer",
                 method="POST", status="200") - _metric(
        before, "deepcore_serve_requests_total", endpoint="/v2/models/{name}/infer",
        method="POST", status="200")
    assert ok == 64
    assert _metric(after, "deepcore_serve_request_duration_seconds_count",
                   endpoint="/v2/models/{name}/infer") >= 64


def test_metrics_parse_and_count_errors(server):
    httpx.post(server.url + "/v2/models/digits/infer", content=b"{")
    samples = _metrics(server.url)
    assert _metric(samples, "deepcore_serve_requests_total", endpoint="/v2/models/{name}/infer",
                   method="POST", status="400") >= 1
    names = {name for name, _ in samples}
    for family in ("deepcore_serve_request_duration_seconds_bucket",
                   "deepcore_serve_batch_size_bucket",
                   "deepcore_serve_inference_duration_seconds_sum",
                   "deepcore_serve_queue_duration_seconds_count",
                   "deepcore_serve_requests_in_flight"):
        assert family in names


def test_bounded_load(server, reference):
    """400 requests from 16 concurrent clients, all answered correctly within the limit."""
    rng = np.random.default_rng(2)
    inputs = [rng.random((1 + i % 3, 1, 8, 8), dtype=np.float32) for i in range(400)]
    start = time.perf_counter()
    responses = asyncio.run(_concurrent_infer(server.url, "digits", inputs, 16))
    took = time.perf_counter() - start
    assert took < 45, f"400 requests took {took:.1f} s"
    for x, r in zip(inputs, responses):
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(_output(r), reference(x), rtol=RTOL, atol=ATOL)


def test_sigterm_lets_the_request_in_flight_finish(checkpoint, reference, tmp_path):
    # A long batching window holds the request in the server while SIGTERM arrives.
    srv = CliServer(checkpoint, "--max-batch-size", "64", "--max-delay-ms", "1500",
                    tmp_path=tmp_path)
    try:
        x = np.random.default_rng(3).random((2, 1, 8, 8), dtype=np.float32)
        result = {}

        def client():
            result["r"] = httpx.post(srv.url + "/v2/models/checkpoint/infer",
                                     json=_request("input", x), timeout=30)
        t = threading.Thread(target=client)
        t.start()
        deadline = time.monotonic() + 10
        # In flight: the infer request, plus this /metrics request itself.
        while _metric(_metrics(srv.url), "deepcore_serve_requests_in_flight") < 2:
            assert time.monotonic() < deadline, "the request never reached the server"
            time.sleep(0.01)
        srv.proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["r"].status_code == 200, result["r"].text
        np.testing.assert_allclose(_output(result["r"]), reference(x), rtol=RTOL, atol=ATOL)
        rc = srv.proc.wait(20)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert rc in (0, -signal.SIGTERM), (rc, srv.stderr())
        assert "Shutting down" in srv.stderr()
        with pytest.raises(httpx.TransportError):
            httpx.get(srv.url + "/v2/health/live", timeout=2)
    finally:
        srv.stop()


# ---- the Python API: create_app with hand-built modules ------------------------------------------

class TwoInOut(nn.Module):
    """(x float32 (B, 3), k int64 (B, 3)) -> (x * k, k.sum(1)); rejects negative k."""

    def forward(self, x, k):
        if bool((k < 0).any().item()):
            raise ValueError(f"[TwoInOut] k must be >= 0, got shape {tuple(k.shape)}")
        return x * k.to(dc.float32), k.sum(1)


def test_create_app_two_inputs_two_outputs_and_model_errors():
    specs = (TensorSpec("x", (3,), "float32"), TensorSpec("k", (3,), "int64"))
    app = create_app(TwoInOut(), name="two", input_spec=specs, max_batch_size=8,
                     max_delay_ms=30)
    with thread_server(app) as url:
        meta = httpx.get(url + "/v2/models/two").json()
        assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]},
                                  {"name": "k", "datatype": "INT64", "shape": [-1, 3]}]
        assert meta["outputs"] == [{"name": "output_0", "datatype": "FP32", "shape": [-1, 3]},
                                   {"name": "output_1", "datatype": "INT64", "shape": [-1]}]

        def body(i, n=1):
            x = np.arange(3 * n, dtype=np.float32).reshape(n, 3) + i
            k = np.full((n, 3), i, dtype=np.int64)
            return x, k, {"inputs": [
                {"name": "k", "shape": [n, 3], "datatype": "INT64", "data": k.tolist()},
                {"name": "x", "shape": [n, 3], "datatype": "FP32", "data": x.ravel().tolist()}]}

        async def many():
            async with httpx.AsyncClient(timeout=30) as client:
                # request 3 holds a negative id: merged with the others, only it fails
                bodies = [body(i if i != 3 else -1, n=1 + i % 2) for i in range(8)]
                rs = await asyncio.gather(*(client.post(url + "/v2/models/two/infer", json=b)
                                            for _, _, b in bodies))
                return bodies, rs
        bodies, rs = asyncio.run(many())
        for i, ((x, k, _), r) in enumerate(zip(bodies, rs)):
            if i == 3:
                assert r.status_code == 400 and "k must be >= 0" in r.json()["error"]
                continue
            assert r.status_code == 200, r.text
            np.testing.assert_array_equal(_output(r, 0), x * k)
            out1 = r.json()["outputs"][1]
            assert out1["datatype"] == "INT64" and out1["data"] == k.sum(1).tolist()
        # Ask for one output only; ints out of INT64 range and floats for INT64 are refused.
        _, _, b = body(2)
        r = httpx.post(url + "/v2/models/two/infer", json=dict(b, outputs=[{"name": "output_1"}]))
        assert [o["name"] for o in r.json()["outputs"]] == ["output_1"]
        b["inputs"][0]["data"] = [[2 ** 63, 0, 0]]
        r = httpx.post(url + "/v2/models/two/infer", json=b)
        assert r.status_code == 400 and "k" in r.json()["error"]
        b["inputs"][0]["data"] = [[1.5, 0, 0]]
        r = httpx.post(url + "/v2/models/two/infer", json=b)
        assert r.status_code == 400 and "integer values" in r.json()["error"]


class RowSum(nn.Module):
    def forward(self, x):  # (B, L) -> (B,), any L
        return x.sum(1)


def test_dynamic_dims_batch_by_shape_and_batching_off():
    for max_batch in (1, 16):
        app = create_app(RowSum(), name="rowsum", input_spec=TensorSpec("input", (-1,)),
                         max_batch_size=max_batch, max_delay_ms=20)
        with thread_server(app) as url:
            meta = httpx.get(url + "/v2/models/rowsum").json()
            assert meta["inputs"][0]["shape"] == [-1, -1]
            assert meta["outputs"][0]["shape"] == [-1]
            inputs = [np.full((1, 2 + i % 3), float(i), np.float32) for i in range(24)]
            rs = asyncio.run(_concurrent_infer(url, "rowsum", inputs, 24))
            for x, r in zip(inputs, rs):
                assert r.status_code == 200, r.text
                np.testing.assert_allclose(_output(r), x.sum(1), rtol=RTOL)
            samples = _metrics(url)
            reqs = "deepcore_serve_batch_requests"
            n = _metric(samples, reqs + "_count", model="rowsum")
            ones = _metric(samples, reqs + "_bucket", model="rowsum", le="1.0")
            if max_batch == 1:
                assert ones == n == 24
            else:
                assert ones < n  # merged, though only requests of equal length together


def test_create_app_rejects_bad_arguments():
    with pytest.raises(TypeError, match="needs input_spec"):
        create_app(RowSum())
    with pytest.raises(ValueError, match="max_batch_size"):
        create_app(RowSum(), input_spec=(4,), max_batch_size=0)
    with pytest.raises(ValueError, match="dimension 0 of every output"):
        create_app(nn.Flatten(0), input_spec=(4,))
    with pytest.raises(ValueError, match="failed on a zero input"):
        create_app(nn.Linear(3, 2), input_spec=(4,))


def test_batcher_keeps_order_limits_and_isolates_failures():
    calls = []

    def run(arrays):
        calls.append(arrays[0].shape[0])
        if (arrays[0] < 0).any():
            raise ValueError("negative")
        return [arrays[0] * 2]

    # A long window: the batches close because they are full, not because time ran out.
    batcher = DynamicBatcher(run, max_batch_size=4, max_delay_ms=500)

    async def go():
        xs = [np.full((1 + (i % 2), 2), i - (10 if i == 5 else 0), np.float32)
              for i in range(10)]
        outs = await asyncio.gather(*(batcher.submit([x]) for x in xs),
                                    return_exceptions=True)
        return xs, outs
    try:
        xs, outs = asyncio.run(go())
    finally:
        assert batcher.close(10)
    for i, (x, o) in enumerate(zip(xs, outs)):
        if i == 5:
            assert isinstance(o, ValueError)
        else:
            np.testing.assert_array_equal(o[0], x * 2)
    # rows 1,2,1 | 2,1 | 2,1 (holds the bad request: fails, then each runs alone: 2 and 1)
    # | 2,1 | 2 -- in arrival order, never over 4 rows
    assert calls == [4, 3, 3, 2, 1, 3, 2]


# ---- ONNX files ----------------------------------------------------------------------------------

def _onnx_available():
    try:
        from deepcore.onnx import load  # noqa: F401
        return None
    except ImportError as e:
        return str(e)


def test_serve_an_onnx_file(tmp_path):
    reason = _onnx_available()
    if reason is not None:
        pytest.skip(f"deepcore.onnx.load is not importable: {reason}")
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(4)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "w"], ["mm"]),
         helper.make_node("Add", ["mm", "b"], ["pre"]),
         helper.make_node("Relu", ["pre"], ["scores"])],
        "affine_relu",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 5])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / "affine.onnx"
    onnx.save(model, str(path))
    x = rng.standard_normal((4, 5)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"features": x})[0]
    with thread_server(create_app(str(path), max_delay_ms=5)) as url:
        meta = httpx.get(url + "/v2/models/affine").json()
        assert meta["platform"] == "deepcore_onnx"
        assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 5]}]
        assert meta["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 3]}]
        r = httpx.post(url + "/v2/models/affine/infer", json=_request("features", x))
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(_output(r), expected, rtol=RTOL, atol=ATOL)


# ---- a character-level GPT checkpoint ------------------------------------------------------------

def test_serve_a_gpt_checkpoint_as_next_token_logits(tmp_path):
    text = tmp_path / "poem.txt"
    text.write_text("to be or not to be\n" * 30, encoding="utf-8")
    res = _cli("train", "--model", "gpt", "--text", str(text), "--out", str(tmp_path / "run"),
               "--block-size", "8", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
               "--max-iters", "2", "--eval-iters", "1", "--batch-size", "4")
    assert res.returncode == 0, res.stderr
    path = tmp_path / "run" / "checkpoint.safetensors"
    module, (spec,) = load_model_file(path)
    assert (spec.shape, spec.dtype) == ((-1,), "int64")
    vocab = len(sorted(set(text.read_text(encoding="utf-8"))))
    with thread_server(create_app(path, name="poem", max_delay_ms=10)) as url:
        meta = httpx.get(url + "/v2/models/poem").json()
        assert meta["inputs"] == [{"name": "input", "datatype": "INT64", "shape": [-1, -1]}]
        assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, vocab]}]
        rng = np.random.default_rng(5)
        for length in (1, 5, 8):
            ids = rng.integers(0, vocab, (2, length))
            r = httpx.post(url + "/v2/models/poem/infer",
                           json=_request("input", ids, datatype="INT64"))
            assert r.status_code == 200, r.text
            with dc.no_grad():
                logits, _ = module.model(dc.from_numpy(ids))
            np.testing.assert_allclose(_output(r), logits.numpy()[:, -1], rtol=RTOL, atol=ATOL)
        r = httpx.post(url + "/v2/models/poem/infer",
                       json=_request("input", np.zeros((1, 9), np.int64), datatype="INT64"))
        assert r.status_code == 400 and "block size" in r.json()["error"]
        r = httpx.post(url + "/v2/models/poem/infer",
                       json=_request("input", np.full((1, 3), vocab), datatype="INT64"))
        assert r.status_code == 400 and "rejected the input" in r.json()["error"]
        assert httpx.get(url + "/v2/health/ready").status_code == 200
