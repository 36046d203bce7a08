"""Prometheus metrics of one server, in its own ``CollectorRegistry`` (so two apps in one
process, or a test's app, never share counters), served as text at ``GET /metrics``.

    deepcore_serve_requests_total{endpoint, method, status}   counter
    deepcore_serve_request_duration_seconds{endpoint}          histogram, request to response
    deepcore_serve_batch_size{model}                            histogram, rows per forward pass
    deepcore_serve_batch_requests{model}                        histogram, requests per pass
    deepcore_serve_inference_duration_seconds{model}           histogram, one forward pass
    deepcore_serve_queue_duration_seconds{model}               histogram, queued until run
    deepcore_serve_requests_in_flight                           gauge

``endpoint`` is the route template (``/v2/models/{name}/infer``), never the raw path, so a
client cannot grow the label set; paths no route serves count as ``other``.
"""
from __future__ import annotations

import re
import time
from typing import Tuple

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest)

__all__ = ["ServerMetrics", "MetricsMiddleware", "CONTENT_TYPE_LATEST"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

_ROUTES: Tuple[Tuple["re.Pattern[str]", str], ...] = tuple(
    (re.compile(p), label) for p, label in (
        (r"^/v2/?$", "/v2"),
        (r"^/v2/health/live$", "/v2/health/live"),
        (r"^/v2/health/ready$", "/v2/health/ready"),
        (r"^/v2/models/[^/]+/?$", "/v2/models/{name}"),
        (r"^/v2/models/[^/]+/ready$", "/v2/models/{name}/ready"),
        (r"^/v2/models/[^/]+/infer$", "/v2/models/{name}/infer"),
        (r"^/metrics$", "/metrics"),
    ))


def endpoint_label(path: str) -> str:
    for pattern, label in _ROUTES:
        if pattern.match(path):
            return label
    return "other"


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("deepcore_serve_requests", "HTTP requests answered",
                                ("endpoint", "method", "status"), registry=r)
        self.latency = Histogram("deepcore_serve_request_duration_seconds",
                                 "Time from request to the end of the response",
                                 ("endpoint",), buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("deepcore_serve_batch_size",
                                    "Rows (samples) in one forward pass", ("model",),
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.batch_requests = Histogram("deepcore_serve_batch_requests",
                                        "Requests merged into one forward pass", ("model",),
                                        buckets=_BATCH_BUCKETS, registry=r)
        self.inference = Histogram("deepcore_serve_inference_duration_seconds",
                                   "Time of one forward pass", ("model",),
                                   buckets=_LATENCY_BUCKETS, registry=r)
        self.queue = Histogram("deepcore_serve_queue_duration_seconds",
                               "Time a request waited before its forward pass started",
                               ("model",), buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("deepcore_serve_requests_in_flight",
                               "Requests being handled now", registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def batch_observer(self, model: str):
        size, reqs, inf = (self.batch_size.labels(model), self.batch_requests.labels(model),
                           self.inference.labels(model))

        def observe(rows: int, requests: int, seconds: float) -> None:
            size.observe(rows)
            reqs.observe(requests)
            inf.observe(seconds)
        return observe

    def queue_observer(self, model: str):
        return self.queue.labels(model).observe


class MetricsMiddleware:
    """ASGI middleware: counts every HTTP request by endpoint, method and status, and times it
    to the last byte of the response."""

    def __init__(self, app, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_label(scope.get("path", ""))
        status = [500]
        start = time.perf_counter()

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        m = self.metrics
        m.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            m.in_flight.dec()
            m.requests.labels(endpoint, scope.get("method", ""), str(status[0])).inc()
            m.latency.labels(endpoint).observe(time.perf_counter() - start)
