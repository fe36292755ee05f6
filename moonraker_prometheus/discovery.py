"""Find a farm's printers and write a Prometheus file_sd target file for them.

Run on the Prometheus host (not on a printer), by hand, from cron or from a systemd timer:

    python -m moonraker_prometheus.discovery --output /etc/prometheus/file_sd/klipper.json \\
        --zeroconf --host printer1.local:7125 --hosts-file /etc/prometheus/printers.txt

Candidates come from Moonraker's zeroconf announcements (`_moonraker._tcp.local.`, sent by
Moonraker's `[zeroconf]` component; browsed with the `zeroconf` library) and from hosts
given on the command line or in a file (one `host[:port]` per line, `#` comments). Each
candidate is verified by fetching `/server/metrics?modules=klippy` from it: only a target
that answers with this component's families is written, labelled `printer` with the name it
gives in `klipper_printer_info` (the `[prometheus] printer_name` option). Candidates that
fail are reported on stderr and never written, except targets the previous file already
held: those are kept with their last labels (reported as kept), so that a printer that stops
answering stays a target and its `up == 0` alert fires instead of it silently vanishing
(`--drop-unreachable` drops them). Candidates are checked concurrently with a timeout each,
so one unreachable printer neither drops nor delays the others. The file is written to a
temporary file in the same folder and renamed over the old one (atomic: Prometheus never
reads a half-written file), and only when its content changes.

Exit status: 0 when the file is up to date (even if some candidates failed), 1 when no
target could be written and the file was left as it was, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import requests
from prometheus_client.parser import text_string_to_metric_families

SERVICE_TYPE = "_moonraker._tcp.local."
METRICS_PATH = "/server/metrics"
DEFAULT_PORT = 7125
NAME_FAMILY = "klipper_printer_info"
HEALTH_FAMILY = "klipper_klippy_connected"


@dataclass
class Candidate:
    """A host:port that may be a printer, and where it was found (for the report)."""
    target: str
    found_by: str


@dataclass
class Result:
    """The outcome of verifying one candidate: labels when good, else the reason."""
    candidate: Candidate
    labels: Dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def normalise(host: str, default_port: int = DEFAULT_PORT) -> str:
    """`host`, `host:port`, `[v6]:port` or `http://host:port/` to `host:port`.

    Raises ValueError for an empty value, a path or a port that is not a number."""
    text = host.strip()
    for scheme in ("http://", "https://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    text = text.rstrip("/")
    if not text or "/" in text or any(c.isspace() for c in text):
        raise ValueError(f"not a host[:port]: {host!r}")
    if text.startswith("["):  # [IPv6]:port
        addr, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else str(default_port)
        text = f"[{addr}]:{port}"
    elif text.count(":") == 1:
        port = text.split(":")[1]
    elif ":" in text:  # a bare IPv6 address
        text, port = f"[{text}]:{default_port}", str(default_port)
    else:
        port = str(default_port)
        text = f"{text}:{port}"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in {host!r}")
    return text


def read_hosts_file(path: str) -> List[str]:
    """Hosts listed one per line; blank lines and `#` comments are skipped."""
    with open(path, encoding="utf-8") as f:
        return [line.split("#", 1)[0].strip() for line in f
                if line.split("#", 1)[0].strip()]


def browse_zeroconf(seconds: float, interfaces: Optional[Sequence[str]] = None
                    ) -> List[Candidate]:
    """Moonraker instances announcing `_moonraker._tcp.local.` within `seconds`.

    One candidate per announced address and port. Raises OSError when no multicast
    socket can be opened (no network, no multicast route)."""
    from zeroconf import InterfaceChoice, ServiceBrowser, ServiceListener, Zeroconf

    names: List[str] = []

    class Listener(ServiceListener):
        def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            names.append(name)

        def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            if name not in names:
                names.append(name)

        def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            pass

    zc = Zeroconf(interfaces=list(interfaces) if interfaces else InterfaceChoice.All)
    try:
        ServiceBrowser(zc, SERVICE_TYPE, Listener())
        time.sleep(seconds)
        found: List[Candidate] = []
        for name in list(names):
            info = zc.get_service_info(SERVICE_TYPE, name, timeout=3000)
            if info is None or not info.port:
                print(f"discovery: zeroconf: {name}: no address announced", file=sys.stderr)
                continue
            for address in info.parsed_addresses():
                host = f"[{address}]" if ":" in address else address
                found.append(Candidate(f"{host}:{info.port}", f"zeroconf ({name})"))
        return found
    finally:
        zc.close()


def verify(candidate: Candidate, session: requests.Session, timeout: float,
           scheme: str = "http") -> Result:
    """Fetch the candidate's /server/metrics?modules=klippy and read its name.

    Never raises: every failure (connection, HTTP status, not this component's metrics,
    unparsable exposition) is the Result's error."""
    url = f"{scheme}://{candidate.target}{METRICS_PATH}"
    try:
        r = session.get(url, params={"modules": "klippy"}, timeout=timeout)
    except requests.RequestException as e:
        return Result(candidate, error=f"unreachable: {type(e).__name__}: {e}")
    if r.status_code in (401, 403):
        return Result(candidate, error=f"HTTP {r.status_code} from {METRICS_PATH}: add this "
                                       f"host to [authorization] trusted_clients or pass "
                                       f"--api-key-file")
    if r.status_code != 200:
        return Result(candidate, error=f"HTTP {r.status_code} from {METRICS_PATH}: not a "
                                       f"Moonraker with the [prometheus] component")
    try:
        families = {f.name: f for f in text_string_to_metric_families(r.text)}
    except Exception as e:  # the parser raises ValueError and others on garbage
        return Result(candidate, error=f"{METRICS_PATH} is not Prometheus text: {e}")
    if HEALTH_FAMILY not in families:
        return Result(candidate, error=f"{METRICS_PATH} has no {HEALTH_FAMILY}: not "
                                       f"moonraker-prometheus")
    labels: Dict[str, str] = {}
    info = families.get(NAME_FAMILY)
    if info is not None and info.samples:
        name = info.samples[0].labels.get("printer", "")
        if name:
            labels["printer"] = name
    if "printer" not in labels:  # an older component: name it by its address
        labels["printer"] = candidate.target.rsplit(":", 1)[0].strip("[]")
    return Result(candidate, labels=labels)


def verify_all(candidates: Iterable[Candidate], timeout: float, api_key: str = "",
               scheme: str = "http", workers: int = 16) -> List[Result]:
    """Verify every distinct target concurrently; results in candidate order."""
    unique: Dict[str, Candidate] = {}
    for c in candidates:
        unique.setdefault(c.target, c)
    session = requests.Session()
    if api_key:
        session.headers["X-Api-Key"] = api_key
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda c: verify(c, session, timeout, scheme), unique.values()))


def previous_targets(path: str) -> Dict[str, Dict[str, str]]:
    """target -> labels from an existing file_sd file ({} when missing or unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            groups = json.load(f)
    except (OSError, ValueError):
        return {}
    out: Dict[str, Dict[str, str]] = {}
    if isinstance(groups, list):
        for group in groups:
            if isinstance(group, dict):
                for target in group.get("targets", []) or []:
                    out[str(target)] = dict(group.get("labels") or {})
    return out


def target_groups(results: Sequence[Result], previous: Dict[str, Dict[str, str]],
                  extra_labels: Dict[str, str], keep_unreachable: bool
                  ) -> Tuple[List[Dict[str, object]], List[str]]:
    """file_sd groups (one per target, sorted) and the report lines."""
    report: List[str] = []
    chosen: Dict[str, Dict[str, str]] = {}
    for r in results:
        target = r.candidate.target
        if r.ok:
            chosen[target] = {**extra_labels, **r.labels}
            report.append(f"ok      {target} printer={r.labels['printer']!r} "
                          f"(from {r.candidate.found_by})")
        elif keep_unreachable and target in previous:
            chosen[target] = previous[target]
            report.append(f"kept    {target}: {r.error} (in the previous file: kept so "
                          f"its up==0 alert fires)")
        else:
            report.append(f"BAD     {target}: {r.error} (from {r.candidate.found_by}; "
                          f"not written)")
    names: Dict[str, List[str]] = {}
    for target, labels in chosen.items():
        names.setdefault(labels.get("printer", ""), []).append(target)
    for name, targets in sorted(names.items()):
        if len(targets) > 1:
            report.append(f"WARNING printer name {name!r} is used by {', '.join(sorted(targets))}:"
                          f" set a distinct printer_name in each [prometheus] section")
    groups = [{"targets": [t], "labels": chosen[t]} for t in sorted(chosen)]
    return groups, report


def write_atomic(path: str, text: str) -> bool:
    """Replace `path` with `text` atomically; False when it already held exactly that."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".discovery-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m moonraker_prometheus.discovery",
        description="Write a Prometheus file_sd file listing the farm's printers, found "
                    "through Moonraker's zeroconf announcements and/or a host list, each "
                    "verified to serve /server/metrics and labelled with its printer name.")
    p.add_argument("--output", "-o", required=True,
                   help="file_sd JSON file to write (replaced atomically)")
    p.add_argument("--host", action="append", default=[], metavar="HOST[:PORT]",
                   help="a printer's Moonraker (repeatable; default port 7125)")
    p.add_argument("--hosts-file", action="append", default=[], metavar="FILE",
                   help="file with one HOST[:PORT] per line (# comments)")
    p.add_argument("--zeroconf", action="store_true",
                   help="browse for Moonraker's _moonraker._tcp zeroconf announcements")
    p.add_argument("--browse-seconds", type=float, default=5.0,
                   help="how long to listen for zeroconf announcements (default 5)")
    p.add_argument("--interface", action="append", default=[], metavar="ADDRESS",
                   help="only browse on the interface with this address (repeatable)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds to wait for each printer's answer (default 5)")
    p.add_argument("--api-key-file", metavar="FILE",
                   help="file holding a Moonraker API key, sent as X-Api-Key (when the "
                        "Prometheus host is not in trusted_clients)")
    p.add_argument("--https", action="store_true", help="talk HTTPS to the printers")
    p.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                   help="extra target label for every printer written (repeatable)")
    p.add_argument("--drop-unreachable", action="store_true",
                   help="drop targets of the previous file that fail now (default: keep "
                        "them, so their up==0 alert fires)")
    args = p.parse_args(argv)
    if not (args.host or args.hosts_file or args.zeroconf):
        p.error("give --zeroconf, --host or --hosts-file")
    if args.timeout <= 0 or args.browse_seconds <= 0:
        p.error("--timeout and --browse-seconds must be positive")
    labels = {}
    for item in args.label:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier() or name.startswith("__"):
            p.error(f"--label wants NAME=VALUE with a valid label name, not {item!r}")
        labels[name] = value
    args.labels = labels
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    candidates: List[Candidate] = []
    hosts = [(h, "--host") for h in args.host]
    for path in args.hosts_file:
        try:
            hosts += [(h, path) for h in read_hosts_file(path)]
        except OSError as e:
            print(f"discovery: cannot read {path}: {e}", file=sys.stderr)
            return 2
    for host, source in hosts:
        try:
            candidates.append(Candidate(normalise(host), source))
        except ValueError as e:
            print(f"BAD     {host}: {e} (from {source}; not written)", file=sys.stderr)
    if args.zeroconf:
        try:
            candidates += browse_zeroconf(args.browse_seconds, args.interface)
        except OSError as e:
            print(f"discovery: zeroconf browsing failed: {e}", file=sys.stderr)
    api_key = ""
    if args.api_key_file:
        with open(args.api_key_file, encoding="utf-8") as f:
            api_key = f.read().strip()
    results = verify_all(candidates, args.timeout, api_key,
                         "https" if args.https else "http")
    groups, report = target_groups(results, previous_targets(args.output), args.labels,
                                   keep_unreachable=not args.drop_unreachable)
    for line in report:
        print(line, file=sys.stderr)
    if not groups:
        print(f"discovery: no printer answered; {args.output} left as it was",
              file=sys.stderr)
        return 1
    changed = write_atomic(args.output, json.dumps(groups, indent=2) + "\n")
    print(f"discovery: {len(groups)} target(s) {'written to' if changed else 'unchanged in'} "
          f"{args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
