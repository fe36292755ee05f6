"""The standalone sidecar's own process metrics (process_*, python_info).

prometheus_client already reads /proc for CPU time, memory, open file descriptors and start
time exactly as every other exporter names them, so the sidecar reuses its collectors on a
private registry rather than rewriting them. Inside Moonraker this is not used: Moonraker's
own process is covered by the component's `process` module.
"""
from __future__ import annotations

from prometheus_client import (CollectorRegistry, PlatformCollector, ProcessCollector,
                               generate_latest)


class SelfMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def render(self) -> str:
        return generate_latest(self.registry).decode("utf-8")
