"""Moonraker's job history: totals, outcome counts and the job in progress (Go `history`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from ..catalogue import moonraker as catalogue
from ..catalogue.values import as_number
from ..exposition import Family, render_families
from .base import Collector, PeriodicRefresh, RenderCache, add_if_number
from .host import Host

if TYPE_CHECKING:
    from moonraker.server import Server

REFRESH_INTERVAL = 300.0
# Outcomes Moonraker 0.11 records; reported as 0 until the first such job, so that
# increase() sees the first one. Other statuses appear once history holds them.
KNOWN_OUTCOMES = ("completed", "cancelled", "error", "interrupted", "klippy_shutdown",
                  "klippy_disconnect", "server_exit")

TOTALS = (
    ("total_jobs", catalogue.TOTAL_JOBS),
    ("total_time", catalogue.TOTAL_TIME),
    ("total_print_time", catalogue.TOTAL_PRINT_TIME),
    ("total_filament_used", catalogue.TOTAL_FILAMENT),
    ("longest_job", catalogue.LONGEST_JOB),
    ("longest_print", catalogue.LONGEST_PRINT),
)
CURRENT_METADATA = (
    ("object_height", catalogue.CURRENT_OBJECT_HEIGHT, 1.0),
    ("first_layer_height", catalogue.CURRENT_FIRST_LAYER_HEIGHT, 1.0),
    ("layer_height", catalogue.CURRENT_LAYER_HEIGHT, 1.0),
    ("estimated_time", catalogue.CURRENT_ESTIMATE, 1.0),
    ("filament_total", catalogue.CURRENT_FILAMENT_TOTAL, 0.001),
    ("filament_weight_total", catalogue.CURRENT_FILAMENT_WEIGHT, 1.0),
)


class HistoryCollector(Collector):
    """History totals, job outcome counts (from the history table) and the current job."""

    name = "history"
    metrics = catalogue.HISTORY

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        self.outcomes = PeriodicRefresh(self.host, "history job outcomes",
                                        self._count_outcomes, REFRESH_INTERVAL)
        self.host.register_event_handler("history:history_changed", self._on_history_changed)
        self._totals = RenderCache()
        self._current_job = RenderCache()

    async def _count_outcomes(self) -> Optional[Dict[str, float]]:
        found = await self.host.history_outcomes()
        if found is None:
            return None
        counts: Dict[str, float] = {status: 0.0 for status in KNOWN_OUTCOMES}
        counts.update(found)
        return counts

    def _on_history_changed(self, event: Any, *_: Any) -> None:
        if isinstance(event, dict) and event.get("action") == "finished":
            self.outcomes.trigger()

    async def start(self) -> None:
        self.outcomes.start()

    async def close(self) -> None:
        await self.outcomes.close()

    def render(self) -> str:
        totals = self.host.history_totals()
        if totals is None:
            return ""
        # job_totals is changed in place: the key holds its values.
        key = (tuple(totals.get(field) for field, _ in TOTALS), self.outcomes.current())
        text = self._totals.text(key, lambda: self._render_totals(*key))
        if key[1] is not None:
            age = self.outcomes.age()
            if age is not None:
                f = Family(catalogue.HISTORY_AGE)
                f.add(age)
                text += f.render()
        return text + self._render_current_job()

    @staticmethod
    def _render_totals(totals: Tuple[Any, ...], counts: Optional[Dict[str, float]]) -> str:
        families: List[Family] = []
        for value, (_, metric) in zip(totals, TOTALS):
            f = Family(metric)
            add_if_number(f, value)
            families.append(f)
        if counts is not None:
            f = Family(catalogue.HISTORY_JOBS)
            for status in sorted(counts):
                f.add(counts[status], status)
            families.append(f)
        return render_families(families)

    def _render_current_job(self) -> str:
        job = self.host.current_job()
        if job is None:
            return ""
        key = (job.filename, job.job_id, job.start_time, job.total_duration,
               job.print_duration,
               tuple(job.metadata.get(field) for field, _, _ in CURRENT_METADATA))
        return self._current_job.text(key, lambda: self._render_job(*key))

    @staticmethod
    def _render_job(filename: str, job_id: Any, start_time: Any, total_duration: Any,
                    print_duration: Any, metadata: Tuple[Any, ...]) -> str:
        c = catalogue
        families: List[Family] = []
        f = Family(c.CURRENT_JOB)
        f.add(1.0, str(filename), f"{job_id:06X}" if isinstance(job_id, int) else "")
        families.append(f)
        f = Family(c.CURRENT_JOB_START)
        add_if_number(f, start_time)
        families.append(f)
        f = Family(c.CURRENT_TOTAL_DURATION)
        add_if_number(f, total_duration)
        families.append(f)
        estimate = None
        for raw, (field, metric, factor) in zip(metadata, CURRENT_METADATA):
            value = as_number(raw)
            f = Family(metric)
            if value is not None:
                f.add(value * factor)
            families.append(f)
            if field == "estimated_time":
                estimate = value
        printed = as_number(print_duration)
        if estimate is not None and printed is not None:
            f = Family(c.CURRENT_REMAINING)
            f.add(max(estimate - printed, 0.0))
            families.append(f)
        return render_families(families)
