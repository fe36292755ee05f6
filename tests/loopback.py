"""A TCP server on 127.0.0.1 for tests that stand between the exporter and Moonraker: a host
that never answers, a link that can be cut, a TLS front (tests/test_remote*.py)."""
from __future__ import annotations

import socket
import threading
from typing import List


class LoopbackServer:
    """Listens on a free port of 127.0.0.1 (`port`) and hands each connection it accepts to
    handle() on its accept thread. close() closes the listening socket and every socket in
    `open`. A subclass sets what handle() needs before calling this __init__ (the accept
    thread starts in it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.open: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        """An accepted connection: kept open, never answered."""
        self.open.append(conn)

    def close(self) -> None:
        self.sock.close()
        for s in self.open:
            s.close()
