"""The discovery tool against real Moonrakers (no Klippy: the tool only needs Moonraker's
answers): one target per printer however it is found, printers behind a route_prefix and
on HTTPS with a private CA (scraped by a real Prometheus with the job of docs/farm.md),
targets for the central exporter's probe job (Moonrakers without the component, the file
read by the exporter itself), force_logins, and bad arguments.

The Moonrakers here run the component with `require_auth: False` unless a test says
otherwise, and trust 127.0.0.0/8 only: a request from another address of this machine
(zeroconf announces those) may read the metrics but not the rest of Moonraker's API.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from typing import Dict, List, Optional

import pytest
import yaml

from moonraker_prometheus import discovery
from moonraker_prometheus.discovery import ID_LABEL
from simulator import Moonraker, free_port
from simulator.farm import PROMETHEUS_DIR, PrometheusServer
from tests.test_alerts import require_tool
from tests.test_remote import Remote

REPO = os.path.dirname(PROMETHEUS_DIR)
FARM_DOC = os.path.join(REPO, "docs", "farm.md")


class ConfiguredMoonraker(Moonraker):
    """A simulator Moonraker with extra options in the sections the simulator writes
    (`options`: section name -> lines, e.g. {"server": "route_prefix: /voron"}) and, with
    `route_prefix`, its own requests sent under that prefix. `host` is Moonraker's [server]
    host (e.g. "all"); the harness talks to it on 127.0.0.1."""

    def __init__(self, *, options: Optional[Dict[str, str]] = None, route_prefix: str = "",
                 host: str = "127.0.0.1", **kwargs) -> None:
        kwargs.setdefault("prometheus", "require_auth: False")
        super().__init__(None, port=free_port(), **kwargs)
        self.options = dict(options or {})
        self.route_prefix = route_prefix
        self.bind = host
        if route_prefix:
            self.options["server"] = f"route_prefix: {route_prefix}\n" + self.options.get(
                "server", "")

    def render_config(self) -> str:
        text = super().render_config().replace("host: 127.0.0.1\n", f"host: {self.bind}\n", 1)
        for section, lines in self.options.items():
            assert f"[{section}]\n" in text, section
            text = text.replace(f"[{section}]\n", f"[{section}]\n{lines.strip()}\n", 1)
        return text

    def request(self, method, path, *args, **kwargs):
        return super().request(method, self.route_prefix + path, *args, **kwargs)

    def instance_id(self) -> str:
        r = self.get("/server/database/item", params={"namespace": "moonraker",
                                                      "key": "instance_id"})
        assert r.status == 200, r.text
        return r.json()["result"]["value"]


def discover(*args: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "moonraker_prometheus.discovery", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": REPO})


def read_groups(path: str) -> List[dict]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def of_instance(groups: List[dict], instance: str) -> List[dict]:
    return [g for g in groups if g["labels"].get(ID_LABEL) == instance]


# ------------------------------------------------------------- one printer, one target
@pytest.fixture(scope="module")
def everywhere(tmp_path_factory):
    """One Moonraker listening on every address of this machine and announcing them all
    over zeroconf (Moonraker's [zeroconf] with host: all: IPv4 and IPv6, every interface),
    and the addresses it announces."""
    name = f"mp-{uuid.uuid4().hex[:8]}"
    m = ConfiguredMoonraker(host="all", prometheus="require_auth: False\nprinter_name: kilo",
                            extra_config=f"[zeroconf]\nmdns_hostname: {name}\n")
    try:
        m.start()
        own = m.instance_id()
        announced: List[discovery.Candidate] = []
        for _ in range(3):
            announced = [c for c in discovery.browse_zeroconf(2.0)
                         if c.instance_id == own]
            if announced:
                break
        assert announced, "the Moonraker's zeroconf announcement was not seen"
        yield {"moonraker": m, "id": own, "targets": sorted(c.target for c in announced),
               "tmp": tmp_path_factory.mktemp("everywhere")}
    finally:
        m.cleanup()


def test_a_printer_announced_on_several_addresses_is_one_target(everywhere):
    """Zeroconf announces the printer on each of its addresses (here IPv4 and IPv6): it is
    written once, at its IPv4 address, and the report says the other addresses are the
    same printer, with no warning."""
    targets = everywhere["targets"]
    if len(targets) < 2:
        pytest.skip(f"this machine has one non-link-local address only: {targets}")
    out = str(everywhere["tmp"] / "announced.json")
    r = discover("--zeroconf", "--browse-seconds", "3", "-o", out, cwd=str(everywhere["tmp"]))
    assert r.returncode == 0, r.stderr
    mine = of_instance(read_groups(out), everywhere["id"])
    ipv4 = [t for t in targets if not t.startswith("[")]
    assert [g["targets"] for g in mine] == [[ipv4[0]]], r.stderr
    assert mine[0]["labels"]["printer"] == "kilo"
    others = [t for t in targets if t != ipv4[0]]
    for target in others:
        assert f"same    {target}: printer 'kilo'" in r.stderr
    assert "WARNING printer name 'kilo'" not in r.stderr


def test_a_listed_printer_that_zeroconf_also_finds_is_one_target(everywhere):
    """The documented --zeroconf --hosts-file run, the printer listed by name (localhost)
    while zeroconf finds its addresses: one target, the listed one. The tool reads the
    instance id from Moonraker's database (127.0.0.1 is trusted)."""
    m, tmp = everywhere["moonraker"], everywhere["tmp"]
    hosts = tmp / "by-name.txt"
    hosts.write_text(f"localhost:{m.port}\n")
    out = str(tmp / "by-name.json")
    r = discover("--zeroconf", "--browse-seconds", "3", "--hosts-file", str(hosts),
                 "-o", out, cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    mine = of_instance(read_groups(out), everywhere["id"])
    assert [g["targets"] for g in mine] == [[f"localhost:{m.port}"]], r.stderr
    assert f"ok      localhost:{m.port} printer='kilo'" in r.stderr
    assert "WARNING printer name 'kilo'" not in r.stderr


def test_a_listed_address_that_zeroconf_announces_is_one_target_without_api_access(
        everywhere):
    """Listed by an address the announcement carries (here its last one), from which the
    tool may read the metrics only (no trusted client, no API key): the announcement's uuid
    identifies it, and the listed address is the one written."""
    m, tmp = everywhere["moonraker"], everywhere["tmp"]
    listed = everywhere["targets"][-1]
    hosts = tmp / "by-address.txt"
    hosts.write_text(f"{listed}\n")
    out = str(tmp / "by-address.json")
    r = discover("--zeroconf", "--browse-seconds", "3", "--hosts-file", str(hosts),
                 "-o", out, cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    mine = of_instance(read_groups(out), everywhere["id"])
    assert [g["targets"] for g in mine] == [[listed]], r.stderr
    assert "WARNING printer name 'kilo'" not in r.stderr


def test_a_printer_that_moved_is_not_kept_at_its_old_address(everywhere, tmp_path):
    """The previous file holds the printer at an address that no longer answers, and the
    same Moonraker answers at another one now: the old target is dropped, not kept as a
    second, dead copy of the printer (its up==0 alert would fire for a printer that is
    up)."""
    m = everywhere["moonraker"]
    gone = f"127.0.0.1:{free_port()}"
    out = tmp_path / "moved.json"
    out.write_text(json.dumps([{"targets": [gone], "labels": {
        "printer": "kilo", "__scheme__": "http", "__metrics_path__": "/server/metrics",
        ID_LABEL: everywhere["id"]}}]))
    r = discover("--host", gone, "--host", f"127.0.0.1:{m.port}", "--timeout", "3",
                 "-o", str(out), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert [g["targets"] for g in read_groups(str(out))] == [[f"127.0.0.1:{m.port}"]]
    assert f"moved   {gone}: unreachable" in r.stderr


def test_one_name_on_two_printers_warns_and_writes_both(tmp_path):
    """Two Moonraker instances giving one printer name are two printers: both written, and
    the warning says they are different instances; listing one untrusted, unannounced
    printer twice says the tool cannot tell them apart, instead of asking for a rename."""
    conf = "require_auth: False\nprinter_name: twin"
    with ConfiguredMoonraker(prometheus=conf) as a, ConfiguredMoonraker(prometheus=conf) as b:
        out = str(tmp_path / "twins.json")
        r = discover("--host", f"127.0.0.1:{a.port}", "--host", f"127.0.0.1:{b.port}",
                     "-o", out, cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert len(read_groups(out)) == 2
        assert "WARNING printer name 'twin' is given by 2 different Moonraker instances" \
            in r.stderr, r.stderr
    with ConfiguredMoonraker(prometheus=conf, trusted_clients="10.255.255.0/24") as c:
        out = str(tmp_path / "unknown.json")
        r = discover("--host", f"127.0.0.1:{c.port}", "--host", f"localhost:{c.port}",
                     "-o", out, cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert len(read_groups(out)) == 2
        assert "the tool cannot tell which Moonraker answers at" in r.stderr, r.stderr
        assert "list it once" in r.stderr


# ------------------------------------------------------- route_prefix and HTTPS
def documented_scrape_job(file_sd: str, ca_file: str) -> str:
    """The klipper scrape job of docs/farm.md ("Scrape them"), with the test's file_sd
    file, the CA file its comment documents for a private CA, and 1 s intervals."""
    with open(FARM_DOC, encoding="utf-8") as f:
        section = f.read().split("## 3. Scrape them", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    assert re.search(r"# *tls_config: \{ca_file: ", block), "the CA line is documented"
    job = yaml.safe_load(block)["scrape_configs"][0]
    job.update(scrape_interval="1s", scrape_timeout="1s", file_sd_configs=[{"files": [file_sd]}],
               tls_config={"ca_file": ca_file})
    return textwrap.indent(yaml.safe_dump([job], sort_keys=False), "  ")


@pytest.fixture(scope="module")
def unusual(tmp_path_factory):
    """Moonraker behind a route_prefix (announced over zeroconf) and Moonraker serving
    HTTPS with a certificate from a private CA made with trustme."""
    trustme = pytest.importorskip("trustme")
    tmp = tmp_path_factory.mktemp("unusual")
    ca = trustme.CA()
    ca_file = str(tmp / "printers-ca.pem")
    ca.cert_pem.write_to_path(ca_file)
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ssl_port = free_port()
    tls = ConfiguredMoonraker(prometheus="require_auth: False\nprinter_name: tls",
                              options={"server": f"ssl_port: {ssl_port}"},
                              extra_config=f"[zeroconf]\nmdns_hostname: "
                                           f"mp-{uuid.uuid4().hex[:8]}\n")
    certs = os.path.join(tls.data_dir, "certs")
    os.makedirs(certs)
    with open(os.path.join(certs, "moonraker.cert"), "wb") as f:
        f.write(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(os.path.join(certs, "moonraker.key"))
    prefixed = ConfiguredMoonraker(prometheus="require_auth: False\nprinter_name: proxied",
                                   route_prefix="/farm/voron",
                                   extra_config=f"[zeroconf]\nmdns_hostname: "
                                                f"mp-{uuid.uuid4().hex[:8]}\n")
    try:
        tls.start()
        prefixed.start()
        yield {"tls": tls, "prefixed": prefixed, "ca_file": ca_file, "tmp": tmp,
               "ssl_port": ssl_port}
    finally:
        tls.cleanup()
        prefixed.cleanup()


def test_a_printer_behind_a_route_prefix_is_found_by_zeroconf_and_by_url(unusual):
    """Moonraker announces its route_prefix: the target's __metrics_path__ carries it, and
    its instance label tells printers behind one proxy apart. Listed as a URL with the
    path, it is the same printer."""
    m, tmp = unusual["prefixed"], unusual["tmp"]
    out = str(tmp / "prefix-zeroconf.json")
    r = discover("--zeroconf", "--browse-seconds", "3", "-o", out, cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    mine = of_instance(read_groups(out), m.instance_id())
    assert len(mine) == 1, r.stderr
    assert mine[0]["targets"] == [f"127.0.0.1:{m.port}"]
    assert mine[0]["labels"] == {
        "printer": "proxied", "__scheme__": "http",
        "__metrics_path__": "/farm/voron/server/metrics",
        "instance": f"127.0.0.1:{m.port}/farm/voron", ID_LABEL: m.instance_id()}
    out = str(tmp / "prefix-url.json")
    r = discover("--host", f"http://127.0.0.1:{m.port}/farm/voron/", "-o", out, cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    assert read_groups(out) == mine
    # without the prefix Moonraker answers 404, and the report says where it looked
    r = discover("--host", f"127.0.0.1:{m.port}", "-o", out, cwd=str(tmp))
    assert "HTTP 404 from /server/metrics: not a Moonraker" in r.stderr
    assert "list it as http://host:port/prefix" in r.stderr


def test_a_printer_on_https_with_a_private_ca_needs_the_ca_file(unusual):
    """HTTPS with a private CA: without --ca-file the report names the TLS failure and the
    option; with it the target is written with __scheme__ https, whether listed as an
    https:// URL or announced (--https uses the https_port Moonraker announces)."""
    m, tmp, port = unusual["tls"], unusual["tmp"], unusual["ssl_port"]
    out = str(tmp / "tls-nca.json")
    r = discover("--host", f"https://127.0.0.1:{port}", "-o", out, cwd=str(tmp))
    assert r.returncode == 1
    assert f"BAD     https://127.0.0.1:{port}/server/metrics: TLS failed" in r.stderr
    assert "--ca-file" in r.stderr
    out = str(tmp / "tls-url.json")
    r = discover("--host", f"https://127.0.0.1:{port}", "--ca-file", unusual["ca_file"],
                 "-o", out, cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    assert read_groups(out) == [{"targets": [f"127.0.0.1:{port}"], "labels": {
        "printer": "tls", "__scheme__": "https", "__metrics_path__": "/server/metrics",
        ID_LABEL: m.instance_id()}}]
    out = str(tmp / "tls-zeroconf.json")
    r = discover("--zeroconf", "--https", "--browse-seconds", "3", "--ca-file",
                 unusual["ca_file"], "-o", out, cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    mine = of_instance(read_groups(out), m.instance_id())
    assert [(g["targets"], g["labels"]["__scheme__"]) for g in mine] == [
        ([f"127.0.0.1:{port}"], "https")], r.stderr
    # an announced printer without HTTPS is reported, not tried on its HTTP port
    assert "announces no https_port" in r.stderr


def test_prometheus_scrapes_prefixed_and_https_targets_with_the_documented_job(unusual):
    require_tool("prometheus")
    tmp = unusual["tmp"]
    hosts = tmp / "unusual.txt"
    hosts.write_text(f"https://127.0.0.1:{unusual['ssl_port']}\n"
                     f"127.0.0.1:{unusual['prefixed'].port}/farm/voron\n")
    file_sd = str(tmp / "unusual.json")
    r = discover("--hosts-file", str(hosts), "--ca-file", unusual["ca_file"], "-o", file_sd,
                 cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    prom = PrometheusServer(str(tmp / "prometheus"),
                            documented_scrape_job(file_sd, unusual["ca_file"]))
    try:
        prom.start()
        result = prom.wait_query('up{job="klipper"}',
                                 lambda r: sorted(float(s["value"][1]) for s in r) == [1, 1],
                                 30, "both targets up")
        assert {s["metric"]["instance"] for s in result} == {
            f"127.0.0.1:{unusual['ssl_port']}",
            f"127.0.0.1:{unusual['prefixed'].port}/farm/voron"}
        names = {s["metric"]["printer"] for s in prom.query("klipper_printer_info")}
        assert names == {"tls", "proxied"}
    finally:
        prom.stop()


# ------------------------------------------------- the central exporter's probe job
def name_in_ui(moonraker: Moonraker, namespace: str, key: str, name: str) -> None:
    """Name the printer as Mainsail or Fluidd does when a user sets it: in Moonraker's
    database."""
    r = moonraker.post("/server/database/item",
                       body={"namespace": namespace, "key": key, "value": name})
    assert r.status == 200, r.text


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """Three Moonrakers with nothing installed (no component, no Klippy): one named in
    Mainsail's settings, one in Fluidd's, one not named."""
    ms = {name: ConfiguredMoonraker(prometheus=None) for name in ("lima", "mike", "november")}
    try:
        for m in ms.values():
            m.start()
        name_in_ui(ms["lima"], "mainsail", "general.printername", "lima")
        name_in_ui(ms["mike"], "fluidd", "uiSettings.general.instanceName", "mike")
        yield {"moonrakers": ms, "tmp": tmp_path_factory.mktemp("bare")}
    finally:
        for m in ms.values():
            m.cleanup()


def test_probe_job_targets_are_plain_moonrakers_named_as_mainsail_or_fluidd_name_them(bare):
    """--probe-job verifies Moonraker itself (no component on these printers) and writes
    HOST:PORT with the name from Mainsail's or Fluidd's settings (else the address: no
    Klippy, no host name) and the instance id, nothing that would replace the probe job's
    scheme or path; the component's check would find none of them."""
    ms, tmp = bare["moonrakers"], bare["tmp"]
    hosts = [f"127.0.0.1:{m.port}" for m in ms.values()]
    out = str(tmp / "probe.json")
    r = discover("--probe-job", *(a for h in hosts for a in ("--host", h)), "-o", out,
                 cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    written = {g["targets"][0]: g["labels"] for g in read_groups(out)}
    assert written == {
        f"127.0.0.1:{m.port}": {"printer": name if name != "november" else "127.0.0.1",
                                ID_LABEL: m.instance_id()}
        for name, m in ms.items()}, r.stderr
    r = discover(*(a for h in hosts for a in ("--host", h)), "-o", str(tmp / "component.json"),
                 cwd=str(tmp))
    assert r.returncode == 1 and r.stderr.count("HTTP 404 from /server/metrics") == 3, r.stderr


def test_the_central_exporter_probes_exactly_the_printers_discovery_wrote(bare):
    """The --probe-job file is the exporter's --targets-file as it is: the printers written
    are probed, a printer left out (it runs, but was not listed) is refused."""
    ms, tmp = bare["moonrakers"], bare["tmp"]
    out = str(tmp / "listed.json")
    r = discover("--probe-job", "--host", f"127.0.0.1:{ms['lima'].port}",
                 "--host", f"127.0.0.1:{ms['mike'].port}", "-o", out, cwd=str(tmp))
    assert r.returncode == 0, r.stderr
    remote = Remote(str(tmp), "--targets-file", out)
    try:
        for name in ("lima", "mike"):
            status, body, _ = remote.probe(f"127.0.0.1:{ms[name].port}")
            assert status == 200 and re.search(r"^probe_success 1(\.0)?$", body, re.M), (
                name, status, body)
        status, _, _ = remote.probe(f"127.0.0.1:{ms['november'].port}")
        assert status == 403
    finally:
        remote.stop()


def test_probe_job_reports_what_the_central_exporter_cannot_reach(unusual):
    """A Moonraker behind a route_prefix or on HTTPS is reported with the reason and not
    written (the exporter reaches HOST:PORT over ws:// only, HTTPS from its --config)."""
    tmp = unusual["tmp"]
    https = f"https://127.0.0.1:{unusual['ssl_port']}"
    prefixed = f"http://127.0.0.1:{unusual['prefixed'].port}/farm/voron"
    out = str(tmp / "probe-unusual.json")
    r = discover("--probe-job", "--host", https, "--host", prefixed, "--ca-file",
                 unusual["ca_file"], "-o", out, cwd=str(tmp))
    assert r.returncode == 1, r.stderr
    assert f"BAD     {https}/server/metrics: HTTPS: the central exporter takes HTTPS " \
           f"printers from its --config targets" in r.stderr
    assert f"BAD     {prefixed}/server/metrics: behind a route_prefix" in r.stderr
    assert not os.path.exists(out)


# ------------------------------------------------------------------- force_logins
def test_force_logins_refuses_trusted_clients_and_the_report_names_what_works(tmp_path):
    """With [authorization] force_logins and a user, Moonraker answers a trusted client 401
    (Moonraker's rule: trusted_clients no longer applies). The report says so and names the
    API key and require_auth: False; the API key then works."""
    with ConfiguredMoonraker(prometheus="", options={"authorization": "force_logins: True"}
                             ) as m:
        key = m.get("/access/api_key").json()["result"]
        r = m.post("/access/user", body={"username": "farm", "password": "s3cret-Pass"})
        assert r.status == 200, r.text
        assert m.get("/server/metrics").status == 401  # from 127.0.0.1, a trusted client
        out = str(tmp_path / "forced.json")
        r = discover("--host", f"127.0.0.1:{m.port}", "-o", out, cwd=str(tmp_path))
        assert r.returncode == 1
        line = next(x for x in r.stderr.splitlines() if x.startswith("BAD"))
        assert "HTTP 401 from /server/metrics: this Moonraker forces logins" in line
        assert "--api-key-file" in line and "require_auth: False" in line
        assert "add the Prometheus host to [authorization] trusted_clients" not in line
        assert key not in r.stderr
        # for the probe job: no component to open; the central exporter needs the key too
        r = discover("--probe-job", "--host", f"127.0.0.1:{m.port}", "-o", out,
                     cwd=str(tmp_path))
        line = next(x for x in r.stderr.splitlines() if x.startswith("BAD"))
        assert "HTTP 401 from /server/info: this Moonraker forces logins" in line
        assert "api_key_file under its --config targets" in line
        assert "require_auth" not in line
        key_file = tmp_path / "key"
        key_file.write_text(key + "\n")
        r = discover("--host", f"127.0.0.1:{m.port}", "--api-key-file", str(key_file),
                     "-o", out, cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert key not in r.stderr + open(out, encoding="utf-8").read()


# ----------------------------------------------------------------- bad arguments
@pytest.mark.unit
@pytest.mark.parametrize("option", ["--api-key-file", "--ca-file"])
def test_a_missing_key_or_ca_file_is_a_clear_error(option, tmp_path):
    missing = str(tmp_path / "nothing-here")
    r = discover("--host", "127.0.0.1:1", option, missing, "-o", str(tmp_path / "out.json"),
                 cwd=str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.startswith(f"discovery: cannot ") and missing in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.unit
@pytest.mark.parametrize("label", ["tempé=1", "site-a=1", "__scheme__=https", "1x=1", "x"])
def test_a_label_name_prometheus_would_refuse_is_a_usage_error(label, tmp_path):
    r = discover("--host", "127.0.0.1:1", "--label", label, "-o", str(tmp_path / "o.json"),
                 cwd=str(tmp_path))
    assert r.returncode == 2
    assert "--label wants NAME=VALUE" in r.stderr
    assert not os.path.exists(tmp_path / "o.json")
