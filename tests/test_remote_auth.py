"""The central exporter against a Moonraker that needs credentials, live, and its own
listener's basic auth.

Moonraker's [authorization] trusts no client here: the exporter gets in with an API key
file, or with a user and password file through Moonraker's /access/login (the token is
renewed through /access/refresh_jwt at each connection); without credentials, or with a
wrong key, a probe says `auth`. No credential appears in the exporter's log, /metrics or
probes.
"""
from __future__ import annotations

import os
import textwrap
import time

import pytest

from simulator import Klippy, Moonraker
from tests.test_remote import Remote, target_of, values

PASSWORD = "s3cret-pw-for-the-exporter"
WRONG_PASSWORD = "not-the-exporters-pw"


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """(moonraker, API key, folder with key and password files): a Moonraker that trusted
    localhost long enough to create a user and read its API key, then trusts no one."""
    folder = tmp_path_factory.mktemp("auth")
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        moonraker = Moonraker(klippy, prometheus=None)
        with moonraker:
            moonraker.wait_klippy_ready()
            key = moonraker.get("/access/api_key").json()["result"]
            assert moonraker.post("/access/user", params={
                "username": "exporter", "password": PASSWORD}).status == 200
            moonraker.stop()
            moonraker.trusted_clients = "10.254.254.0/24"  # not this host
            moonraker.start()
            assert moonraker.get("/server/info").status == 401
            (folder / "printer.key").write_text(key + "\n")
            (folder / "wrong.key").write_text("0" * 32 + "\n")
            (folder / "printer.password").write_text(PASSWORD + "\n")
            (folder / "wrong.password").write_text(WRONG_PASSWORD + "\n")
            yield moonraker, key, folder


def config(folder, moonraker: Moonraker, **target: str) -> str:
    lines = ["targets:", f"  - address: {target_of(moonraker)}"]
    lines += [f"    {k}: {v}" for k, v in target.items()]
    path = os.path.join(str(folder), f"remote-{len(os.listdir(str(folder)))}.yml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def probe_until(remote: Remote, target: str, check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = remote.probe(target, timeout_header="3")
        found = values(body) if status == 200 else {}
        if check(found) or time.monotonic() > deadline:
            return found, body


@pytest.mark.parametrize("credentials", ["api_key", "login"])
def test_credentials_from_files_open_the_printer(locked, tmp_path, credentials):
    moonraker, key, folder = locked
    target = target_of(moonraker)
    settings = {"api_key_file": "printer.key"} if credentials == "api_key" else {
        "username": "exporter", "password_file": "printer.password"}
    remote = Remote(str(tmp_path), "--config", config(folder, moonraker, **settings))
    try:
        found, body = probe_until(remote, target, lambda f: any(
            n.startswith("klipper_extruder_temperature") for n in f))
        assert found.get("probe_success") == 1.0, body[-2000:]
        own = remote.get("/metrics")[1]
        for text in (body, own, remote.log()):
            assert key not in text and PASSWORD not in text
    finally:
        remote.stop()


@pytest.mark.parametrize("credentials", ["none", "wrong_key", "wrong_password",
                                         "unknown_user"])
def test_missing_or_wrong_credentials_say_auth(locked, tmp_path, credentials):
    """Moonraker 0.11 answers a wrong password or an unknown user with HTTP 400: auth,
    logged as "login refused" with Moonraker's message, never the password."""
    moonraker, key, folder = locked
    target = target_of(moonraker)
    settings = {
        "none": {}, "wrong_key": {"api_key_file": "wrong.key"},
        "wrong_password": {"username": "exporter", "password_file": "wrong.password"},
        "unknown_user": {"username": "nobody", "password_file": "printer.password"},
    }[credentials]
    remote = Remote(str(tmp_path), "--config", config(folder, moonraker, **settings))
    try:
        found, body = probe_until(remote, target, lambda f: "probe_success" in f and any(
            n.startswith("klipper_probe_failure_info") for n in f))
        assert found["probe_success"] == 0.0
        assert found.get('klipper_probe_failure_info{reason="auth"}') == 1.0, remote.log()
        assert not [n for n in found if n.startswith("klipper_") and "probe" not in n]
        log = remote.log()
        if credentials == "wrong_password":
            assert "login refused (HTTP 400: Invalid Password)" in log, log
        if credentials == "unknown_user":
            assert "login refused (HTTP 400: Unregistered User: nobody)" in log, log
        assert PASSWORD not in log and WRONG_PASSWORD not in log
    finally:
        remote.stop()


def test_the_listener_has_the_sidecars_basic_auth(locked, tmp_path):
    import bcrypt

    moonraker, _, folder = locked
    digest = bcrypt.hashpw(b"scraper-pw", bcrypt.gensalt(rounds=4)).decode()
    path = os.path.join(str(tmp_path), "remote.yml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(f"""\
            basic_auth_users:
              prometheus: "{digest}"
            """))
    remote = Remote(str(tmp_path), "--config", path, "--target", target_of(moonraker))
    try:
        status, _, _ = remote.probe(target_of(moonraker))
        assert status == 401
        assert remote.get("/metrics")[0] == 401
        import base64
        import urllib.request
        request = urllib.request.Request(f"{remote.base}/metrics")
        request.add_header("Authorization", "Basic " + base64.b64encode(
            b"prometheus:scraper-pw").decode())
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
    finally:
        remote.stop()


def test_a_login_is_renewed_when_moonraker_restarts(locked, tmp_path):
    moonraker, _, folder = locked
    target = target_of(moonraker)
    remote = Remote(str(tmp_path), "--config", config(
        folder, moonraker, username="exporter", password_file="printer.password"))
    try:
        def printing(found) -> bool:
            return any(n.startswith("klipper_extruder_temperature") for n in found)

        assert probe_until(remote, target, printing)[0].get("probe_success") == 1.0
        moonraker.stop()
        moonraker.start()  # (its /server/info answers 401 to the harness: no wait for Klippy)
        found, body = probe_until(remote, target, printing, timeout=30)
        assert found.get("probe_success") == 1.0, body[-1500:]
        own = values(remote.get("/metrics")[1])
        assert own[f'klipper_remote_target_connections_total{{target="{target}"}}'] == 2.0
    finally:
        remote.stop()
