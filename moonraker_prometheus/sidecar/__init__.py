"""Sidecar: merges other exporters (HTTP, Unix socket, files, commands) into one exposition.

Used in-process by the Moonraker component and standalone (`python -m
moonraker_prometheus.sidecar --config sidecar.yml`). Never imports Moonraker.

In-process API (what component.py calls)::

    from .sidecar import Merger, build_source, config_from_sections

    cfg = config_from_sections(config_sections)
        # a SidecarConfig (spec.py), as the standalone YAML's parse_config() returns:
        # cfg.endpoints, one per group: path "" merges into /server/metrics, any other is
        # served on /server/metrics/<path>; each holds its validated SourceSpecs. A bad
        # section is skipped and named in cfg.warnings (section, option, reason).
    merger = Merger([build_source(s) for s in cfg.endpoints[0].specs])  # one per endpoint
    merger.start()                     # optional: starts exec_periodic sources now
    text = await merger.collect(local_text=render_own, timeout=4.0, params=None,
                                variant=modules)
        # local_text (the component's own exposition: a string, or a function called once
        # per run when the sources have answered) is merged first, without added labels,
        # so every family has one HELP/TYPE; the result is re-rendered in family-name order.
        # params ({name: [values]}) reach only the query of HTTP sources with
        # forward_url_params. Concurrent collect() calls with the same params and variant
        # share one run; runs in flight share each source's fetch. The answer comes within
        # `timeout` seconds. Never raises for a failing source: its health metrics say.
    await merger.close()               # stops periodic tasks, kills children, closes clients

Heavy work (tokenizing, merging, rendering) runs in the loop's default executor; the event
loop only awaits. Health families: klipper_exporter_source_* and
klipper_exporter_merge_dropped_total (see docs/sidecar.md).
"""
from __future__ import annotations

from .merge import Merger
from .moonraker_config import config_from_sections
from .sources import Source, build_source
from .spec import Endpoint, SidecarConfig, SourceSpec, SpecError

__all__ = ["Endpoint", "Merger", "SidecarConfig", "Source", "SourceSpec", "SpecError",
           "build_source", "config_from_sections"]
