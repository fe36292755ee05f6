"""reverse_exporter's older per-path `auth_type` is honoured or refused, never ignored
(a ConfigError stops the standalone sidecar with the key in its message: test_standalone)."""
from __future__ import annotations

import bcrypt
import pytest

from moonraker_prometheus.sidecar.config import ConfigError, parse_config

KEY = "reverse_exporters[0].auth_type"


def config(**path_options) -> dict:
    return {"web": {"listen": ["tcp://127.0.0.1:0"]},
            "reverse_exporters": [dict(path="/metrics", **path_options, exporters={
                "file": [{"name": "f", "path": "/nonexistent.prom"}]})]}


@pytest.mark.parametrize("value", ["digest", "Basic", "none", "bearer"])
def test_an_unknown_auth_type_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError) as e:
        parse_config(config(auth_type=value))
    assert e.value.key == KEY
    assert repr(value) in str(e.value)


def test_basic_without_users_is_refused_rather_than_serving_everyone():
    with pytest.raises(ConfigError, match="basic needs users") as e:
        parse_config(config(auth_type="basic"))
    assert e.value.key == KEY


def test_basic_with_users_anywhere_asks_for_them(tmp_path):
    digest = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "users.htpasswd").write_text("admin:%s\n" % digest)
    cfg = parse_config(config(auth_type="basic", htpasswd_file="users.htpasswd"), str(tmp_path))
    assert cfg.endpoints[0].users == {"admin": digest}
    users = {"basic_auth": [{"username": "p", "password": digest}]}
    assert parse_config(config(auth_type="basic", auth=users)).endpoints[0].users
    web_wide = config(auth_type="basic")
    web_wide["web"]["auth"] = users
    assert parse_config(web_wide).users == {"p": digest}


@pytest.mark.parametrize("value", ["", None])
def test_an_empty_auth_type_means_none(value):
    assert parse_config(config(auth_type=value)).endpoints[0].users == {}

