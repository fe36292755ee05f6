#!/usr/bin/env python3
"""Are the outputs of the component, the sidecar and the discovery tool the same bytes at
revision REV as in the working tree?

    .venv/moonraker/bin/python scripts/compare_outputs.py --before 16e79c5

REV is checked out with `git worktree add` into a temporary folder (removed at the end);
each tree is run in processes of its own, with only that tree's package on the path, from
fixed inputs that this script and the working tree's simulator/moonraker_standin.py,
simulator/printer_status.json and bench/merge_corpus.py give both trees alike:

- component: the body of a scrape (`collectors.renderer.Renderer`, the component's and the
  central exporter's one renderer) on simulator/moonraker_standin.py's stand-in Moonraker:
  every module with every component known and the recorded simulated printer (plus Happy
  Hare and CFS objects), again after a status push, a selection of Go module names, components knowing
  nothing, no component at all; and `python -m moonraker_prometheus.docs`
  (docs/metrics.md, the catalogue as text);
- sidecar: the standalone sidecar (`python -m moonraker_prometheus.sidecar --config`)
  merging files of bench/merge_corpus.py bodies (labels added, families dropped, a glob,
  no_rewrite), scraped three times (the merge's line parser, then its replay of the last
  scrape's layout);
- discovery: `python -m moonraker_prometheus.discovery` against stand-in Moonrakers served
  by this script (good ones, one instance at two addresses, a 401, a 404, a 500 for a
  printer the previous file held, a hosts file, --label).

Only public entry points are used (the Renderer, the `python -m` programs), so the script
keeps working while the package is refactored. Values that move between two renders in one
tree (durations, ages, uptime, timestamps) are shown as `<moves>`; time.time() and
shutil.disk_usage() are fixed in the component's process. Prints `same` or a unified diff
per output; exit status 0 when every output is the same, 1 otherwise, 2 on a bad REV.
"""
from __future__ import annotations

import argparse
import asyncio
import difflib
import http.server
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from types import ModuleType, SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXED_TIME = 1_765_000_000.0  # time.time() in the component's process
FIXED_MTIME = 1_765_000_000  # of the sidecar's input files
MOVES = "<moves>"
# the sidecar process' own families (client_python's process and GC collectors)
PROCESS_FAMILIES = ("process_", "python_gc_")
PACKAGE = " package"  # the dump's key for the path of the package it imported


def load(relative: str, name: str) -> ModuleType:
    """A module of the working tree by its path (whichever tree's package is imported)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relative))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def mask(texts: Sequence[str], always: Sequence[str] = ()) -> List[str]:
    """`texts` (renders of one thing) with the value of each sample line that differs
    between them, or whose name starts with one of `always`, replaced by MOVES; unchanged
    where their lines do not pair up."""
    split = [[line.rpartition(" ")[0] + " " + MOVES if line.startswith(tuple(always))
              else line for line in t.split("\n")] for t in texts]
    if len({len(lines) for lines in split}) != 1:
        return ["\n".join(lines) for lines in split]
    for i, group in enumerate(zip(*split)):
        if len(set(group)) > 1 and not group[0].startswith("#"):
            series = {line.rpartition(" ")[0] for line in group}
            if len(series) == 1:
                for lines in split:
                    lines[i] = series.copy().pop() + " " + MOVES
    return ["\n".join(lines) for lines in split]


# ----- component (run in a process of its own, on the tree's package) -----

async def _component_outputs() -> Dict[str, str]:
    from moonraker_prometheus.collectors import module_names, resolve_modules
    from moonraker_prometheus.collectors.renderer import Renderer
    fakes = load("simulator/moonraker_standin.py", "compare_fakes")

    class Apis(fakes.FakeApis):  # type: ignore[name-defined,misc]  # loaded by path
        async def query_objects(self, objects: Dict[str, Any], default: Any = None) -> Any:
            return {name: {k: v for k, v in self.status.get(name, {}).items()
                           if fields is None or k in fields}
                    for name, fields in objects.items()}

    def ready_printer() -> Tuple[Any, Dict[str, Any]]:
        objects, status = fakes.recorded_printer()
        status = {**status, **fakes.ADDON_OBJECTS}
        apis = Apis([*objects, *fakes.ADDON_OBJECTS], status)
        components = fakes.printer_components(apis)
        connection = components["klippy_connection"]
        connection.state = SimpleNamespace(name="READY", message="")
        connection.is_connected = lambda: True
        return apis, components

    async def scrape(server: Any, modules: Sequence[str], ready: bool,
                     between: Optional[Callable[[], None]] = None) -> str:
        renderer = Renderer(server, "0.0.0-compare")
        await renderer.start()
        await asyncio.sleep(0.05)  # background refreshes run once
        if ready:
            await fakes.klippy_ready(server)
        await asyncio.sleep(0.05)
        if between is not None:
            between()
        bodies = []
        for _ in range(2):
            body = renderer.render(list(modules))
            bodies.append(body.decode("utf-8") if isinstance(body, bytes) else body)
            await asyncio.sleep(0.02)
        await renderer.close()
        return mask(bodies, ("klipper_exporter_collector_duration_seconds",))[0]

    every = [m for m in module_names() if m != "exporters"]
    gcodes = tempfile.mkdtemp(prefix="compare-outputs-gcodes-")
    out: Dict[str, str] = {}
    try:
        apis, printer = ready_printer()
        server = fakes.FakeServer({**fakes.known_components(gcodes), **printer},
                                  warnings={"w": "a warning"}, failed=["broken"])
        out["component: every module, everything known"] = await scrape(server, every, True)

        apis, printer = ready_printer()
        server = fakes.FakeServer({**fakes.known_components(gcodes), **printer})

        def push() -> None:  # Klippy's subscription pushes a change
            for callback in apis.callbacks:
                callback({"extruder": {"target": 215.0, "temperature": 180.5},
                          "heater_bed": {"target": 0.0},
                          "temperature_sensor chamber": {"temperature": 31.25},
                          "print_stats": {"state": "printing"}}, 2.0)
        out["component: every module, after a status push"] = await scrape(
            server, every, True, push)

        apis, printer = ready_printer()
        server = fakes.FakeServer({**fakes.known_components(gcodes), **printer})
        known, _ = resolve_modules(["printer_objects", "server_info", "directory_info",
                                    "temperature", "history"])
        out["component: Go module names"] = await scrape(server, known, True)

        apis, printer = ready_printer()
        printer["klippy_connection"].ready = False
        printer["klippy_connection"].state = SimpleNamespace(
            name="STARTUP", message="Klippy is starting")
        server = fakes.FakeServer({**fakes.unknown_components(), **printer}, version=None)
        out["component: nothing known, Klippy starting"] = await scrape(server, every, False)
    finally:
        shutil.rmtree(gcodes, ignore_errors=True)
    return out


def dump_component() -> None:
    """Print the component's outputs as JSON (run with the tree's folder first on the path)."""
    time.time = lambda: FIXED_TIME  # type: ignore[assignment]  # ages and timestamps fixed
    shutil.disk_usage = lambda path: SimpleNamespace(  # type: ignore[assignment]  # fixed
        total=64_000_000_000, used=24_000_000_000, free=40_000_000_000)
    outputs = asyncio.run(_component_outputs())
    import moonraker_prometheus
    outputs[PACKAGE] = moonraker_prometheus.__file__
    json.dump(outputs, sys.stdout)


# ----- the other programs, run per tree from this process -----

def _env(tree: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = tree
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args: Sequence[str], tree: str, cwd: str, timeout: float = 120
         ) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, env=_env(tree), capture_output=True,
                          text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def component(python: str, tree: str, work: str) -> Dict[str, str]:
    done = _run([python, os.path.abspath(__file__), "--dump-component"], tree, work)
    if done.returncode != 0:
        return {"component": "failed (exit %d):\n%s" % (done.returncode, done.stderr)}
    outputs: Dict[str, str] = json.loads(done.stdout)
    package = outputs.pop(PACKAGE)
    if not package.startswith(os.path.join(tree, "")):
        return {"component": f"imported {package}, not the package of {tree}"}
    docs = _run([python, "-m", "moonraker_prometheus.docs"], tree, work)
    outputs["component: python -m moonraker_prometheus.docs"] = (
        docs.stdout if docs.returncode == 0 else "failed:\n" + docs.stderr)
    return outputs


def write_sidecar_inputs(folder: str) -> None:
    corpus = load("bench/merge_corpus.py", "compare_merge_corpus")
    bodies = {"node_a.prom": corpus.node_like(3000, seed=1),
              "node_b.prom": corpus.node_like(500, seed=2),
              os.path.join("glob", "one.prom"): corpus.node_like(100, seed=3),
              os.path.join("glob", "two.prom"): corpus.node_like(100, seed=4)}
    os.makedirs(os.path.join(folder, "glob"), exist_ok=True)
    for name, body in bodies.items():
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(body)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))


def sidecar(python: str, tree: str, work: str, inputs: str) -> Dict[str, str]:
    port = _free_port()
    config = os.path.join(work, "sidecar.yml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"""web:
  listen:
    - tcp://127.0.0.1:{port}
reverse_exporters:
  - path: /metrics
    exporters:
      file:
        - name: node_a
          path: {inputs}/node_a.prom
          labels:
            host_role: printer
        - name: node_b
          path: {inputs}/node_b.prom
          drop: ["node_odd_label_.*", "http_request_duration_seconds_1"]
        - name: textfiles
          path: {inputs}/glob/*.prom
  - path: /raw
    exporters:
      file:
        - name: raw
          path: {inputs}/node_b.prom
          no_rewrite: true
""")
    proc = subprocess.Popen([python, "-m", "moonraker_prometheus.sidecar", "--config", config],
                            cwd=work, env=_env(tree), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    out: Dict[str, str] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    return {"sidecar": "did not start:\n" + (proc.communicate()[1] or "")}
                time.sleep(0.1)
        for path in ("/metrics", "/raw"):
            scrapes = []
            for _ in range(3):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
                    scrapes.append(r.read().decode("utf-8"))
            first, second, third = mask(scrapes, PROCESS_FAMILIES)
            out[f"sidecar {path}: first scrape"] = first
            out[f"sidecar {path}: later scrapes"] = second if second == third else (
                second + "\n--- third scrape differs ---\n" + third)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out


class StandInMoonrakers:
    """Moonrakers answering what the discovery tool asks, one port each; `behaviour[port]`
    is "ok", or an HTTP status the port answers everything with."""

    def __init__(self, printers: Sequence[Tuple[str, str]]) -> None:
        self.servers: List[http.server.ThreadingHTTPServer] = []
        self.behaviour: Dict[int, str] = {}
        for name, uuid in printers:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler(name, uuid))
            self.servers.append(server)
            self.behaviour[self.port(len(self.servers) - 1)] = "ok"
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def port(self, i: int) -> int:
        return int(self.servers[i].server_address[1])

    def _handler(self, name: str, uuid: str) -> type:
        behaviour = self.behaviour

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                how = behaviour[self.server.server_address[1]]
                path = self.path.split("?")[0]
                if how != "ok" and path != "/access/info":
                    return self._send(int(how), "text/plain", "no\n")
                if path == "/server/metrics":
                    return self._send(200, "text/plain; version=0.0.4", (
                        "# TYPE klipper_klippy_connected gauge\nklipper_klippy_connected 1\n"
                        "# TYPE klipper_printer_info gauge\n"
                        f'klipper_printer_info{{printer="{name}",host="{name}-host",'
                        'klipper_version="v0.12.0",moonraker_version="v0.9.3",'
                        'component_version="0.1"} 1\n'))
                if path == "/server/database/item":
                    return self._send(200, "application/json",
                                      json.dumps({"result": {"value": uuid}}))
                if path == "/access/info":
                    return self._send(200, "application/json",
                                      json.dumps({"result": {"login_required": False}}))
                return self._send(404, "text/plain", "not found\n")

            def _send(self, status: int, kind: str, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass
        return Handler

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def discovery(python: str, tree: str, work: str, moonrakers: StandInMoonrakers
              ) -> Dict[str, str]:
    ports = [moonrakers.port(i) for i in range(len(moonrakers.servers))]
    for port in ports:
        moonrakers.behaviour[port] = "ok"
    moonrakers.behaviour[ports[2]] = "401"
    moonrakers.behaviour[ports[3]] = "404"
    hosts = os.path.join(work, "printers.txt")
    with open(hosts, "w", encoding="utf-8") as f:
        f.write(f"# the farm\n127.0.0.1:{ports[1]}\nhttp://127.0.0.1:{ports[0]}  # again\n"
                f"127.0.0.1:{ports[3]}\n")
    output = os.path.join(work, "targets.json")
    command = [python, "-m", "moonraker_prometheus.discovery", "--output", output,
               "--timeout", "5"]
    out: Dict[str, str] = {}

    def run(title: str, args: Sequence[str]) -> None:
        done = _run(command + list(args), tree, work)
        text = ""
        if os.path.exists(output):
            with open(output, encoding="utf-8") as f:
                text = f.read()
        out[f"discovery: {title}"] = ("exit %d\n--- stderr\n%s--- %s\n%s" % (
            done.returncode, done.stderr, os.path.basename(output), text)
            ).replace(work, "<work>")

    run("hosts and a hosts file", ["--host", f"127.0.0.1:{ports[0]}",
                                   "--host", f"127.0.0.1:{ports[2]}",
                                   "--hosts-file", hosts, "--label", "site=lab"])
    run("the same again", ["--host", f"127.0.0.1:{ports[0]}", "--hosts-file", hosts,
                           "--label", "site=lab"])
    moonrakers.behaviour[ports[1]] = "500"
    run("a printer of the previous file fails", ["--host", f"127.0.0.1:{ports[0]}",
                                                 "--hosts-file", hosts, "--label", "site=lab"])
    run("... and is dropped", ["--host", f"127.0.0.1:{ports[0]}", "--hosts-file", hosts,
                               "--drop-unreachable"])
    moonrakers.behaviour[ports[0]] = moonrakers.behaviour[ports[1]] = "500"
    run("no printer answers", ["--host", f"127.0.0.1:{ports[0]}", "--hosts-file", hosts])
    os.remove(output)
    return out


# ----- the comparison -----

def outputs_of(python: str, tree: str, work: str, inputs: str,
               moonrakers: StandInMoonrakers) -> Dict[str, str]:
    os.makedirs(work)
    outputs = component(python, tree, work)
    outputs.update(sidecar(python, tree, work, inputs))
    outputs.update(discovery(python, tree, work, moonrakers))
    return outputs


def compare(before: Dict[str, str], after: Dict[str, str], rev: str) -> bool:
    same = True
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a == b:
            print(f"same       {name} ({len((a or '').encode())} bytes)")
            continue
        same = False
        print(f"DIFFERENT  {name}")
        sys.stdout.writelines(difflib.unified_diff(
            (a or "").splitlines(keepends=True), (b or "").splitlines(keepends=True),
            f"{rev}: {name}", f"working tree: {name}"))
        print()
    return same


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="REV", help="the revision to compare with")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter to run both trees with (default: this one)")
    parser.add_argument("--dump-component", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dump_component:
        dump_component()
        return 0
    if not args.before:
        parser.error("--before REV is required")
    temp = tempfile.mkdtemp(prefix="compare-outputs-")
    before_tree = os.path.join(temp, "before")
    moonrakers = StandInMoonrakers([("voron", "uuid-voron"), ("prusa", "uuid-prusa"),
                                    ("locked", "uuid-locked"), ("other", "")])
    try:
        added = subprocess.run(["git", "worktree", "add", "--detach", "--quiet", before_tree,
                                args.before], cwd=REPO, capture_output=True, text=True)
        if added.returncode != 0:
            print(f"compare_outputs: cannot check out {args.before}: {added.stderr.strip()}",
                  file=sys.stderr)
            return 2
        inputs = os.path.join(temp, "inputs")
        write_sidecar_inputs(inputs)
        before = outputs_of(args.python, before_tree, os.path.join(temp, "run-before"),
                            inputs, moonrakers)
        after = outputs_of(args.python, REPO, os.path.join(temp, "run-after"), inputs,
                           moonrakers)
        return 0 if compare(before, after, args.before) else 1
    finally:
        moonrakers.close()
        if os.path.isdir(before_tree):
            subprocess.run(["git", "worktree", "remove", "--force", before_tree], cwd=REPO,
                           capture_output=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
