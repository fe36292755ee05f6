"""The central exporter's configuration: the YAML file (`--config`) and the targets file
(`--targets-file`, Prometheus file_sd in JSON or YAML).

The YAML file has the sidecar's web keys (`tls_server_config`, `basic_auth_users`,
`http_server_config`, exactly as in the sidecar's `--web.config.file`) and these:

```yaml
allow_any_target: false     # probe any HOST:PORT a scraper names
max_targets: 100            # unlisted targets at once (--allow-any-target; listed: no bound)
max_message_size: 8388608   # bytes, per websocket message from Moonraker
max_entries: 5000           # per target: entries kept of any JSON object or array
max_string: 4096            # per target: characters of any string kept (longer: left out)
idle_timeout: 600           # seconds without a probe before a target is disconnected
scrape_timeout: 9.5         # seconds, when Prometheus sends no timeout header
targets:                    # listed targets, with what each needs
  - address: printer1.local:7125
    name: voron             # the printer label (default: Klippy's host name)
    tls: true               # wss/https, certificate verified
    ca_file: private-ca.pem # a private CA (relative to this file)
    api_key_file: printer1.key
  - address: printer2.local:7125
    username: exporter      # Moonraker login, token renewed at each connection
    password_file: printer2.password
```

Credentials are only ever file names here: the files are read at each connection. An
address listed twice, and a `ca_file` without `tls: true`, are errors.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from ..sidecar.config import ConfigError
from ..sidecar.webconfig import WEB_CONFIG_KEYS, WebConfig, web_config_from
from .client import Credentials
from .target import Limits, TargetSpec, normalize_target

TARGET_KEYS = ("address", "name", "tls", "ca_file", "api_key_file", "username",
               "password_file")
KEYS = (*WEB_CONFIG_KEYS, "allow_any_target", "max_targets", "max_message_size",
        "max_entries", "max_string", "idle_timeout", "scrape_timeout", "targets")
MAX_MESSAGE_SIZE_CAP = 64 << 20
# A targets file over this is refused (the last good list kept): 1 MiB holds some 20,000
# addresses; a 24 MB file took 19 s to parse (issue 20).
MAX_TARGETS_FILE_BYTES = 1 << 20
# Why a targets file was not (re)loaded, as `reason` label values: it could not be read,
# was over MAX_TARGETS_FILE_BYTES, was not JSON/YAML, or not file_sd's shape.
TARGETS_FILE_ERRORS = ("read", "too_large", "syntax", "format")


class RemoteConfig:
    """Everything the YAML file sets (defaults without one)."""

    def __init__(self) -> None:
        self.web = WebConfig()
        self.allow_any_target = False
        self.max_targets = 100
        self.limits = Limits()
        self.scrape_timeout = 9.5
        self.targets: Dict[str, TargetSpec] = {}


def _load_yaml(path: str) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(path, e.strerror or str(e)) from None
    except yaml.YAMLError as e:
        raise ConfigError(path, f"invalid YAML: {e}") from None


def _number(data: Dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not low <= value <= high:
        raise ConfigError(key, f"expected a number from {low:g} to {high:g}")
    return float(value)


def target_spec(entry: Any, key: str, base: str) -> TargetSpec:
    """One `targets` entry; ConfigError naming its key when it is wrong."""
    if not isinstance(entry, dict):
        raise ConfigError(key, "expected a mapping with an address")
    extra = sorted(set(entry) - set(TARGET_KEYS))
    if extra:
        raise ConfigError(f"{key}.{extra[0]}", "unknown key")
    address = normalize_target(str(entry.get("address", "")))
    if address is None:
        raise ConfigError(f"{key}.address", "expected HOST:PORT")
    for option in ("name", "ca_file", "api_key_file", "username", "password_file"):
        if option in entry and not (isinstance(entry[option], str) and entry[option]):
            raise ConfigError(f"{key}.{option}", "expected a non-empty string")
    if "tls" in entry and not isinstance(entry["tls"], bool):
        raise ConfigError(f"{key}.tls", "expected true or false")
    if entry.get("api_key_file") and entry.get("username"):
        raise ConfigError(key, "api_key_file or username, not both")
    if bool(entry.get("username")) != bool(entry.get("password_file")):
        raise ConfigError(key, "username and password_file go together")
    if entry.get("ca_file") and not entry.get("tls"):
        raise ConfigError(f"{key}.ca_file", "needs tls: true (without it the target is "
                                            "reached over ws://, unencrypted)")

    def path(option: str) -> Optional[str]:
        value = entry.get(option)
        return os.path.join(base, value) if value else None

    return TargetSpec(address, entry.get("name"), bool(entry.get("tls", False)),
                      path("ca_file"),
                      Credentials(path("api_key_file"), entry.get("username"),
                                  path("password_file")))


def load_config(path: str) -> RemoteConfig:
    """The YAML file at `path`; ConfigError naming the key when it is wrong."""
    data = _load_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(path, "expected a mapping")
    extra = sorted(set(data) - set(KEYS))
    if extra:
        raise ConfigError(extra[0], "unknown key")
    cfg = RemoteConfig()
    cfg.web = web_config_from({k: data[k] for k in WEB_CONFIG_KEYS if k in data})
    if not isinstance(data.get("allow_any_target", False), bool):
        raise ConfigError("allow_any_target", "expected true or false")
    cfg.allow_any_target = bool(data.get("allow_any_target", False))
    cfg.max_targets = int(_number(data, "max_targets", 100, 1, 100000))
    cfg.limits = Limits(
        max_message_size=int(_number(data, "max_message_size", 8 << 20, 65536,
                                     MAX_MESSAGE_SIZE_CAP)),
        idle_seconds=_number(data, "idle_timeout", 600.0, 10.0, 86400.0),
        max_entries=int(_number(data, "max_entries", 5000, 100, 1000000)),
        max_string=int(_number(data, "max_string", 4096, 256, MAX_MESSAGE_SIZE_CAP)))
    cfg.scrape_timeout = _number(data, "scrape_timeout", 9.5, 0.5, 300.0)
    base = os.path.dirname(os.path.abspath(path))
    targets = data.get("targets") or []
    if not isinstance(targets, list):
        raise ConfigError("targets", "expected a list")
    where: Dict[str, str] = {}
    for i, entry in enumerate(targets):
        spec = target_spec(entry, f"targets[{i}]", base)
        if spec.address in where:
            raise ConfigError(f"targets[{i}].address", f"{spec.address} is listed twice "
                                                       f"(also {where[spec.address]})")
        where[spec.address] = f"targets[{i}]"
        cfg.targets[spec.address] = spec
    return cfg


class TargetsFileError(ConfigError):
    """A targets file that was not loaded: `reason` is one of TARGETS_FILE_ERRORS."""

    def __init__(self, key: str, message: str, reason: str) -> None:
        super().__init__(key, message)
        self.reason = reason


def _read_bounded(path: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_TARGETS_FILE_BYTES + 1)
    except OSError as e:
        raise TargetsFileError(path, e.strerror or str(e), "read") from None
    if len(raw) > MAX_TARGETS_FILE_BYTES:
        raise TargetsFileError(path, f"over {MAX_TARGETS_FILE_BYTES} bytes, not read "
                                     "(split the printers over several exporters)",
                               "too_large")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TargetsFileError(path, f"not UTF-8: {e.reason}", "syntax") from None


def load_targets_file(path: str) -> List[str]:
    """The addresses of a Prometheus file_sd file (JSON, or YAML by its extension):
    `[{"targets": ["host:port", ...], "labels": {...}}, ...]`; TargetsFileError (a
    ConfigError with a `reason`) when it cannot be read, is over MAX_TARGETS_FILE_BYTES,
    does not parse or an address is not HOST:PORT. Blocking (file I/O and a parse linear
    in the file's size): the exporter calls it off its event loop."""
    text = _read_bounded(path)
    if path.endswith((".yml", ".yaml")):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise TargetsFileError(path, f"invalid YAML: {e}", "syntax") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise TargetsFileError(path, f"invalid JSON: {e}", "syntax") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise TargetsFileError(path, "expected a list of target groups", "format")
    found: List[str] = []
    for i, group in enumerate(data):
        targets = group.get("targets") if isinstance(group, dict) else None
        if not isinstance(targets, list):
            raise TargetsFileError(f"{path}: [{i}].targets", "expected a list", "format")
        for raw in targets:
            address = normalize_target(str(raw))
            if address is None:
                raise TargetsFileError(f"{path}: [{i}].targets",
                                       f"{raw!r} is not HOST:PORT", "format")
            found.append(address)
    return found
