"""`python -m moonraker_prometheus.remote [--listen :9101] [--target HOST:PORT ...]
[--targets-file FILE] [--allow-any-target] [--config FILE]`.

Exit status 2 with a message naming the key when a file is broken, 1 when the address
cannot be listened on.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Dict, List, Optional

from .. import __version__
from ..sidecar.config import ConfigError
from .config import RemoteConfig, TargetsFileError, load_config, load_targets_file
from .server import Exporter, TargetsFileStatus, listen
from .target import TargetSpec, normalize_target

log = logging.getLogger("moonraker_prometheus.remote")
TARGETS_FILE_POLL = 5.0  # seconds between checks of the targets file


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    """The command line (argparse exits with status 2 and a message on a bad one)."""
    parser = argparse.ArgumentParser(
        prog="python -m moonraker_prometheus.remote",
        description="Serve /probe?target=HOST:PORT for Moonraker printers, as "
                    "prometheus-klipper-exporter does, and /metrics for itself.")
    parser.add_argument("--listen", default=":9101",
                        help="HOST:PORT to listen on (default :9101, every interface)")
    parser.add_argument("--target", action="append", default=[],
                        help="a target a probe may name (repeatable)")
    parser.add_argument("--targets-file",
                        help="Prometheus file_sd targets (JSON, or YAML by extension), "
                             "reloaded when it changes")
    parser.add_argument("--allow-any-target", action="store_true",
                        help="probe any HOST:PORT a scraper names")
    parser.add_argument("--config", help="YAML: listener TLS and basic auth, per-target "
                                         "credentials, limits (docs/remote.md)")
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def listed_targets(cfg: RemoteConfig, cli: List[str], from_file: List[str]
                   ) -> Dict[str, TargetSpec]:
    """Every listed target: the config's entries (with their settings), then --target and
    the targets file's addresses (plain ones, unless the config has their settings)."""
    listed = dict(cfg.targets)
    for raw in [*cli, *from_file]:
        address = normalize_target(raw)
        if address is None:
            raise ConfigError("--target", f"{raw!r} is not HOST:PORT")
        listed.setdefault(address, TargetSpec(address))
    return listed


def main(argv: Optional[List[str]] = None) -> int:
    """The console command: serves until SIGTERM or SIGINT; the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "debug":  # a line per probe: thousands a minute on a farm
        logging.getLogger("tornado.access").setLevel(logging.WARNING)
    try:
        cfg = load_config(args.config) if args.config else RemoteConfig()
        from_file = load_targets_file(args.targets_file) if args.targets_file else []
        listed = listed_targets(cfg, args.target, from_file)
    except ConfigError as e:
        print(f"remote: config error: {e}", file=sys.stderr)
        return 2
    allow_any = args.allow_any_target or cfg.allow_any_target
    if not listed and not allow_any:
        log.warning("no target listed and --allow-any-target not set: every probe will "
                    "be refused (403)")
    return asyncio.run(_serve(args, cfg, listed, allow_any))


async def _watch_targets(path: str, exporter: Exporter, cfg: RemoteConfig,
                         cli: List[str], status: TargetsFileStatus) -> None:
    """Reloads the targets file when its modification time or size changes, read and
    parsed in a thread (never on the event loop); a broken file is logged, counted in
    `status` by reason and the last good list kept."""
    def stamp() -> object:
        try:
            st = os.stat(path)
            return (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return None

    seen = stamp()
    while True:
        await asyncio.sleep(TARGETS_FILE_POLL)
        now = stamp()
        if now == seen:
            continue
        seen = now
        try:
            from_file = await asyncio.get_running_loop().run_in_executor(
                None, load_targets_file, path)
            listed = listed_targets(cfg, cli, from_file)
        except ConfigError as e:
            status.failed(e.reason if isinstance(e, TargetsFileError) else "format")
            log.error("targets file not reloaded, keeping the last list: %s", e)
            continue
        status.loaded()
        await exporter.relist(listed)
        log.info("targets file reloaded: %d targets listed", len(listed))


async def _serve(args: argparse.Namespace, cfg: RemoteConfig,
                 listed: Dict[str, TargetSpec], allow_any: bool) -> int:
    status = TargetsFileStatus() if args.targets_file else None
    if status is not None:
        status.loaded()  # main() loaded it
    exporter = Exporter(listed, __version__, cfg.limits, allow_any, cfg.max_targets, status)
    try:
        server, auth = listen(exporter, cfg.web, args.listen, cfg.scrape_timeout)
    except ConfigError as e:
        print(f"remote: config error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"remote: cannot listen on {args.listen}: {e}", file=sys.stderr)
        return 1
    exporter.start()
    watcher = None
    if status is not None:
        watcher = asyncio.get_running_loop().create_task(
            _watch_targets(args.targets_file, exporter, cfg, args.target, status))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    server.stop()
    await exporter.close()
    if auth is not None:
        auth.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
