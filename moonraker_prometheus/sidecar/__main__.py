"""`python -m moonraker_prometheus.sidecar --config sidecar.yml [--web.config.file web.yml]`.

reverse_exporter's spellings work too, so its unit files need only the command changed:
`--config-file`, `--config.file` and, as Go's flag package allows, each with one dash
(`-config.file`, `-config-file`, `-web.config.file`); `=value` or a separate value.
Exit status 2 with a message naming the key when a config file is broken.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import List, Optional

from .config import ConfigError, load_config
from .server import Sidecar
from .webconfig import WebConfig, load_web_config


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m moonraker_prometheus.sidecar",
                                     description="Merge Prometheus exporters into one endpoint.")
    parser.add_argument("--config", "--config-file", "--config.file", "-config",
                        "-config-file", "-config.file", dest="config", required=True,
                        help="reverse_exporter-style YAML file")
    parser.add_argument("--web.config.file", "-web.config.file", dest="web_config",
                        help="exporter-toolkit web config (TLS, basic auth)")
    parser.add_argument("--log.level", "-log.level", dest="log_level", default="info",
                        choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config)
        web = load_web_config(args.web_config) if args.web_config else WebConfig()
    except ConfigError as e:
        print("sidecar: config error: %s" % e, file=sys.stderr)
        return 2
    for warning in cfg.warnings:
        logging.warning(warning)
    return asyncio.run(_serve(cfg, web))


async def _serve(cfg, web) -> int:
    sidecar = Sidecar(cfg, web)
    try:
        sidecar.start()
    except ConfigError as e:
        print("sidecar: config error: %s" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("sidecar: cannot listen: %s" % e, file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sidecar.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
