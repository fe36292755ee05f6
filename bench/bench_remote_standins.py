"""Many stand-in Moonrakers in one process, for bench/bench_remote_scale.py: each on its
own loopback port (so that each looks like a separate Moonraker to the exporter), each
answering the JSON-RPC calls the exporter makes with the live printer's recorded answers
and replaying the recorded notifications (status pushes at Klippy's 250 ms cadence,
proc_stats every second) in a loop, from its own point of the recording.

The fixture comes from bench/bench_remote_record.py. An answer is looked up by method and
parameters, then by method alone; a method never recorded gets JSON-RPC's "method not
found". Prints one JSON line, the list of ports, when listening.
TICK is the replay's resolution: every printer's pushes fall on a TICK boundary, so all
1,000 printers' messages of a slot arrive together. Real printers' 250 ms timers are not
in step with each other: their messages arrive spread evenly. The default 10 ms keeps
the bursts as small as 50 printers' messages (the first issue-20 figures used 50 ms: bursts
of 250 messages, 20 a second, which the exporter's probes wait behind).
Usage: `python bench/bench_remote_standins.py FIXTURE COUNT [TICK]`
"""
from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
from typing import Any, Dict, List, Set, Tuple

from tornado.httpserver import HTTPServer
from tornado.web import Application
from tornado.websocket import WebSocketClosedError, WebSocketHandler

TICK = 0.01  # seconds: the replay's resolution (default; see the docstring)


def key(method: Any, params: Any) -> str:
    return json.dumps([method, params], sort_keys=True)


class Replay:
    """The fixture, ready to serve: answers by key and by method, pushes in TICK slots."""

    def __init__(self, fixture: Dict[str, Any], tick: float = TICK) -> None:
        self.exact: Dict[str, Dict[str, Any]] = {}
        self.by_method: Dict[str, Dict[str, Any]] = {}
        for answer in fixture["answers"]:
            body = {k: answer[k] for k in ("result", "error") if k in answer}
            self.exact.setdefault(key(answer["method"], answer.get("params")), body)
            self.by_method.setdefault(answer["method"], body)
        length = max(float(fixture["seconds"]), 1.0)
        self.tick = tick
        self.slots: List[List[str]] = [[] for _ in range(int(length / tick) + 1)]
        for push in fixture["pushes"]:
            self.slots[min(int(push["t"] / tick), len(self.slots) - 1)].append(
                push["message"])

    def answer(self, raw: str) -> str:
        request = json.loads(raw)
        method, params = request.get("method"), request.get("params")
        body = self.exact.get(key(method, params)) or self.by_method.get(method) or {
            "error": {"code": -32601, "message": f"Method not found: {method}"}}
        return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), **body})


class Standin(WebSocketHandler):
    """One Moonraker's /websocket."""

    def initialize(self, replay: Replay, clients: Set[Tuple["Standin", int]]) -> None:
        self.replay = replay
        self.clients = clients

    def open(self) -> None:  # type: ignore[override]
        self.entry = (self, random.randrange(len(self.replay.slots)))
        self.clients.add(self.entry)

    def on_message(self, message: Any) -> None:
        self.write_message(self.replay.answer(message))

    def on_close(self) -> None:
        self.clients.discard(self.entry)


async def pushes(replay: Replay, clients: Set[Tuple[Standin, int]]) -> None:
    """Every tick, each client gets the recording's messages of its own slot."""
    loop = asyncio.get_running_loop()
    tick = 0
    started = loop.time()
    slots = replay.slots
    while True:
        tick += 1
        await asyncio.sleep(max(0.0, started + tick * replay.tick - loop.time()))
        for client, phase in list(clients):
            for message in slots[(tick + phase) % len(slots)]:
                try:
                    client.write_message(message)
                except WebSocketClosedError:
                    break


async def main() -> None:
    fixture_path, count = sys.argv[1], int(sys.argv[2])
    tick = float(sys.argv[3]) if len(sys.argv) > 3 else TICK
    with open(fixture_path, encoding="utf-8") as f:
        replay = Replay(json.load(f), tick)
    clients: Set[Tuple[Standin, int]] = set()
    app = Application([(r"/websocket", Standin, {"replay": replay, "clients": clients})],
                      websocket_max_message_size=64 << 20)
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        sockets.append(sock)
    HTTPServer(app).add_sockets(sockets)
    ports = [sock.getsockname()[1] for sock in sockets]
    print(json.dumps(ports), flush=True)
    await pushes(replay, clients)


if __name__ == "__main__":
    asyncio.run(main())
