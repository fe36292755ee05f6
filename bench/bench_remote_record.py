"""Records what the central exporter and a live simulated printer's Moonraker say to each
other, for the stand-in Moonrakers of bench/bench_remote_scale.py.

A real Klippy and Moonraker (0.11, from the simulator) and the exporter as its own process;
between them a websocket proxy writes down every request the exporter sends with
Moonraker's answer (printer.objects.list and .subscribe, server.info, machine.system_info,
machine.proc_stats, history, ...), and every notification Moonraker pushes
(notify_status_update at Klippy's 250 ms cadence, notify_proc_stat_update every second),
with its time. The printer heats its extruder and bed while recorded, so the status pushes
carry changing temperatures as a working printer's do.

The fixture (JSON): {"answers": [{"method", "params", "result" | "error"}],
"pushes": [{"t": seconds since the first, "message": the notification's JSON text}],
"seconds": length of the recording}.
Usage: `.venv/moonraker/bin/python bench/bench_remote_record.py [--seconds 30] [--out FILE]`
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tornado.web import Application  # noqa: E402
from tornado.websocket import WebSocketHandler, websocket_connect  # noqa: E402

from simulator import Klippy, Moonraker, free_port, wait_for  # noqa: E402
from simulator.procs import REPO_ROOT, spawn, terminate  # noqa: E402

DEFAULT_FIXTURE = os.path.join(tempfile.gettempdir(), "moonraker-prometheus-remote-fixture.json")


class Recording:
    """What went through the proxy: requests by id, answers, pushes with their time."""

    def __init__(self) -> None:
        self.requests: Dict[Any, Dict[str, Any]] = {}
        self.answers: List[Dict[str, Any]] = []
        self.pushes: List[Dict[str, Any]] = []
        self.started = 0.0

    def fixture(self) -> Dict[str, Any]:
        first = self.pushes[0]["t"] if self.pushes else 0.0
        pushes = [{"t": round(p["t"] - first, 4), "message": p["message"]}
                  for p in self.pushes]
        return {"answers": self.answers, "pushes": pushes,
                "seconds": pushes[-1]["t"] if pushes else 0.0}


def proxy_app(upstream: str, recording: Recording) -> Application:
    """A /websocket that forwards to `upstream` (Moonraker's ws URL) and records."""

    class Proxy(WebSocketHandler):
        async def open(self) -> None:  # type: ignore[override]
            self.upstream = await websocket_connect(upstream, max_message_size=64 << 20)
            asyncio.get_running_loop().create_task(self._pump())

        async def _pump(self) -> None:
            while True:
                raw = await self.upstream.read_message()
                if raw is None:
                    self.close()
                    return
                message = json.loads(raw)
                rid = message.get("id")
                if rid is not None:
                    request = recording.requests.pop(rid, {})
                    answer = {"method": request.get("method"), "params": request.get("params")}
                    answer.update({k: message[k] for k in ("result", "error") if k in message})
                    recording.answers.append(answer)
                elif recording.started:
                    recording.pushes.append({"t": time.monotonic(), "message": raw})
                await self.write_message(raw)

        async def on_message(self, raw: Any) -> None:
            message = json.loads(raw)
            if "id" in message:
                recording.requests[message["id"]] = message
            await self.upstream.write_message(raw)

        def on_close(self) -> None:
            self.upstream.close()

    return Application([(r"/websocket", Proxy)], websocket_max_message_size=64 << 20)


def record(seconds: float) -> Dict[str, Any]:
    """Runs the printer, the proxy and the exporter; returns the fixture."""
    recording = Recording()
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        with Moonraker(klippy) as moonraker:
            moonraker.wait_klippy_ready()
            proxy_port = free_port()
            loop = asyncio.new_event_loop()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                app = proxy_app(f"ws://{moonraker.host}:{moonraker.port}/websocket",
                                recording)
                app.listen(proxy_port, "127.0.0.1")
                loop.run_forever()

            threading.Thread(target=serve, daemon=True).start()
            port = free_port()
            target = f"127.0.0.1:{proxy_port}"
            log = os.path.join(tempfile.mkdtemp(), "remote.log")
            remote = spawn([sys.executable, "-m", "moonraker_prometheus.remote", "--listen",
                            f"127.0.0.1:{port}", "--target", target], "remote", log,
                           cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT})
            probe = f"http://127.0.0.1:{port}/probe?target={target}"

            def probed() -> bool:
                with urllib.request.urlopen(probe, timeout=10) as r:
                    return b"probe_success 1" in r.read()
            try:
                wait_for(probed, 30, 0.3, "the exporter's first good probe")
                moonraker.post("/printer/gcode/script",
                               {"script": "M104 S210\nM140 S60"})
                time.sleep(2)
                recording.started = time.monotonic()
                time.sleep(seconds)
                recording.started = 0.0
                moonraker.post("/printer/gcode/script", {"script": "M104 S0\nM140 S0"})
            finally:
                terminate(remote)
                loop.call_soon_threadsafe(loop.stop)
    return recording.fixture()


def load_or_record(path: str, seconds: float) -> Dict[str, Any]:
    """The fixture at `path`, recorded there first when it does not exist."""
    if not os.path.exists(path):
        fixture = record(seconds)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(fixture, f)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", default=DEFAULT_FIXTURE)
    args = parser.parse_args()
    fixture = record(args.seconds)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(fixture, f)
    methods: Dict[str, int] = {}
    for push in fixture["pushes"]:
        method = json.loads(push["message"]).get("method")
        methods[method] = methods.get(method, 0) + 1
    print(f"{args.out}: {len(fixture['answers'])} answers "
          f"({', '.join(sorted({a['method'] for a in fixture['answers']}))}); "
          f"{len(fixture['pushes'])} pushes in {fixture['seconds']:.1f} s: {methods}")


if __name__ == "__main__":
    main()
