"""Real Debian exporters merged together: valid output, each backend sample exactly once."""
from __future__ import annotations

import collections
import urllib.request

from tests.sidecar.support import (assert_no_duplicates, collect, from_source, make_spec,
                                   merger_for, promtool_check, series_ids)

BLACKBOX = "modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 2s\n"
PROMETHEUS = "global:\n  scrape_interval: 1h\nscrape_configs: []\n"


def test_node_process_blackbox_pushgateway_and_prometheus_merge_cleanly(start_exporter, tmp_path):
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    (textfiles / "printer.prom").write_text('# TYPE printer_jobs gauge\nprinter_jobs{q="a"} 3\n')
    (tmp_path / "blackbox.yml").write_text(BLACKBOX)
    (tmp_path / "prometheus.yml").write_text(PROMETHEUS)
    exporters = {
        "node": start_exporter("prometheus-node-exporter",
                               "--collector.textfile.directory=%s" % textfiles),
        "process": start_exporter("prometheus-process-exporter", "-procnames", "python3",
                                  flag="-web.listen-address"),
        "blackbox": start_exporter("prometheus-blackbox-exporter",
                                   "--config.file=%s" % (tmp_path / "blackbox.yml")),
        "pushgateway": start_exporter("prometheus-pushgateway"),
        "prometheus": start_exporter("prometheus",
                                     "--config.file=%s" % (tmp_path / "prometheus.yml"),
                                     "--storage.tsdb.path=%s" % (tmp_path / "data"),
                                     cwd=str(tmp_path)),
    }
    for e in exporters.values():
        e.wait_ready()
    push = urllib.request.Request(
        "http://127.0.0.1:%d/metrics/job/printer/instance/p1" % exporters["pushgateway"].port,
        data=b'# TYPE pushed_total counter\npushed_total{exporter_name="inner"} 7\n',
        method="PUT")
    urllib.request.urlopen(push, timeout=5).close()

    before = {n: series_ids(e.fetch()) for n, e in exporters.items()}
    specs = [make_spec(n, "http", url=e.url, timeout=5) for n, e in exporters.items()]
    out = collect(merger_for(*specs), timeout=8)
    after = {n: series_ids(e.fetch()) for n, e in exporters.items()}

    promtool_check(out)
    ids = series_ids(out)
    assert_no_duplicates(ids)
    type_lines = [x for x in out.splitlines() if x.startswith("# TYPE ")]
    assert len(type_lines) == len(set(type_lines))
    for name in exporters:
        assert 'klipper_exporter_source_up{exporter_name="%s"} 1' % name in out
        merged = collections.Counter(from_source(ids, name))
        stable = set(before[name]) & set(after[name])
        seen_directly = set(before[name]) | set(after[name])
        missing = stable - set(merged)
        assert not missing, "%s: %d series missing, e.g. %s" % (name, len(missing),
                                                                 sorted(missing)[:3])
        extra = set(merged) - seen_directly
        assert not extra, "%s: unexpected series %s" % (name, sorted(extra)[:3])
        assert all(n == 1 for n in merged.values())
    # shared Go runtime families sit under one header for all five
    assert out.count("# TYPE go_goroutines gauge") == 1
    assert sum(1 for i in ids if i[0] == "go_goroutines") == 5
    # a backend's own exporter_name is kept as exported_exporter_name
    assert 'exported_exporter_name="inner"' in out
    assert 'printer_jobs{exporter_name="node",q="a"} 3' in out
