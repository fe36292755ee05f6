"""Stand-in HTTP backends and exec scripts for the sidecar's tests and bench/bench_soak.py.

    b = Backend(); b.body("/metrics", b"up 1\n"); b.url("/metrics"); b.close()
    write_script(path, "echo 'x 1'\n")  # an executable /bin/sh script
"""
from __future__ import annotations

import os
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple

Route = Callable[[BaseHTTPRequestHandler], None]


class Backend:
    """A threaded HTTP stub; routes map a path to a function writing the response."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None, unix_path: Optional[str] = None,
                 port: int = 0) -> None:
        """Serve on 127.0.0.1:`port` (0: any free port, then in self.port) or `unix_path`."""
        self.routes: Dict[str, Route] = {}
        self.requests: List[Tuple[str, Dict[str, str]]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                backend.requests.append((self.path, dict(self.headers)))
                route = backend.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        if unix_path:
            self.server = socketserver.ThreadingUnixStreamServer(unix_path, Handler)
            self.port = 0
        else:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            self.port = self.server.server_address[1]
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def body(self, path: str, data: bytes, status: int = 200, delay: float = 0.0,
             headers: Optional[Dict[str, str]] = None) -> None:
        def route(h: BaseHTTPRequestHandler) -> None:
            if delay:
                time.sleep(delay)
            h.send_response(status)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        self.routes[path] = route

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_script(path: str, body: str) -> str:
    """Write `body` as an executable /bin/sh script at `path`; returns path."""
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path
