"""Moonraker's log says, once at start, what the component changes in Moonraker (router,
handler class, cyclic GC, malloc_trim, log filter), and the [prometheus] options
merge_defer_gc and merge_malloc_trim turn the merge's two off."""
from __future__ import annotations

from typing import List

import pytest

from simulator import Moonraker

PREFIX = "prometheus: changes to Moonraker: "
ROUTER = "metrics routes first in the router, own handler class"


@pytest.fixture
def textfile(tmp_path) -> str:
    path = tmp_path / "job.prom"
    path.write_text("# TYPE backup_ok gauge\nbackup_ok 1\n")
    return str(path)


def exporter(path: str) -> str:
    return f"[prometheus exporter backups]\ntype: file\npath: {path}\n"


def changes(moonraker: Moonraker) -> List[str]:
    """The parts of the start log line (exactly one such line is logged)."""
    lines = [ln for ln in moonraker.log_text().splitlines() if PREFIX in ln]
    assert len(lines) == 1, lines
    return lines[0].split(PREFIX, 1)[1].split("; ")


def test_start_log_line_lists_every_change_to_moonraker_that_is_active(textfile):
    with Moonraker(None, extra_config=exporter(textfile)) as moonraker:
        assert changes(moonraker) == [
            ROUTER, "cyclic GC deferred during merges", "malloc_trim after merges",
            "Tornado's log records of the sidecar's own fetches dropped"]
        assert 'backup_ok{exporter_name="backups"} 1' in moonraker.metrics().text


def test_with_both_merge_options_off_the_start_log_line_says_so(textfile):
    with Moonraker(None, prometheus="merge_defer_gc: False\nmerge_malloc_trim: False",
                   extra_config=exporter(textfile)) as moonraker:
        assert changes(moonraker) == [
            ROUTER, "cyclic GC left alone during merges (merge_defer_gc: False)",
            "no malloc_trim after merges (merge_malloc_trim: False)",
            "Tornado's log records of the sidecar's own fetches dropped"]
        assert 'backup_ok{exporter_name="backups"} 1' in moonraker.metrics().text
        assert not moonraker.server_info()["warnings"]


def test_bad_merge_option_values_warn_by_name_and_keep_the_defaults(textfile):
    with Moonraker(None, prometheus="merge_defer_gc: sometimes\nmerge_malloc_trim: 2",
                   extra_config=exporter(textfile)) as moonraker:
        warnings = "\n".join(moonraker.server_info()["warnings"])
        assert "merge_defer_gc" in warnings and "merge_malloc_trim" in warnings
        assert changes(moonraker)[1:3] == ["cyclic GC deferred during merges",
                                           "malloc_trim after merges"]
        assert 'backup_ok{exporter_name="backups"} 1' in moonraker.metrics().text


def test_without_exporter_sections_the_start_log_line_names_no_merge_change():
    with Moonraker(None) as moonraker:
        assert changes(moonraker)[:2] == [
            ROUTER, "no sidecar merges (no [prometheus exporter] section), so cyclic GC "
                    "and malloc untouched"]
