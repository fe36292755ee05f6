"""The update manager's cached state; a scrape never triggers a refresh."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

from ..catalogue import moonraker as catalogue
from ..catalogue.values import as_number
from ..exposition import Family, render_families
from .base import Collector, RenderCache, add_if_number
from .host import UNKNOWN_TIME, Host

if TYPE_CHECKING:
    from moonraker.server import Server

CACHE_SECONDS = 10.0
UNKNOWN_VERSIONS = ("", "?", "unknown", None)


def update_available(status: Dict[str, Any]) -> Optional[bool]:
    """Whether the updater's last refresh found an update; None when it cannot tell."""
    if "package_count" in status:
        count = as_number(status.get("package_count"))
        return None if count is None else count > 0
    behind = as_number(status.get("commits_behind_count"))
    if behind is None and isinstance(status.get("commits_behind"), list):
        behind = float(len(status["commits_behind"]))
    if behind is not None and behind > 0:
        return True
    version, remote = status.get("version"), status.get("remote_version")
    if version in UNKNOWN_VERSIONS or remote in UNKNOWN_VERSIONS:
        return None
    return version != remote


class UpdatesCollector(Collector):
    """Update manager state per software: versions, updates available (cached; no refresh)."""

    name = "updates"
    metrics = catalogue.UPDATES

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        self._cache = RenderCache(max_age=CACHE_SECONDS)
        self._failures: Dict[str, str] = {}  # updater name -> last logged cause
        for event in ("update_manager:update_refreshed", "update_manager:update_response"):
            self.host.register_event_handler(event, self._invalidate)

    def _invalidate(self, *_: Any) -> None:
        self._cache.invalidate()

    def render(self) -> str:
        return self._cache.text(None, self._render)

    def _render(self) -> str:
        c = catalogue
        updaters = self.host.updaters()
        if updaters is None:
            return ""
        info = Family(c.UPDATE_INFO)
        available = Family(c.UPDATE_AVAILABLE)
        behind = Family(c.UPDATE_COMMITS_BEHIND)
        packages = Family(c.UPDATE_PACKAGES)
        valid = Family(c.UPDATE_VALID)
        refreshed = Family(c.UPDATE_REFRESHED)
        for name, get_status, last_refresh in updaters:
            try:
                status: Dict[str, Any] = get_status() or {}
            except Exception as e:
                self._log_failure(name, e)
                continue
            self._failures.pop(name, None)
            # Remotely the refresh time is unknown (UNKNOWN_TIME): taken as refreshed.
            refresh_time = None if last_refresh is UNKNOWN_TIME else as_number(last_refresh)
            never_refreshed = last_refresh is not UNKNOWN_TIME and not refresh_time
            kind = status.get("configured_type") or status.get("detected_type") or ""
            if "package_count" in status:
                kind = kind or "system"
                if not never_refreshed:
                    add_if_number(packages, status.get("package_count"))
            else:
                version = status.get("version")
                remote = status.get("remote_version")
                info.add(1.0, name, str(kind),
                         "" if version in UNKNOWN_VERSIONS else str(version),
                         "" if remote in UNKNOWN_VERSIONS else str(remote))
            if not never_refreshed:
                found = update_available(status)
                if found is not None:
                    available.add(1.0 if found else 0.0, name)
                count = as_number(status.get("commits_behind_count"))
                if count is None and isinstance(status.get("commits_behind"), list):
                    count = float(len(status["commits_behind"]))
                if count is not None:
                    behind.add(count, name)
                if refresh_time is not None:
                    refreshed.add(refresh_time, name)
            if isinstance(status.get("is_valid"), bool):
                valid.add(1.0 if status["is_valid"] else 0.0, name)
        return render_families([info, available, behind, packages, valid, refreshed])

    def _log_failure(self, name: str, error: Exception) -> None:
        """Log an updater whose status cannot be read, once per distinct cause."""
        cause = f"{type(error).__name__}: {error}"
        if self._failures.get(name) != cause:
            self._failures[name] = cause
            logging.warning(f"prometheus: update manager component '{name}' left out: "
                            f"its get_update_status() failed: {cause}")
