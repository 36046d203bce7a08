"""The HTTP server: a Starlette (ASGI) app speaking the KServe v2 / Open Inference Protocol
JSON API, run by uvicorn.

    GET  /v2                          server metadata
    GET  /v2/health/live              200 while the process serves
    GET  /v2/health/ready             200 once the model is loaded and the batcher runs
    GET  /v2/models/{name}            model metadata: platform, inputs, outputs (-1: any size)
    GET  /v2/models/{name}/ready      200 when that model is ready
    POST /v2/models/{name}/infer      inference (deepcore/serve/protocol.py)
    GET  /metrics                     Prometheus text (deepcore/serve/metrics.py)

Every error is JSON ``{"error": "..."}`` with a 4xx status for a bad request (400 malformed
JSON, wrong shape or datatype, an input the model rejects; 404 unknown model or path; 405
wrong method; 413 a body over ``max_body_mb``, judged from Content-Length before reading and
again while reading) and 5xx for a failure of the server or model (503 while shutting down).

Shutdown (SIGTERM or SIGINT): uvicorn stops accepting connections and waits for the requests
in flight; then the app's lifespan shutdown drains the batcher (Note [Dynamic batching]).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from typing import Any, Optional, Sequence, Union

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._model_files import TensorSpec
from .batching import DynamicBatcher
from .metrics import CONTENT_TYPE_LATEST, MetricsMiddleware, ServerMetrics
from .model import ServedModel, load
from .protocol import RequestError, decode_request, encode_response, tensor_metadata

__all__ = ["create_app", "run"]

DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_DELAY_MS = 2.0
DEFAULT_MAX_BODY_MB = 64.0
SHUTDOWN_DRAIN_S = 60.0
DRAIN_BYTES = 16 << 20  # an oversized body up to this much over the limit is read, then 413


async def _drain(stream, budget: int) -> None:
    """Reads and drops up to ``budget`` more body bytes. A 413 sent while the client is still
    sending would make the connection's close a reset, which can destroy the response before
    the client reads it; a modest overrun is read first, a huge one is cut off."""
    async for chunk in stream:
        budget -= len(chunk)
        if budget < 0:
            return


def _error(status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _as_specs(input_spec) -> Sequence[TensorSpec]:
    if isinstance(input_spec, TensorSpec):
        return (input_spec,)
    if isinstance(input_spec, (tuple, list)) and input_spec and all(
            isinstance(d, int) and not isinstance(d, bool) for d in input_spec):
        return (TensorSpec("input", tuple(input_spec)),)  # a shape: one float32 input
    if isinstance(input_spec, (tuple, list)) and all(isinstance(s, TensorSpec)
                                                     for s in input_spec):
        return tuple(input_spec)
    raise TypeError(f"[serve] input_spec must be a TensorSpec, a sequence of TensorSpecs, or "
                    f"the shape of one float32 input without the batch dimension; got "
                    f"{input_spec!r}")


def _served(model, name, input_spec, output_spec) -> ServedModel:
    if isinstance(model, ServedModel):
        if input_spec is not None or output_spec is not None:
            raise TypeError("[serve] a ServedModel already holds its specs; do not pass "
                            "input_spec/output_spec")
        if name is not None:
            model.name = name
        return model
    if isinstance(model, (str, os.PathLike)):
        if input_spec is not None or output_spec is not None:
            raise TypeError("[serve] a model file declares its own inputs; do not pass "
                            "input_spec/output_spec")
        return load(model, name=name)
    if input_spec is None:
        raise TypeError(f"[serve] serving a {type(model).__name__} needs input_spec (the "
                        "TensorSpec(s) of its inputs, or one input's shape without the batch)")
    return ServedModel(model, _as_specs(input_spec), outputs=output_spec,
                       name=name or "model")


def create_app(model: Union[Any, str, "os.PathLike[str]"], *, name: Optional[str] = None,
               input_spec=None, output_spec=None,
               max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
               max_delay_ms: float = DEFAULT_MAX_DELAY_MS,
               max_body_mb: float = DEFAULT_MAX_BODY_MB) -> Starlette:
    """An ASGI app serving ``model``: an ``nn.Module`` (with ``input_spec``), a
    ``ServedModel``, or the path of a ``deepcore train`` checkpoint / ``.onnx`` file.

    ``max_batch_size`` rows are merged per forward pass within ``max_delay_ms`` (1: no
    merging; Note [Dynamic batching]); request bodies over ``max_body_mb`` get a 413. Serve it
    with ``run`` or any ASGI server (``uvicorn.run(app)``)."""
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or \
            max_batch_size < 1:
        raise ValueError(f"[serve] max_batch_size must be an integer >= 1, got "
                         f"{max_batch_size!r}")
    if isinstance(max_body_mb, bool) or not isinstance(max_body_mb, (int, float)) or \
            not max_body_mb > 0:
        raise ValueError(f"[serve] max_body_mb must be > 0, got {max_body_mb!r}")
    served = _served(model, name, input_spec, output_spec)
    metrics = ServerMetrics()
    merge = max_batch_size if served.fixed_batch is None else 1
    batcher = DynamicBatcher(served.run, max_batch_size=merge, max_delay_ms=max_delay_ms,
                             on_batch=metrics.batch_observer(served.name),
                             on_queue=metrics.queue_observer(served.name), name=served.name)
    body_limit = int(max_body_mb * (1 << 20))
    if max_batch_size != merge:
        print(f"deepcore serve: model '{served.name}' takes exactly {served.fixed_batch} rows "
              "per call (its graph has a fixed batch size): requests are not merged",
              file=sys.stderr)

    def lookup(name: str) -> ServedModel:
        if name != served.name:
            raise RequestError(f"unknown model '{name}'; this server serves '{served.name}'",
                               status=404)
        return served

    async def server_metadata(request: Request):
        from .. import __version__
        return JSONResponse({"name": "deepcore", "version": __version__, "extensions": []})

    async def live(request: Request):
        return JSONResponse({"live": True})

    async def ready(request: Request):
        ok = batcher.running
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def model_metadata(request: Request):
        try:
            m = lookup(request.path_params["name"])
        except RequestError as e:
            return _error(e.status, str(e))
        return JSONResponse({"name": m.name, "versions": ["1"], "platform": m.platform,
                             "inputs": [tensor_metadata(s) for s in m.inputs],
                             "outputs": [tensor_metadata(s) for s in m.outputs]})

    async def model_ready(request: Request):
        try:
            m = lookup(request.path_params["name"])
        except RequestError as e:
            return _error(e.status, str(e))
        ok = batcher.running
        return JSONResponse({"name": m.name, "ready": ok}, status_code=200 if ok else 503)

    async def read_body(request: Request) -> bytes:
        mb = f"{max_body_mb:g} MB"
        length = request.headers.get("content-length")
        stream = request.stream().__aiter__()
        if length is not None:
            if not length.isdigit():
                raise RequestError(f"invalid Content-Length header {length!r}")
            if int(length) > body_limit:
                if int(length) <= body_limit + DRAIN_BYTES:
                    await _drain(stream, DRAIN_BYTES)
                raise RequestError(f"request body of {int(length)} bytes is over the "
                                   f"{mb} limit (--max-body-mb)", status=413)
        chunks, total = [], 0
        async for chunk in stream:
            total += len(chunk)
            if total > body_limit:
                await _drain(stream, DRAIN_BYTES)
                raise RequestError(f"request body is over the {mb} limit (--max-body-mb)",
                                   status=413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def infer(request: Request):
        try:
            m = lookup(request.path_params["name"])
            body = await read_body(request)
            arrays, request_id, wanted = decode_request(body, m.inputs, m.outputs)
            del body
            outputs = await batcher.submit(arrays)
        except RequestError as e:
            # A body left unread would be taken for the next request on this connection.
            headers = {"connection": "close"} if e.status == 413 else None
            return _error(e.status, str(e), headers)
        except (ValueError, TypeError, IndexError) as e:
            return _error(400, f"model '{m.name}' rejected the input: {e}")
        except Exception as e:  # noqa: BLE001 -- the server answers, whatever the model does
            return _error(500, f"model '{m.name}' failed: {type(e).__name__}: {e}")
        return Response(encode_response(m.name, request_id, m.outputs, outputs, wanted),
                        media_type="application/json")

    async def prometheus(request: Request):
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}",
                      getattr(exc, "headers", None))

    async def server_error(request: Request, exc: Exception):
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        try:
            yield
        finally:
            # uvicorn has waited for the requests in flight; finish anything still queued.
            await asyncio.get_running_loop().run_in_executor(None, batcher.close,
                                                             SHUTDOWN_DRAIN_S)

    routes = [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.model = served
    app.state.batcher = batcher
    app.state.metrics = metrics
    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free port."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"[serve] port must be in 0..65535, got {port!r}")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise ValueError(f"[serve] cannot resolve host {host!r}: {e}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"[serve] cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def run(model, *, host: str = "127.0.0.1", port: int = 8000, name: Optional[str] = None,
        input_spec=None, output_spec=None, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_delay_ms: float = DEFAULT_MAX_DELAY_MS, max_body_mb: float = DEFAULT_MAX_BODY_MB,
        log_level: str = "info", access_log: bool = False,
        timeout_graceful_shutdown: Optional[float] = None) -> None:
    """Serves ``model`` (see ``create_app``) with uvicorn until SIGINT/SIGTERM; returns after
    the graceful shutdown. Prints the address (with the port chosen when ``port=0``)."""
    import uvicorn

    app = create_app(model, name=name, input_spec=input_spec, output_spec=output_spec,
                     max_batch_size=max_batch_size, max_delay_ms=max_delay_ms,
                     max_body_mb=max_body_mb)
    sock = bind_socket(host, port)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if sock.family == socket.AF_INET6 else bound[0]
    served = app.state.model
    print(f"deepcore serve: model '{served.name}' ({served.platform}) on "
          f"http://{shown}:{bound[1]}/v2/models/{served.name}", flush=True)
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="on",
                            timeout_graceful_shutdown=timeout_graceful_shutdown)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
