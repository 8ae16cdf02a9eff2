"""Prometheus metrics of one app, in a registry of its own (two apps in a process never clash).

With ``--workers`` above 1 each process counts its own requests, and a scrape reaches one of
them: run one worker per container and let the replicas be the unit Prometheus scrapes.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "ServiceMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    """The counters, gauges and histograms of ``/metrics``; labels never hold request text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "norefusal_requests", "HTTP requests by route and status.", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "norefusal_request_duration_seconds", "Time to answer a request, by route.",
            ["route"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.scans = Counter("norefusal_scans", "Outputs scanned.", registry=r)
        self.refusals = Counter("norefusal_refusals", "Outputs scanned as refusals.", registry=r)
        self.errors = Counter(
            "norefusal_errors", "Requests that failed, by kind.", ["kind"], registry=r
        )
        self.queue_depth = Gauge(
            "norefusal_queue_depth", "Scans admitted and not finished (running or waiting).",
            registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "norefusal_batch_size", "Pairs per scan submitted to the scanner.",
            buckets=_BATCH_BUCKETS, registry=r,
        )  # fmt: skip

    def render(self) -> bytes:
        return generate_latest(self.registry)
