"""Moonraker's job queue (Go module `job_queue`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache, add, lookup

if TYPE_CHECKING:
    from moonraker.server import Server


class JobQueueCollector(Collector):
    """Job queue length, state and contents (Moonraker's job_queue component)."""

    name = "jobs"
    metrics = catalogue.JOBS

    def __init__(self, server: "Server") -> None:
        super().__init__(server)
        self._cache = RenderCache()

    def render(self) -> str:
        queue = lookup(self.server, "job_queue")
        if queue is None:
            return ""
        jobs: Dict[str, Any] = getattr(queue, "queued_jobs", None) or {}
        # The queue is a dict changed in place; a queued job's fields never change.
        key = (getattr(queue, "queue_state", None), tuple(jobs.items()))
        return self._cache.text(key, lambda: self._render(*key))

    @staticmethod
    def _render(state: Any, jobs: Tuple[Tuple[str, Any], ...]) -> str:
        c = catalogue
        families: List[Family] = []
        f = Family(c.JOB_QUEUE_LENGTH)
        f.add(float(len(jobs)))
        families.append(f)
        if isinstance(state, str):
            f = Family(c.JOB_QUEUE_STATE)
            f.add(1.0, state)
            families.append(f)
        contents = Family(c.JOB_QUEUE_JOB)
        added = Family(c.JOB_QUEUE_JOB_ADDED)
        for position, (job_id, job) in enumerate(jobs):
            contents.add(1.0, str(position), str(job_id), str(getattr(job, "filename", "")))
            add(added, getattr(job, "time_added", None), str(job_id))
        families += [contents, added]
        return render_families(families)
