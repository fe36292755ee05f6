"""A merged file source whose last value goes bad after a first scrape (issue 17).

A cron script's text file of N integer series is scraped once, then rewritten with its last
value broken (`my_counter{n="N-1"} 12x`). Checking the new body against the first scrape's
template once backtracked exponentially in a regular expression that held the GIL: the next
scrape never answered, and Moonraker answered nothing else either. Here, at 10, 100 and 1,000
series, in real Moonraker (`[prometheus exporter x]`, no Klippy needed) and in the standalone
sidecar: every scrape answers within the scrape timeout, the bad line is dropped and counted,
the other N-1 series are served with their new values, a repaired file brings all N back,
and Moonraker answers `/server/info` in < 100 ms throughout.

Moonraker and the sidecar run in processes of their own and every request has a client
timeout, so a merge that hangs again ends these tests with a failure naming what hung.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.sidecar.test_standalone import SidecarProcess, get, one_path

SIZES = (10, 100, 1000)
SCRAPE_TIMEOUT = 2.0  # [prometheus] scrape_timeout / the sidecar's web.scrape_timeout
HUNG = SCRAPE_TIMEOUT + 3.0  # the client's timeout: no answer by then is a hung merge
INFO_BUDGET = 0.1  # /server/info must answer within this
INFO_TIMEOUT = 2.0  # a /server/info request left unanswered this long counts as frozen
INFO_PERIOD = 0.05
DROPPED = "klipper_exporter_merge_dropped_total"


def counter_file(path: str, n: int, generation: int, bad_last: bool = False) -> None:
    """Write the N-series counter file atomically (a cron script's rename): 10-digit
    values that differ between generations; ``bad_last`` breaks the last value."""
    lines = ["# TYPE my_counter counter"]
    for i in range(n):
        value = "12x" if bad_last and i == n - 1 else str(value_of(i, generation))
        lines.append('my_counter{n="%d"} %s' % (i, value))
    with open(path + ".new", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".new", path)


def value_of(i: int, generation: int) -> int:
    return 1234567890 + 100000 * generation + i


def source_samples(text: str) -> Tuple[Dict[str, float], Dict[str, float]]:
    """({n: value} of source x's my_counter series, {reason: value} of its drop counter)."""
    counters: Dict[str, float] = {}
    dropped: Dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("exporter_name") != "x":
                continue
            if s.name == "my_counter_total" or s.name == "my_counter":
                counters[s.labels["n"]] = s.value
            elif s.name == DROPPED:
                dropped[s.labels["reason"]] = s.value
    return counters, dropped


def check_series(text: str, n: int, generation: int, bad_last: bool, where: str) -> None:
    """Source x serves this generation's values, without the last series when it was bad,
    and its drop counter says invalid_line 1 from the bad scrape on."""
    counters, dropped = source_samples(text)
    served = n - 1 if bad_last else n
    want = {str(i): float(value_of(i, generation)) for i in range(served)}
    missing = sorted(set(want) - set(counters), key=int)
    wrong = {k: counters[k] for k in want if k in counters and counters[k] != want[k]}
    extra = sorted(set(counters) - set(want), key=int)
    assert not (missing or wrong or extra), (
        "%s: source x's series: %d missing (first %s), %d with old values (%s), unexpected %s"
        % (where, len(missing), missing[:5], len(wrong), list(wrong.items())[:3], extra))
    expected_drops = 0.0 if generation == 0 else 1.0
    assert dropped.get("invalid_line", 0.0) == expected_drops, (where, dropped)


class InfoPoller:
    """Polls Moonraker's /server/info from a thread every INFO_PERIOD and keeps the latency
    of each answer under the phase the test was in when the request was sent (a phase runs
    from its scrape's request to the next phase)."""

    def __init__(self, moonraker) -> None:
        self.moonraker = moonraker
        self.phase = "first scrape"
        self.samples: List[Tuple[str, float, Optional[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            phase = self.phase
            started = time.monotonic()
            error = None
            try:
                status = self.moonraker.get("/server/info", timeout=INFO_TIMEOUT).status
                if status != 200:
                    error = "HTTP %d" % status
            except OSError as e:  # a timeout or a refused connection
                error = "%s: %s" % (type(e).__name__, e)
            elapsed = time.monotonic() - started
            self.samples.append((phase, elapsed, error))
            self._stop.wait(max(0.0, INFO_PERIOD - elapsed))

    def __enter__(self) -> "InfoPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(INFO_TIMEOUT + 1)

    def worst(self, phase: str) -> Tuple[float, int]:
        """(longest latency in seconds, number of requests) of ``phase``."""
        times = [t for p, t, _ in self.samples if p == phase]
        return (max(times) if times else 0.0), len(times)

    def failures(self) -> List[str]:
        return ["%s: %.3f s%s" % (p, t, " (%s)" % e if e else "")
                for p, t, e in self.samples if e or t >= INFO_BUDGET]


def timed_scrape(scrape: Callable[[], str], what: str, alive: Callable[[], str]
                 ) -> Tuple[str, float]:
    """(body, seconds) of one scrape; a scrape without an answer within HUNG fails the test,
    saying whether the process still answers anything else (``alive``)."""
    started = time.monotonic()
    try:
        body = scrape()
    except OSError as e:  # a client timeout (or a process gone): reported below, unchained
        error = "%s: %s" % (type(e).__name__, e)
    else:
        return body, time.monotonic() - started
    pytest.fail("%s hung: no answer after %.1f s (scrape timeout %.0f s; %s); %s"
                % (what, time.monotonic() - started, SCRAPE_TIMEOUT, error, alive()),
                pytrace=False)


@pytest.mark.parametrize("n", SIZES)
def test_moonraker_answers_in_time_when_a_merged_files_last_value_goes_bad(
        make_moonraker, tmp_path, n):
    path = str(tmp_path / "cron.prom")
    counter_file(path, n, 0)
    moonraker = make_moonraker(None, prometheus="scrape_timeout: %g" % SCRAPE_TIMEOUT,
                               extra_config="[prometheus exporter x]\ntype: file\n"
                                            "path: %s\n" % path)

    def scrape() -> str:
        response = moonraker.get("/server/metrics", timeout=HUNG)
        assert response.status == 200, response.text[:500]
        return response.text

    def alive() -> str:
        try:
            moonraker.get("/server/info", timeout=INFO_TIMEOUT)
        except OSError:
            return "/server/info got no answer within %.0f s either: Moonraker is frozen" \
                % INFO_TIMEOUT
        return "/server/info still answers"

    timings = {}
    with InfoPoller(moonraker) as poller:
        body, timings["first"] = timed_scrape(
            scrape, "GET /server/metrics (first scrape, N=%d)" % n, alive)
        check_series(body, n, 0, False, "first scrape")
        counter_file(path, n, 1, bad_last=True)
        poller.phase = "bad scrape"
        body, timings["bad"] = timed_scrape(
            scrape, "GET /server/metrics after source x's last value went bad (N=%d)" % n,
            alive)
        assert timings["bad"] < SCRAPE_TIMEOUT, timings
        check_series(body, n, 1, True, "bad scrape")
        time.sleep(0.5)  # a merge left running in the background would show here
        counter_file(path, n, 2)
        poller.phase = "fixed scrape"
        body, timings["fixed"] = timed_scrape(
            scrape, "GET /server/metrics after source x was repaired (N=%d)" % n, alive)
        assert timings["fixed"] < SCRAPE_TIMEOUT, timings
        check_series(body, n, 2, False, "fixed scrape")
        time.sleep(0.3)
    worst = {p: poller.worst(p) for p in ("first scrape", "bad scrape", "fixed scrape")}
    print("\nN=%d Moonraker scrapes: %s; /server/info max latency (requests): %s" % (
        n, ", ".join("%s %.0f ms" % (k, v * 1000) for k, v in timings.items()),
        ", ".join("%s %.1f ms (%d)" % (p, t * 1000, c) for p, (t, c) in worst.items())))
    assert worst["bad scrape"][1] >= 5, poller.samples  # the poller ran through it
    assert not poller.failures(), "/server/info slower than %.0f ms: %s" % (
        INFO_BUDGET * 1000, poller.failures())


@pytest.mark.parametrize("n", SIZES)
def test_standalone_sidecar_answers_in_time_when_a_files_last_value_goes_bad(tmp_path, n):
    path = str(tmp_path / "cron.prom")
    counter_file(path, n, 0)
    config = one_path({"file": [{"name": "x", "path": path}]})
    config["web"]["scrape_timeout"] = "%gs" % SCRAPE_TIMEOUT
    sidecar = SidecarProcess(tmp_path, config)
    try:
        port = sidecar.port()

        def scrape() -> str:
            status, _, body = get(port, "/metrics", timeout=HUNG)
            assert status == 200, body[:500]
            return body.decode("utf-8")

        def alive() -> str:
            try:
                get(port, "/not-a-metrics-path", timeout=INFO_TIMEOUT)
            except OSError:
                return ("a request for another path got no answer within %.0f s either: "
                        "the sidecar is frozen" % INFO_TIMEOUT)
            return "the sidecar still answers other requests"

        timings = {}
        body, timings["first"] = timed_scrape(
            scrape, "sidecar GET /metrics (first scrape, N=%d)" % n, alive)
        check_series(body, n, 0, False, "first scrape")
        counter_file(path, n, 1, bad_last=True)
        body, timings["bad"] = timed_scrape(
            scrape, "sidecar GET /metrics after source x's last value went bad (N=%d)" % n,
            alive)
        assert timings["bad"] < SCRAPE_TIMEOUT, timings
        check_series(body, n, 1, True, "bad scrape")
        counter_file(path, n, 2)
        body, timings["fixed"] = timed_scrape(
            scrape, "sidecar GET /metrics after source x was repaired (N=%d)" % n, alive)
        assert timings["fixed"] < SCRAPE_TIMEOUT, timings
        check_series(body, n, 2, False, "fixed scrape")
        print("\nN=%d sidecar scrapes: %s" % (n, ", ".join(
            "%s %.0f ms" % (k, v * 1000) for k, v in timings.items())))
    finally:
        sidecar.stop()
