"""The Prometheus exporter-toolkit web config file (`--web.config.file`): TLS and basic auth.

Format users already know: `tls_server_config` (cert_file, key_file, client_ca_file,
client_auth_type, min_version, max_version, client_allowed_sans), `http_server_config.headers`
and `basic_auth_users` (user: bcrypt hash). bcrypt is imported lazily (standalone only) and
checked in a worker thread; unknown users cost one bcrypt check too (no timing oracle).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ssl
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional

from .config import ConfigError

_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
MAX_PENDING_CHECKS = 16  # bcrypt checks queued at once; more answer 429 Too Many Requests
_REMEMBERED = 1024  # verified and refused credentials remembered (each: a 32-byte digest)


class TooManyChecks(Exception):
    """More password checks are pending than MAX_PENDING_CHECKS: try again later (429)."""


class TLSSettings:
    def __init__(self, cert_file: str, key_file: str, client_ca_file: Optional[str] = None,
                 client_auth_type: str = "NoClientCert", min_version: str = "TLS12",
                 max_version: Optional[str] = None,
                 client_allowed_sans: Optional[List[str]] = None) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.client_ca_file = client_ca_file
        self.client_auth_type = client_auth_type
        self.min_version = min_version
        self.max_version = max_version
        self.client_allowed_sans = client_allowed_sans or []

    def context(self, key: str) -> ssl.SSLContext:
        """A server context; TLS 1.2 at least, whatever the file says."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = _VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = _VERSIONS[self.max_version]
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(key + ".cert_file", "cannot load certificate/key: %s" % e) from None
        ctx.verify_mode = _CLIENT_AUTH[self.client_auth_type]
        if self.client_ca_file:
            try:
                ctx.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(key + ".client_ca_file", "cannot load: %s" % e) from None
        return ctx

    def san_allowed(self, peercert: Optional[Dict[str, Any]]) -> bool:
        if not self.client_allowed_sans:
            return True
        sans = [v for _, v in (peercert or {}).get("subjectAltName", ())]
        return any(s in self.client_allowed_sans for s in sans)


def parse_tls(data: Any, key: str) -> TLSSettings:
    if not isinstance(data, dict):
        raise ConfigError(key, "expected a mapping")
    allowed = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
               "max_version", "client_allowed_sans"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise ConfigError("%s.%s" % (key, extra[0]), "unknown or unsupported key")
    for option in ("cert_file", "key_file"):
        if not isinstance(data.get(option), str) or not data[option]:
            raise ConfigError("%s.%s" % (key, option), "required")
    auth = data.get("client_auth_type", "NoClientCert")
    if auth not in _CLIENT_AUTH:
        raise ConfigError(key + ".client_auth_type", "one of %s" % ", ".join(_CLIENT_AUTH))
    if data.get("client_ca_file") and auth == "NoClientCert":
        raise ConfigError(key + ".client_auth_type",
                          "client_ca_file is set: use RequireAndVerifyClientCert or "
                          "VerifyClientCertIfGiven")
    if auth != "NoClientCert" and not data.get("client_ca_file"):
        raise ConfigError(key + ".client_ca_file", "required for %s" % auth)
    for option in ("min_version", "max_version"):
        if option in data and data[option] not in _VERSIONS:
            raise ConfigError("%s.%s" % (key, option), "TLS12 or TLS13 (older is refused)")
    sans = data.get("client_allowed_sans") or []
    if not isinstance(sans, list):
        raise ConfigError(key + ".client_allowed_sans", "expected a list")
    return TLSSettings(data["cert_file"], data["key_file"], data.get("client_ca_file"), auth,
                       data.get("min_version", "TLS12"), data.get("max_version"),
                       [str(s) for s in sans])


class BasicAuth:
    """bcrypt (or legacy plaintext from reverse_exporter configs) user checks."""

    def __init__(self, users: Dict[str, str]) -> None:
        import bcrypt

        self._bcrypt = bcrypt
        self.users = dict(users)
        # Unknown users are checked against this, so they take as long as known ones.
        costs = [int(h[4:6]) for h in users.values()
                 if h.startswith(_BCRYPT_PREFIXES) and h[4:6].isdigit()]
        self._dummy = bcrypt.hashpw(b"unknown-user", bcrypt.gensalt(rounds=max(costs or [10])))
        self._known: "OrderedDict[bytes, bool]" = OrderedDict()  # digest -> outcome, LRU
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bcrypt")
        self._pending = 0

    def __bool__(self) -> bool:
        return bool(self.users)

    def _check(self, user: str, password: str) -> bool:
        stored = self.users.get(user)
        pw = password.encode("utf-8")
        if stored is None:
            self._bcrypt.checkpw(pw, self._dummy)
            return False
        if stored.startswith(_BCRYPT_PREFIXES):
            try:
                return self._bcrypt.checkpw(pw, stored.encode("utf-8"))
            except ValueError:
                return False
        return hmac.compare_digest(pw, stored.encode("utf-8"))

    async def allowed(self, header: Optional[str]) -> bool:
        """True if the Authorization header carries valid credentials.

        Raises TooManyChecks when MAX_PENDING_CHECKS checks already wait for bcrypt.
        """
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = base64.b64decode(header[6:], validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        digest = hashlib.sha256(("%s\0%s" % (user, password)).encode("utf-8")).digest()
        known = self._known.get(digest)
        if known is not None:
            self._known.move_to_end(digest)
            return known
        if self._pending >= MAX_PENDING_CHECKS:
            raise TooManyChecks()
        self._pending += 1
        try:
            ok = await asyncio.get_running_loop().run_in_executor(
                self._pool, self._check, user, password)
        finally:
            self._pending -= 1
        self._known[digest] = ok
        if len(self._known) > _REMEMBERED:
            self._known.popitem(last=False)
        return ok

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class WebConfig:
    def __init__(self) -> None:
        self.tls: Optional[TLSSettings] = None
        self.users: Dict[str, str] = {}
        self.headers: Dict[str, str] = {}


def load_web_config(path: str) -> WebConfig:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(path, e.strerror or str(e)) from None
    except yaml.YAMLError as e:
        raise ConfigError(path, "invalid YAML: %s" % e) from None
    if not isinstance(data, dict):
        raise ConfigError(path, "expected a mapping")
    extra = sorted(set(data) - set(WEB_CONFIG_KEYS))
    if extra:
        raise ConfigError(extra[0], "unknown or unsupported key")
    return web_config_from(data)


WEB_CONFIG_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config")


def web_config_from(data: Dict[str, Any]) -> WebConfig:
    """The WEB_CONFIG_KEYS of a mapping read from YAML (other keys are the caller's), as
    a WebConfig; ConfigError naming the key when one is wrong."""
    wc = WebConfig()
    if data.get("tls_server_config"):
        wc.tls = parse_tls(data["tls_server_config"], "tls_server_config")
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise ConfigError("basic_auth_users", "expected a mapping user: bcrypt-hash")
    for user, digest in users.items():
        if not isinstance(digest, str) or not digest.startswith(_BCRYPT_PREFIXES):
            raise ConfigError("basic_auth_users.%s" % user, "must be a bcrypt hash ($2y$...)")
        wc.users[str(user)] = digest
    http = data.get("http_server_config") or {}
    if not isinstance(http, dict) or sorted(set(http) - {"headers"}):
        raise ConfigError("http_server_config", "only 'headers' is supported")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError("http_server_config.headers", "expected a mapping")
    wc.headers = {str(k): str(v) for k, v in headers.items()}
    return wc
