"""The worker's Prometheus metrics: how long tasks and agents take. Observed where a run ends
(worker/runner.py) and served by the worker itself on `worker_metrics_port` (worker/settings.py).

They live in prometheus_client's default registry, the process's own (a worker is one process; several
workers in one test process simply add up), which also carries the process's CPU and memory.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, Histogram, start_http_server

log = logging.getLogger("agensium.worker")

# Seconds: a small profile takes a fraction of one, a large clean run many minutes.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))

TASK_SECONDS = Histogram(
    "agensium_task_duration_seconds",
    "Run time of a task on a worker, from its claim to its outcome",
    ["tool_id", "status"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
AGENT_SECONDS = Histogram(
    "agensium_agent_duration_seconds",
    "Run time of one agent of a chain (its envelope's execution_time_ms)",
    ["agent_id", "status"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)


def observe_task(tool_id: str, status: str, seconds: float) -> None:
    TASK_SECONDS.labels(tool_id, status).observe(seconds)


def observe_run(tool_id: str, result: dict[str, Any], seconds: float) -> None:
    """A completed run: the task's time, and each agent's from the chain's result."""
    observe_task(tool_id, "COMPLETED", seconds)
    for agent_id, envelope in (result.get("agents") or {}).items():
        took_ms = envelope.get("execution_time_ms") if isinstance(envelope, dict) else None
        if isinstance(took_ms, (int, float)):
            AGENT_SECONDS.labels(agent_id, str(envelope.get("status", "unknown"))).observe(took_ms / 1000)


def serve(host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """GET /metrics of this process on host:port, from a daemon thread; stop it with `server.shutdown()`."""
    server, thread = start_http_server(port, host, registry=REGISTRY)
    log.info("worker metrics on http://%s:%d/metrics", host, server.server_port)
    return server, thread
