"""Prometheus metrics of one app instance, and the ASGI middleware that records requests.

Each app gets its own ``CollectorRegistry`` (tests build many apps in one process; the global registry would
refuse duplicate names). Route labels are route templates (``/v1/classify``), never raw paths, so a scan of random
URLs cannot blow up label cardinality; anything unrouted counts as ``unmatched``.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api.batcher import BatchStats

LATENCY_BUCKETS = (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("counterpoint_http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("counterpoint_http_request_duration_seconds", "Time from request to response.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("counterpoint_batch_size_texts", "Texts per model call.",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_requests = Histogram("counterpoint_batch_size_requests", "Requests sharing one model call.",
                                        buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("counterpoint_batch_duration_seconds", "Time of one model call.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("counterpoint_queue_depth_texts", "Texts waiting for the model.", registry=r)
        self.predictions = Counter("counterpoint_predictions", "Texts classified, by predicted label.", ["label"],
                                   registry=r)
        self.model = Info("counterpoint_model", "The model being served.", registry=r)
        self.ready = Gauge("counterpoint_ready", "1 when the model is loaded and the batcher runs.", registry=r)

    def set_model(self, *, name: str, version: str, sha256: str, backend: str, kind: str) -> None:
        self.model.info({"name": name, "version": version, "sha256": sha256, "backend": backend, "kind": kind})

    def observe_batch(self, stats: BatchStats, predictions: list) -> None:
        self.batch_size.observe(stats.texts)
        self.batch_requests.observe(stats.requests)
        self.batch_seconds.observe(stats.seconds)
        counts: dict[str, int] = {}
        for p in predictions:
            counts[p.label] = counts.get(p.label, 0) + 1
        for label, n in counts.items():
            self.predictions.labels(label=label).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Counts requests and latency per route, and stamps every response with the served model version."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, state: Any, header: str) -> None:
        self.app = app
        self.metrics = metrics
        self.state = state
        self.header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                version = getattr(self.state, "model_version", None)
                if version:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != self.header]
                    headers.append((self.header, version.encode("latin-1", "replace")))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(route=name, method=scope.get("method", ""), status=str(status)).inc()
            self.metrics.latency.labels(route=name).observe(time.perf_counter() - started)
