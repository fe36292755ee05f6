"""Find a farm's printers and write a Prometheus file_sd target file for them.

Run on the Prometheus host (not on a printer), by hand, from cron or from a systemd timer:

    python -m moonraker_prometheus.discovery --output /etc/prometheus/file_sd/klipper.json \\
        --zeroconf --host printer1.local:7125 --hosts-file /etc/prometheus/printers.txt

Candidates come from Moonraker's zeroconf announcements (`_moonraker._tcp.local.`, sent by
Moonraker's `[zeroconf]` component; browsed with the `zeroconf` library), which carry each
instance's uuid, its `route_prefix` and its HTTPS port, and from hosts given on the command
line or in a file (one `[scheme://]host[:port][/route_prefix]` per line, `#` comments). Each
candidate is verified by fetching `<route_prefix>/server/metrics?modules=klippy` from it:
only a target that answers with this component's families is written, labelled `printer`
with the name it gives in `klipper_printer_info` (the `[prometheus] printer_name` option),
`__scheme__` and `__metrics_path__` (so one scrape job scrapes printers on HTTP, HTTPS and
behind route prefixes alike) and `__meta_moonraker_instance_id` (see below).

One printer is one target however it was found: candidates are grouped by the Moonraker
instance that answered, identified by the uuid it announces over zeroconf (also for a host
listed by a name or address that the announcement carries) or else by the instance id it
stores in its database (`GET /server/database/item?namespace=moonraker&key=instance_id`,
read-only, needs the same authorization as the rest of Moonraker's API), and with the host
name it reports in `klipper_printer_info`. Of several addresses of one printer the tool
writes one, chosen in this order: the one the previous file already held (series keep their
`instance`); one listed by --host or --hosts-file over one announced by zeroconf; a host
name over an IPv4 address over an IPv6 address; the lowest. A candidate whose instance
cannot be identified (it is not announced and its database is not readable) is its own
printer.

Candidates that fail are reported on stderr and never written, except targets the previous
file already held: those are kept with their last labels (reported as kept), so that a
printer that stops answering stays a target and its KlipperTargetDown alert fires instead of it
silently vanishing (`--drop-unreachable` drops them), unless the same instance now answers
at another address (it moved). Candidates are checked concurrently with a timeout each, so
one unreachable printer neither drops nor delays the others. The file is written to a
temporary file in the same folder and renamed over the old one (atomic: Prometheus never
reads a half-written file), and only when its content changes.

With --probe-job the file is for the central exporter's probe job instead
(`python -m moonraker_prometheus.remote`, docs/remote.md: metrics_path /probe, the target
relabelled to `__param_target` and `instance`, `__address__` replaced by the exporter's): the
printers need no component, only Moonraker. A candidate is verified by Moonraker's
`/server/info`; its name is the one given in Mainsail's or Fluidd's settings (Moonraker's
database), else the host name Klippy reports (`/printer/info`, the name the central exporter
serves by default), else its address. The targets are `HOST:PORT` with `printer` and the
instance id only (no `__scheme__` or `__metrics_path__`: those are the exporter's), so the
same file is the exporter's `--targets-file`: it probes exactly the printers written here.
A printer behind a route_prefix or on HTTPS is reported, not written: the exporter reaches
a Moonraker at `HOST:PORT` only, and takes HTTPS printers from its `--config` targets.

Exit status: 0 when the file is up to date (even if some candidates failed), 1 when no
target could be written and the file was left as it was, 2 on bad arguments (including an
API key or CA file that cannot be read).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import ipaddress
import json
import os
import socket
import ssl
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import requests
from prometheus_client.parser import text_string_to_metric_families

from .exposition import is_label_name

SERVICE_TYPE = "_moonraker._tcp.local."
METRICS_PATH = "/server/metrics"
DATABASE_PATH = "/server/database/item"  # ?namespace=...&key=...
SERVER_INFO_PATH = "/server/info"  # the probe job's check: a Moonraker answers here
PRINTER_INFO_PATH = "/printer/info"  # Klippy's host name
# where web interfaces keep the name a user gave the printer, in Moonraker's database
UI_NAMES = (("mainsail", "general.printername"), ("fluidd", "uiSettings.general.instanceName"))
ACCESS_INFO_PATH = "/access/info"  # no authorization needed; says whether logins are forced
DEFAULT_PORT = 7125
NAME_FAMILY = "klipper_printer_info"
HEALTH_FAMILY = "klipper_klippy_connected"
ID_LABEL = "__meta_moonraker_instance_id"
SCHEMES = ("http", "https")
# where a printer's name is set, for the advice when two printers give one name
COMPONENT_NAMING = "[prometheus] printer_name"
PROBE_NAMING = "name (Mainsail's printer name or Fluidd's instance name setting)"


@dataclass
class Candidate:
    """One way to reach what may be a printer, and where it was found (for the report).

    `target` is `host:port` (`[v6]:port`), `prefix` Moonraker's route_prefix (`""` or
    `/path`). A zeroconf candidate also carries the instance uuid and every `host:port` the
    announcement names (`aliases`: its addresses and `<mdns name>.local`, on its HTTP and
    HTTPS ports), or `problem` when it cannot be used as asked."""
    target: str
    found_by: str
    scheme: str = "http"
    prefix: str = ""
    instance_id: str = ""
    aliases: Tuple[str, ...] = ()
    problem: str = ""

    @property
    def url(self) -> str:
        """The scrape URL: the key of a target in the file."""
        return f"{self.scheme}://{self.target}{self.prefix}{METRICS_PATH}"

    @property
    def shown(self) -> str:
        """`host:port`, or the URL when the scheme or path is not the default."""
        return self.target if (self.scheme, self.prefix) == ("http", "") else self.url


@dataclass
class Result:
    """The outcome of verifying one candidate: labels when good, else the reason. `identity`
    names the Moonraker instance that answered (empty when it could not be read)."""
    candidate: Candidate
    labels: Dict[str, str] = field(default_factory=dict)
    error: str = ""
    identity: Tuple[str, str] = ("", "")  # (instance id, host name it reports)

    @property
    def ok(self) -> bool:
        return not self.error


def parse_host(text: str, default_scheme: str = "http") -> Tuple[str, str, str]:
    """`host`, `host:port`, `[v6]:port`, a bare IPv6 address or a URL
    `http(s)://host[:port][/route_prefix]` to (scheme, `host:port`, route prefix).

    The port defaults to Moonraker's 7125 (also in a URL: give `:443` for a proxy), the
    scheme to `default_scheme`. Raises ValueError for an empty value, another scheme, a
    query, user info, a port that is not a number, or white space."""
    raw = text.strip()
    if not raw or any(c.isspace() for c in raw):
        raise ValueError(f"not a host[:port]: {text!r}")
    if "://" not in raw:
        if raw.count(":") > 1 and not raw.startswith("["):  # a bare IPv6 address
            raw = f"[{raw}]"
        raw = f"{default_scheme}://{raw}"
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in SCHEMES or not parts.hostname or parts.query or parts.fragment \
            or "@" in parts.netloc:
        raise ValueError(f"not a host[:port] or http(s) URL: {text!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, f"{host}:{port}", parts.path.rstrip("/")


def read_hosts_file(path: str) -> List[str]:
    """Hosts listed one per line; blank lines and `#` comments are skipped."""
    with open(path, encoding="utf-8") as f:
        return [line.split("#", 1)[0].strip() for line in f
                if line.split("#", 1)[0].strip()]


def _bracket(address: str) -> str:
    """An address as the host part of `host:port` (IPv6 in brackets, scope dropped)."""
    address = address.split("%", 1)[0]
    return f"[{address}]" if ":" in address else address


def _text(value: Optional[bytes]) -> str:
    return value.decode("utf-8", "replace") if value else ""


def browse_zeroconf(seconds: float, interfaces: Optional[Sequence[str]] = None,
                    https: bool = False) -> List[Candidate]:
    """Moonraker instances announcing `_moonraker._tcp.local.` within `seconds`.

    One candidate per announced address, on the announced port (with `https`: on the
    announced `https_port`; an instance that announces none gets a `problem`), under the
    announced `route_prefix`, carrying the announced `uuid` and aliases. Raises OSError
    when no multicast socket can be opened (no network, no multicast route)."""
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
            if info is None or not info.port or not info.parsed_addresses():
                print(f"discovery: zeroconf: {name}: no address announced", file=sys.stderr)
                continue
            props = {_text(k): _text(v) for k, v in info.properties.items()}
            https_port = props.get("https_port", "")
            ports = [str(info.port)] + ([https_port] if https_port.isdigit() else [])
            hosts = [_bracket(a) for a in info.parsed_addresses()]
            server = (info.server or "").rstrip(".").lower()
            aliases = tuple(f"{h}:{p}" for h in hosts + ([server] if server else [])
                            for p in ports)
            problem = ""
            if https and not https_port.isdigit():
                problem = ("announces no https_port over zeroconf: its Moonraker serves no "
                           "HTTPS (no certificate); list it without --https")
            for host in hosts:
                found.append(Candidate(
                    f"{host}:{https_port if https and not problem else info.port}",
                    f"zeroconf ({name})", "https" if https else "http",
                    props.get("route_prefix", "").rstrip("/"), props.get("uuid", ""),
                    aliases, problem))
        return found
    finally:
        zc.close()


def refused(status: int, path: str, api_key_sent: bool, login_required: Optional[bool],
            probe_job: bool = False) -> str:
    """Why Moonraker answered 401/403 and what works instead. `login_required` is the
    printer's `/access/info` answer (True: `[authorization] force_logins` is on and a user
    exists, so trusted_clients no longer lets anyone in; None: unknown). `probe_job`: the
    printer is for the central exporter, which needs the same access (no component's
    `require_auth` to turn off)."""
    head = f"HTTP {status} from {path}"
    if probe_job:
        exporter = ("; the central exporter needs the same: trusted_clients, or the key's "
                    "file as api_key_file under its --config targets")
        if api_key_sent:
            return (f"{head}: the API key of --api-key-file was refused (each Moonraker has "
                    f"its own: GET /access/api_key on this printer){exporter}")
        if login_required:
            return (f"{head}: this Moonraker forces logins ([authorization] force_logins), "
                    f"so trusted_clients lets nobody in: pass its API key with "
                    f"--api-key-file{exporter}")
        return (f"{head}: add the Prometheus host to [authorization] trusted_clients, or "
                f"pass the printer's API key with --api-key-file{exporter}")
    if api_key_sent:
        return (f"{head}: the API key of --api-key-file was refused (each Moonraker has its "
                f"own: GET /access/api_key on this printer), or set require_auth: False "
                f"under its [prometheus]")
    if login_required:
        return (f"{head}: this Moonraker forces logins ([authorization] force_logins), so "
                f"trusted_clients lets nobody in: pass its API key with --api-key-file, or "
                f"set require_auth: False under its [prometheus]")
    return (f"{head}: add the Prometheus host to [authorization] trusted_clients (unless "
            f"force_logins is on), pass the printer's API key with --api-key-file, or set "
            f"require_auth: False under its [prometheus]")


def _get(session: requests.Session, url: str, timeout: float,
         params: Optional[Dict[str, str]] = None) -> requests.Response:
    """GET with the session's own CA setting: requests lets REQUESTS_CA_BUNDLE override
    a session's `verify` unless each request passes it (psf/requests#3829)."""
    return session.get(url, params=params, timeout=timeout, verify=session.verify)


def _json_result(session: requests.Session, url: str, timeout: float,
                 params: Optional[Dict[str, str]] = None) -> Dict[str, object]:
    """Moonraker's `result` object from a GET of `url`; {} on any failure."""
    try:
        r = _get(session, url, timeout, params)
        result = r.json().get("result") if r.status_code == 200 else None
    except (requests.RequestException, ValueError, AttributeError):
        return {}
    return result if isinstance(result, dict) else {}


def instance_id(candidate: Candidate, session: requests.Session, timeout: float,
                announced: Dict[str, str]) -> str:
    """The uuid of the Moonraker instance behind `candidate` ("" when unknown).

    In this order: the uuid its zeroconf announcement carries; the uuid of an announcement
    naming the candidate's `host:port` or an address it resolves to (a host listed by its
    name or address); the `instance_id` Moonraker keeps in its database (the same uuid,
    written at its first start; readable with the API's authorization only)."""
    if candidate.instance_id or candidate.target in announced:
        return candidate.instance_id or announced[candidate.target]
    host, _, port = candidate.target.rpartition(":")
    try:
        for *_, sockaddr in (socket.getaddrinfo(host.strip("[]"), int(port),
                                                type=socket.SOCK_STREAM)
                             if announced else ()):
            found = announced.get(f"{_bracket(str(sockaddr[0]))}:{port}")
            if found:
                return found
    except (OSError, UnicodeError):
        pass
    base = f"{candidate.scheme}://{candidate.target}{candidate.prefix}"
    value = _json_result(session, base + DATABASE_PATH, timeout,
                         {"namespace": "moonraker", "key": "instance_id"}).get("value")
    return value if isinstance(value, str) else ""


def _fetch(candidate: Candidate, session: requests.Session, timeout: float, path: str,
           params: Dict[str, str], missing: str, probe_job: bool = False
           ) -> Tuple[Optional[requests.Response], str]:
    """GET `path` under the candidate's base URL: (the answer, "") when it is 200, else
    (None, why): unreachable, TLS failed, refused (what works instead, see refused), or
    another status (`missing` says what a 404 means)."""
    base = f"{candidate.scheme}://{candidate.target}{candidate.prefix}"
    shown = candidate.prefix + path
    try:
        r = _get(session, base + path, timeout, params)
    except requests.exceptions.SSLError as e:
        return None, f"TLS failed: {e} (a private CA: pass its certificate with --ca-file)"
    except requests.RequestException as e:
        return None, f"unreachable: {type(e).__name__}: {e}"
    if r.status_code in (401, 403):
        login = _json_result(session, base + ACCESS_INFO_PATH, timeout).get("login_required")
        return None, refused(r.status_code, shown, "X-Api-Key" in session.headers,
                             login if isinstance(login, bool) else None, probe_job)
    if r.status_code != 200:
        where = (" under this route_prefix" if candidate.prefix else
                 " (or a Moonraker behind a [server] route_prefix, which the central "
                 "exporter cannot reach)" if probe_job else " (a Moonraker with a "
                 "[server] route_prefix: list it as http://host:port/prefix)")
        return None, f"HTTP {r.status_code} from {shown}: {missing}{where}"
    return r, ""


def verify(candidate: Candidate, session: requests.Session, timeout: float,
           announced: Optional[Dict[str, str]] = None) -> Result:
    """Fetch the candidate's <route_prefix>/server/metrics?modules=klippy, read its name
    and identify its Moonraker instance (see instance_id; `announced` maps the `host:port`
    aliases of zeroconf announcements to their uuid).

    Never raises: every failure (connection, TLS, HTTP status, not this component's
    metrics, unparsable exposition) is the Result's error."""
    if candidate.problem:
        return Result(candidate, error=candidate.problem)
    path = candidate.prefix + METRICS_PATH
    r, error = _fetch(candidate, session, timeout, METRICS_PATH, {"modules": "klippy"},
                      "not a Moonraker with the [prometheus] component")
    if r is None:
        return Result(candidate, error=error)
    try:
        families = {f.name: f for f in text_string_to_metric_families(r.text)}
    except Exception as e:  # the parser raises ValueError and others on garbage
        return Result(candidate, error=f"{path} is not Prometheus text: {e}")
    if HEALTH_FAMILY not in families:
        return Result(candidate, error=f"{path} has no {HEALTH_FAMILY}: not "
                                       f"moonraker-prometheus")
    info = families.get(NAME_FAMILY)
    own = info.samples[0].labels if info is not None and info.samples else {}
    # an older component gives no name: name it by its address
    labels = {"printer": own.get("printer") or candidate.target.rsplit(":", 1)[0].strip("[]"),
              "__scheme__": candidate.scheme, "__metrics_path__": path}
    if candidate.prefix:  # printers behind one proxy share an address: tell them apart
        labels["instance"] = candidate.target + candidate.prefix
    uuid = instance_id(candidate, session, timeout, announced or {})
    if uuid:
        labels[ID_LABEL] = uuid
    return Result(candidate, labels=labels, identity=(uuid, own.get("host", "")))


def ui_name(candidate: Candidate, session: requests.Session, timeout: float) -> str:
    """The name a user gave the printer in Mainsail or Fluidd (first of UI_NAMES that is a
    non-empty string in Moonraker's database), "" when none (or the database is not
    readable)."""
    base = f"{candidate.scheme}://{candidate.target}{candidate.prefix}"
    for namespace, key in UI_NAMES:
        value = _json_result(session, base + DATABASE_PATH, timeout,
                             {"namespace": namespace, "key": key}).get("value")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def verify_moonraker(candidate: Candidate, session: requests.Session, timeout: float,
                     announced: Optional[Dict[str, str]] = None) -> Result:
    """For the probe job: the candidate must answer Moonraker's /server/info (no component
    needed) at `HOST:PORT` over HTTP, the only form the central exporter reaches. Labels:
    `printer` (ui_name, else the host name Klippy reports in /printer/info, else the
    address's host) and the instance id (see instance_id). Never raises: every failure is
    the Result's error."""
    if candidate.problem:
        return Result(candidate, error=candidate.problem)
    if candidate.prefix:
        return Result(candidate, error="behind a route_prefix: the central exporter reaches "
                                       "a Moonraker at HOST:PORT only (not written)")
    if candidate.scheme != "http":
        return Result(candidate, error="HTTPS: the central exporter takes HTTPS printers from "
                                       "its --config targets (tls: true, ca_file), not from a "
                                       "targets file")
    r, error = _fetch(candidate, session, timeout, SERVER_INFO_PATH, {}, "not a Moonraker",
                      probe_job=True)
    if r is None:
        return Result(candidate, error=error)
    try:
        info = r.json().get("result")
    except (ValueError, AttributeError):
        info = None
    if not isinstance(info, dict) or "klippy_state" not in info:
        return Result(candidate, error=f"{SERVER_INFO_PATH} is not Moonraker's server info")
    base = f"{candidate.scheme}://{candidate.target}"
    host = _json_result(session, base + PRINTER_INFO_PATH, timeout).get("hostname")
    host = host if isinstance(host, str) else ""
    labels = {"printer": ui_name(candidate, session, timeout) or host
              or candidate.target.rsplit(":", 1)[0].strip("[]")}
    uuid = instance_id(candidate, session, timeout, announced or {})
    if uuid:
        labels[ID_LABEL] = uuid
    return Result(candidate, labels=labels, identity=(uuid, host))


def verify_all(candidates: Iterable[Candidate], timeout: float, api_key: str = "",
               ca_file: Optional[str] = None, workers: int = 16, probe_job: bool = False
               ) -> List[Result]:
    """Verify every distinct URL concurrently (verify, or verify_moonraker for the probe
    job); results in candidate order. `ca_file`: the PEM file of the CA that signed the
    printers' certificates (default: the system's)."""
    unique: Dict[str, Candidate] = {}
    announced: Dict[str, str] = {}
    for c in candidates:
        unique.setdefault(c.url, c)
        for alias in c.aliases if c.instance_id else ():
            announced.setdefault(alias, c.instance_id)
    session = requests.Session()
    session.verify = ca_file or True
    if api_key:
        session.headers["X-Api-Key"] = api_key
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        check = verify_moonraker if probe_job else verify
        return list(pool.map(lambda c: check(c, session, timeout, announced),
                             unique.values()))


def previous_targets(path: str) -> Dict[str, Tuple[str, Dict[str, str]]]:
    """scrape URL -> (target, labels) from an existing file_sd file ({} when missing or
    unreadable); the URL from the target and its `__scheme__` and `__metrics_path__`."""
    try:
        with open(path, encoding="utf-8") as f:
            groups = json.load(f)
    except (OSError, ValueError):
        return {}
    out: Dict[str, Tuple[str, Dict[str, str]]] = {}
    if isinstance(groups, list):
        for group in groups:
            if isinstance(group, dict):
                labels = dict(group.get("labels") or {})
                for target in group.get("targets", []) or []:
                    url = (f"{labels.get('__scheme__', 'http')}://{target}"
                           f"{labels.get('__metrics_path__', METRICS_PATH)}")
                    out[url] = (str(target), labels)
    return out


def _preference(result: Result, previous: Dict[str, Tuple[str, Dict[str, str]]]
                ) -> Tuple[object, ...]:
    """Sort key of one printer's addresses, best first: the one the previous file held;
    listed over announced (a zeroconf candidate has aliases); a name over IPv4 over IPv6;
    the lowest."""
    c = result.candidate
    host = c.target.rsplit(":", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host)
        family, number = ip.version // 2, int(ip)  # IPv4: 2, IPv6: 3
    except ValueError:
        family, number = 0, 0
    return (c.url not in previous, bool(c.aliases), family, number, c.url)


def target_groups(results: Sequence[Result], previous: Dict[str, Tuple[str, Dict[str, str]]],
                  extra_labels: Dict[str, str], keep_unreachable: bool,
                  naming: str = COMPONENT_NAMING
                  ) -> Tuple[List[Dict[str, object]], List[str]]:
    """file_sd groups (one per printer, sorted by scrape URL) and the report lines;
    `naming` is where a printer's name is set (for the name clash warnings)."""
    report: List[str] = []
    chosen: Dict[str, Tuple[str, Dict[str, str]]] = {}
    printers: Dict[Tuple[str, str], List[Result]] = {}
    for r in results:
        if r.ok:
            printers.setdefault(r.identity if r.identity[0] else ("", r.candidate.url),
                                []).append(r)
    answering: Dict[str, str] = {}  # instance id -> where it is written
    for same in printers.values():
        best, *others = sorted(same, key=lambda r: _preference(r, previous))
        c = best.candidate
        chosen[c.url] = (c.target, {**extra_labels, **best.labels})
        name = best.labels["printer"]
        report.append(f"ok      {c.shown} printer={name!r} (from {c.found_by})")
        if best.identity[0]:
            answering[best.identity[0]] = c.shown
        for r in others:
            report.append(f"same    {r.candidate.shown}: printer {name!r} (Moonraker "
                          f"{best.identity[0][:8]}) is written as {c.shown} (from "
                          f"{r.candidate.found_by}; not written again)")
    for r in results:
        c = r.candidate
        if r.ok:
            continue
        moved = previous.get(c.url, ("", {}))[1].get(ID_LABEL, "")
        if keep_unreachable and c.url in previous and moved in answering:
            report.append(f"moved   {c.shown}: {r.error} (its Moonraker {moved[:8]} now "
                          f"answers at {answering[moved]}; dropped)")
        elif keep_unreachable and c.url in previous:
            chosen[c.url] = previous[c.url]
            report.append(f"kept    {c.shown}: {r.error} (in the previous file: kept so "
                          f"its KlipperTargetDown alert fires)")
        else:
            report.append(f"BAD     {c.shown}: {r.error} (from {c.found_by}; not written)")
    report += name_clashes(chosen, naming)
    groups: List[Dict[str, object]] = [
        {"targets": [target], "labels": labels} for _, (target, labels) in sorted(chosen.items())]
    return groups, report


def name_clashes(chosen: Dict[str, Tuple[str, Dict[str, str]]],
                 naming: str = COMPONENT_NAMING) -> List[str]:
    """A WARNING per printer name written for more than one target. Targets of one
    Moonraker instance are already one target here, so a clash is either different
    printers with one name, or targets whose instance the tool could not identify.
    `naming`: where a printer's name is set, for the advice."""
    names: Dict[str, List[Tuple[str, Dict[str, str]]]] = {}
    for url, (_, labels) in chosen.items():
        names.setdefault(labels.get("printer", ""), []).append((url, labels))
    lines = []
    for name, written in sorted(names.items()):
        if len(written) < 2:
            continue
        where = ", ".join(sorted(url for url, _ in written))
        unknown = sorted(url for url, labels in written if not labels.get(ID_LABEL))
        if unknown:
            lines.append(
                f"WARNING printer name {name!r} is written for {where}, and the tool cannot "
                f"tell which Moonraker answers at {', '.join(unknown)} (it is not announced "
                f"over zeroconf and its database is not readable): if they are one printer, "
                f"let the tool read its instance id (trusted_clients or --api-key-file) or "
                f"list it once; if they are different printers, give each its own "
                f"{naming}")
        else:
            lines.append(
                f"WARNING printer name {name!r} is given by {len(written)} different Moonraker "
                f"instances ({where}): dashboards and alerts cannot tell them apart; give "
                f"each its own {naming}")
    return lines


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
    """The command line; exits with status 2 (argparse) on a bad one."""
    p = argparse.ArgumentParser(
        prog="python -m moonraker_prometheus.discovery",
        description="Write a Prometheus file_sd file listing the farm's printers, found "
                    "through Moonraker's zeroconf announcements and/or a host list, each "
                    "verified to serve /server/metrics, labelled with its printer name and "
                    "written once however many addresses it has.")
    p.add_argument("--output", "-o", required=True,
                   help="file_sd JSON file to write (replaced atomically)")
    p.add_argument("--host", action="append", default=[],
                   metavar="[SCHEME://]HOST[:PORT][/PREFIX]",
                   help="a printer's Moonraker (repeatable; default port 7125; PREFIX: its "
                        "[server] route_prefix)")
    p.add_argument("--hosts-file", action="append", default=[], metavar="FILE",
                   help="file with one --host value per line (# comments)")
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
                        "Prometheus host is not in trusted_clients, or force_logins is on)")
    p.add_argument("--https", action="store_true",
                   help="talk HTTPS to hosts given without a scheme and to announced "
                        "printers (on the https_port they announce)")
    p.add_argument("--ca-file", metavar="FILE",
                   help="PEM file of the CA that signed the printers' certificates (a "
                        "private CA; default: the system's CAs)")
    p.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                   help="extra target label for every printer written (repeatable)")
    p.add_argument("--probe-job", action="store_true",
                   help="write targets for the central exporter's /probe job (docs/remote.md) "
                        "and its --targets-file: printers verified by Moonraker's "
                        "/server/info, no component needed; named from Mainsail's or "
                        "Fluidd's settings, else Klippy's host name")
    p.add_argument("--drop-unreachable", action="store_true",
                   help="drop targets of the previous file that fail now (default: keep "
                        "them, so their KlipperTargetDown alert fires)")
    args = p.parse_args(argv)
    if not (args.host or args.hosts_file or args.zeroconf):
        p.error("give --zeroconf, --host or --hosts-file")
    if args.timeout <= 0 or args.browse_seconds <= 0:
        p.error("--timeout and --browse-seconds must be positive")
    labels = {}
    for item in args.label:
        name, sep, value = item.partition("=")
        if not sep or not is_label_name(name):
            p.error(f"--label wants NAME=VALUE with a label name of ASCII letters, digits "
                    f"and _, not starting with a digit or __, not {item!r}")
        labels[name] = value
    args.labels = labels
    return args


def read_secrets(args: argparse.Namespace) -> Tuple[str, str]:
    """The API key of --api-key-file ("" without it); "" and an error message when the API
    key or CA file cannot be used (missing, unreadable, empty, not PEM)."""
    api_key = ""
    if args.api_key_file:
        try:
            with open(args.api_key_file, encoding="utf-8") as f:
                api_key = f.read().strip()
        except (OSError, UnicodeError) as e:
            return "", f"cannot read --api-key-file {args.api_key_file}: {e}"
        if not api_key:
            return "", f"--api-key-file {args.api_key_file} is empty"
    if args.ca_file:
        try:
            ssl.create_default_context(cafile=args.ca_file)
        except (OSError, ssl.SSLError) as e:
            return "", f"cannot use --ca-file {args.ca_file}: {e}"
    return api_key, ""


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    api_key, problem = read_secrets(args)
    if problem:
        print(f"discovery: {problem}", file=sys.stderr)
        return 2
    scheme = "https" if args.https else "http"
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
            scheme_, target, prefix = parse_host(host, scheme)
            candidates.append(Candidate(target, source, scheme_, prefix))
        except ValueError as e:
            print(f"BAD     {host}: {e} (from {source}; not written)", file=sys.stderr)
    if args.zeroconf:
        try:
            candidates += browse_zeroconf(args.browse_seconds, args.interface, args.https)
        except OSError as e:
            print(f"discovery: zeroconf browsing failed: {e}", file=sys.stderr)
    results = verify_all(candidates, args.timeout, api_key, args.ca_file,
                         probe_job=args.probe_job)
    groups, report = target_groups(results, previous_targets(args.output), args.labels,
                                   keep_unreachable=not args.drop_unreachable,
                                   naming=PROBE_NAMING if args.probe_job else COMPONENT_NAMING)
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
