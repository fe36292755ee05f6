"""Moonraker's job queue (Go module `job_queue`)."""
from __future__ import annotations

from typing import Any, Dict, List

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, add, lookup


class JobQueueCollector(Collector):
    """Job queue length, state and contents (Moonraker's job_queue component)."""

    name = "jobs"
    metrics = catalogue.JOBS

    def render(self) -> str:
        c = catalogue
        queue = lookup(self.server, "job_queue")
        if queue is None:
            return ""
        jobs: Dict[str, Any] = getattr(queue, "queued_jobs", None) or {}
        families: List[Family] = []
        f = Family(c.JOB_QUEUE_LENGTH)
        f.add(float(len(jobs)))
        families.append(f)
        state = getattr(queue, "queue_state", None)
        if isinstance(state, str):
            f = Family(c.JOB_QUEUE_STATE)
            f.add(1.0, state)
            families.append(f)
        contents = Family(c.JOB_QUEUE_JOB)
        added = Family(c.JOB_QUEUE_JOB_ADDED)
        for position, (job_id, job) in enumerate(list(jobs.items())):
            contents.add(1.0, str(position), str(job_id), str(getattr(job, "filename", "")))
            add(added, getattr(job, "time_added", None), str(job_id))
        families += [contents, added]
        return render_families(families)
