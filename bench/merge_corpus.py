"""Synthetic exporter bodies shaped like node_exporter's (for bench_merge.py).

Mix per 100 samples: per-CPU counters with two short labels, filesystem gauges with three
long labels, network counters with one label, histogram buckets, unlabelled gauges, and a
few label values with escapes, so neither parser gets only its best case.
"""
from __future__ import annotations

import random
from typing import List


def node_like(samples: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    out: List[str] = []
    n = 0
    block = 0
    while n < samples:
        b = block
        block += 1
        out.append("# HELP node_cpu_seconds_total_%d Seconds the CPUs spent in each mode." % b)
        out.append("# TYPE node_cpu_seconds_total_%d counter" % b)
        for cpu in range(4):
            for mode in ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"):
                out.append('node_cpu_seconds_total_%d{cpu="%d",mode="%s"} %.2f'
                           % (b, cpu, mode, rnd.random() * 1e6))
        out.append("# HELP node_filesystem_avail_bytes_%d Filesystem space available." % b)
        out.append("# TYPE node_filesystem_avail_bytes_%d gauge" % b)
        for i in range(30):
            out.append('node_filesystem_avail_bytes_%d{device="/dev/mmcblk0p%d",fstype="ext4",'
                       'mountpoint="/var/lib/printer_data/volume-%d/gcodes"} %d'
                       % (b, i, i, rnd.randrange(1 << 40)))
        out.append("# HELP node_network_receive_bytes_total_%d Network bytes received." % b)
        out.append("# TYPE node_network_receive_bytes_total_%d counter" % b)
        for i in range(20):
            out.append('node_network_receive_bytes_total_%d{device="wlan%d"} %d'
                       % (b, i, rnd.randrange(1 << 40)))
        out.append("# HELP http_request_duration_seconds_%d Request latency." % b)
        out.append("# TYPE http_request_duration_seconds_%d histogram" % b)
        for le in ("0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf"):
            out.append('http_request_duration_seconds_%d_bucket{handler="/metrics",le="%s"} %d'
                       % (b, le, rnd.randrange(1000)))
        out.append('http_request_duration_seconds_%d_sum{handler="/metrics"} %.3f'
                   % (b, rnd.random() * 100))
        out.append('http_request_duration_seconds_%d_count{handler="/metrics"} 999' % b)
        out.append("# TYPE node_unlabelled_%d gauge" % b)
        out.append("node_unlabelled_%d %.6g" % (b, rnd.random()))
        out.append("# TYPE node_odd_label_%d gauge" % b)
        for i in range(8):
            out.append('node_odd_label_%d{path="C:\\\\data\\\\%d",quote="say \\"%d\\""} 1' % (b, i, i))
        n += 32 + 30 + 20 + 9 + 1 + 8
    out.append("")
    return "\n".join(out).encode("utf-8")
