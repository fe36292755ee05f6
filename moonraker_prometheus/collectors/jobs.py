"""Moonraker's job queue (Go module `job_queue`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Tuple, Union

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache, add_if_number
from .host import Host, QueuedJob

if TYPE_CHECKING:
    from moonraker.server import Server


class JobQueueCollector(Collector):
    """Job queue length, state and contents (Moonraker's job_queue component)."""

    name = "jobs"
    metrics = catalogue.JOBS

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        self._cache = RenderCache()

    def render(self) -> str:
        key = self.host.job_queue()
        if key is None:
            return ""
        return self._cache.text(key, lambda: self._render(*key))

    @staticmethod
    def _render(state: Any, jobs: Tuple[QueuedJob, ...]) -> str:
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
        for position, (job_id, filename, time_added) in enumerate(jobs):
            contents.add(1.0, str(position), str(job_id), filename)
            add_if_number(added, time_added, str(job_id))
        families += [contents, added]
        return render_families(families)
