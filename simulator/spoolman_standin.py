"""A local stand-in for Spoolman: the API endpoints Moonraker's spoolman component uses.

Spoolman itself cannot run here, so the tests start this small Tornado server (in a thread,
on a free loopback port) and point `[spoolman] server:` at it. It speaks what Moonraker 0.11's
components/spoolman.py and the exporter use:

  WS   /api/v1/spool              Moonraker's change feed (kept open; `close_websockets()`)
  GET  /api/v1/health             {"status": "healthy"}
  GET  /api/v1/spool              the spool list (the exporter's background fetch)
  GET  /api/v1/spool/{id}         one spool, 404 when unknown (Moonraker's deleted-spool check)
  PUT  /api/v1/spool/{id}/use     {"use_length": mm} or {"use_weight": g}: usage reports

`stop()` makes it go away (listener and websockets closed) to test staleness.
"""
from __future__ import annotations

import asyncio
import copy
import json
import socket
import threading
from typing import Any, Dict, List, Optional

import tornado.httpserver
import tornado.ioloop
import tornado.web
import tornado.websocket

FILAMENT_DENSITY = 1.24  # g/cm3, PLA
FILAMENT_DIAMETER = 1.75  # mm


def sample_spools() -> List[Dict[str, Any]]:
    """Two spools shaped like Spoolman's; the second has no known weight (absent, not 0)."""
    return [
        {
            "id": 1, "registered": "2024-01-01T00:00:00Z", "archived": False,
            "filament": {"id": 1, "name": "Galaxy Black", "material": "PLA",
                         "color_hex": "1A1A1A", "density": FILAMENT_DENSITY,
                         "diameter": FILAMENT_DIAMETER, "weight": 1000.0,
                         "vendor": {"id": 1, "name": "Prusament"}},
            "initial_weight": 1000.0, "remaining_weight": 750.5, "used_weight": 249.5,
            "remaining_length": 251600.0, "used_length": 83640.0,
        },
        {
            "id": 7, "registered": "2024-02-01T00:00:00Z", "archived": False,
            "filament": {"id": 2, "name": "Hot \"Pink\"", "material": "PETG",
                         "color_hex": "FF69B4"},
            "remaining_weight": None, "used_weight": 0.0,
            "remaining_length": None, "used_length": 0.0,
        },
    ]


class _Feed(tornado.websocket.WebSocketHandler):
    def initialize(self, standin: "SpoolmanStandin") -> None:
        self.standin = standin

    def open(self, *args: Any) -> None:
        self.standin.sockets.add(self)

    def on_close(self) -> None:
        self.standin.sockets.discard(self)

    def on_message(self, message: Any) -> None:
        pass


class _Base(tornado.web.RequestHandler):
    def initialize(self, standin: "SpoolmanStandin") -> None:
        self.standin = standin

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))


class _Health(_Base):
    def get(self) -> None:
        self.reply({"status": "healthy"})


class _Spool(_Base):
    def get(self, spool_id: str) -> None:
        spool = self.standin.find(int(spool_id))
        if spool is None:
            self.reply({"message": f"No spool with ID {spool_id} found."}, 404)
        else:
            self.reply(spool)


class _Use(_Base):
    def put(self, spool_id: str) -> None:
        spool = self.standin.find(int(spool_id))
        if spool is None:
            self.reply({"message": f"No spool with ID {spool_id} found."}, 404)
            return
        body = json.loads(self.request.body or b"{}")
        self.standin.use_reports.append((int(spool_id), body))
        length = body.get("use_length")
        if isinstance(length, (int, float)):
            spool["used_length"] = (spool.get("used_length") or 0.0) + length
            if spool.get("remaining_length") is not None:
                spool["remaining_length"] -= length
        self.reply(spool)


class SpoolmanStandin:
    def __init__(self, spools: Optional[List[Dict[str, Any]]] = None) -> None:
        self.spools = spools if spools is not None else sample_spools()
        self.sockets: set = set()
        self.use_reports: List[Any] = []
        self.list_requests = 0
        self.port = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Optional[tornado.httpserver.HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spool_list(self) -> List[Dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.spools)

    def find(self, spool_id: int) -> Optional[Dict[str, Any]]:
        for spool in self.spools:
            if spool.get("id") == spool_id:
                return spool
        return None

    def start(self) -> "SpoolmanStandin":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            args = {"standin": self}
            app = tornado.web.Application([
                (r"/api/v1/health", _Health, args),
                (r"/api/v1/spool", _SpoolFeedOrList, args),
                (r"/api/v1/spool/([0-9]+)", _Spool, args),
                (r"/api/v1/spool/([0-9]+)/use", _Use, args),
            ])
            self._server = tornado.httpserver.HTTPServer(app)
            self._server.add_sockets([sock])
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="spoolman-standin", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def _call(self, func: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        done = threading.Event()

        def wrapper() -> None:
            try:
                func()
            finally:
                done.set()
        loop.call_soon_threadsafe(wrapper)
        done.wait(5)

    def close_websockets(self) -> None:
        self._call(lambda: [ws.close(1001, "stand-in closing") for ws in list(self.sockets)])

    def stop(self) -> None:
        """Go away: stop listening, drop the websockets, stop the thread."""
        if self._loop is None:
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.stop()
            for ws in list(self.sockets):
                ws.close(1001, "stand-in stopped")
        self._call(shutdown)
        loop = self._loop
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> "SpoolmanStandin":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _SpoolFeedOrList(_Feed):
    """/api/v1/spool: Moonraker opens it as a websocket, the exporter GETs the list."""

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            await super().get(*args, **kwargs)
            return
        self.standin.list_requests += 1
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.standin.spool_list()))
