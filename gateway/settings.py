"""The gateway's settings: `ERPGW_*` environment variables parsed once into one typed object.

A bad value stops start-up with one line naming the variable (`SettingsError`). Vendor
credentials are read by each vendor package (`credentials_from_env`), since only the vendor
package knows what its platform needs; any vendor without them runs against its emulator.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, urlsplit

__all__ = ["ApiVersionEntry", "Settings", "SettingsError", "load_settings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/erp-gateway.db"
DEFAULT_RATE_LIMIT_TIERS = (
    "bronze=60/minute;silver=600/minute;gold=6000/minute;anonymous=30/minute;"
    "anonymous.webhooks=1200/minute"
)
_URL_PASSWORD = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?[^:/?#@]*):.*@")
"""`user:password@` in a URL, up to its last `@` (hiding too much beats showing a password)."""


class SettingsError(ValueError):
    """A setting has a value the gateway cannot start with; the message names the variable."""


@dataclass(frozen=True, kw_only=True)
class ApiVersionEntry:
    """The lifecycle of one major version of one API (e.g. `system/crm` `v1`)."""

    api: str
    major: str
    status: Literal["current", "deprecated"] = "current"
    deprecated_at: datetime | None = None
    sunset_at: datetime | None = None
    successor: str | None = None
    """Path prefix of the version that replaces this one, e.g. `/system/crm/v2`."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    """Async SQLAlchemy URL: `sqlite+aiosqlite:///...` or `postgresql+asyncpg://...`."""
    redis_url: str | None = None
    """Shared state for several replicas (rate limits, quotas, caches); None = in-process."""
    host: str = "127.0.0.1"
    port: int = 8000
    issuer: str = "http://127.0.0.1:8000"
    """`iss` of the tokens we mint; also the default audience."""
    audience: str = "erp-gateway"
    signing_keys_dir: Path = Path("var/keys")
    external_issuer: str | None = None
    external_jwks_url: str | None = None
    log_format: Literal["json", "console"] = "console"
    log_level: str = "INFO"
    access_log: bool = True
    rate_limit_tiers: str = DEFAULT_RATE_LIMIT_TIERS
    """`tier[.group]=N/period;...`, parsed by the rate-limit policy."""
    rate_limit_strategy: Literal["moving-window", "sliding-window-counter"] = (
        "sliding-window-counter"
    )
    rate_limit_on_store_error: Literal["allow", "deny"] = "allow"
    max_body_bytes: int = 1_048_576
    idempotency_retention_seconds: int = 86_400
    token_ttl_seconds: int = 900
    api_versions: tuple[ApiVersionEntry, ...] = ()
    public_base_url: str | None = None
    """Where vendors reach our webhooks; default `http://{host}:{port}`."""
    var_dir: Path = Path("var")
    emulators: bool = True
    """Mount the in-process vendor emulators under `/_sandbox/<vendor>`."""
    vendor_quotas: bool = True
    """Keep each vendor's client-side quota budget (Stripe 25/s, NetSuite 5 concurrent, ...).
    Off only where the vendor's own limits were raised, or against unlimited emulators in
    benchmarks: the vendor's 429s still apply."""
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The raw environment the settings came from, for vendor packages' credentials."""

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"http://{self.host}:{self.port}"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse the `ERPGW_*` variables of `env` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    reader = _Reader(env)
    host = reader.text("ERPGW_HOST", "127.0.0.1")
    port = reader.integer("ERPGW_PORT", 8000, minimum=1, maximum=65535)
    var_dir = Path(reader.text("ERPGW_VAR_DIR", "var"))
    external_issuer = reader.optional("ERPGW_EXTERNAL_ISSUER")
    external_jwks_url = reader.url("ERPGW_EXTERNAL_JWKS_URL", schemes=("http", "https"))
    if (external_issuer is None) != (external_jwks_url is None):
        missing = (
            "ERPGW_EXTERNAL_JWKS_URL" if external_jwks_url is None else "ERPGW_EXTERNAL_ISSUER"
        )
        raise SettingsError(f"{missing}: required with the other ERPGW_EXTERNAL_* setting")
    return Settings(
        database_url=reader.database_url("ERPGW_DATABASE_URL", DEFAULT_DATABASE_URL),
        redis_url=reader.url("ERPGW_REDIS_URL", schemes=("redis", "rediss", "unix")),
        host=host,
        port=port,
        issuer=reader.url("ERPGW_ISSUER", schemes=("http", "https")) or f"http://{host}:{port}",
        audience=reader.text("ERPGW_AUDIENCE", "erp-gateway"),
        signing_keys_dir=Path(reader.text("ERPGW_SIGNING_KEYS_DIR", str(var_dir / "keys"))),
        external_issuer=external_issuer,
        external_jwks_url=external_jwks_url,
        log_format=reader.choice("ERPGW_LOG_FORMAT", ("console", "json"), "console"),  # type: ignore[arg-type]
        log_level=reader.choice(
            "ERPGW_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True
        ),
        access_log=reader.boolean("ERPGW_ACCESS_LOG", True),
        rate_limit_tiers=reader.rate_limit_tiers("ERPGW_RATE_LIMIT_TIERS"),
        rate_limit_strategy=reader.choice(  # type: ignore[arg-type]
            "ERPGW_RATE_LIMIT_STRATEGY",
            ("sliding-window-counter", "moving-window"),
            "sliding-window-counter",
        ),
        rate_limit_on_store_error=reader.choice(  # type: ignore[arg-type]
            "ERPGW_RATE_LIMIT_ON_STORE_ERROR", ("allow", "deny"), "allow"
        ),
        max_body_bytes=reader.integer("ERPGW_MAX_BODY_BYTES", 1_048_576, minimum=1024),
        idempotency_retention_seconds=reader.integer(
            "ERPGW_IDEMPOTENCY_RETENTION_SECONDS", 86_400, minimum=60
        ),
        token_ttl_seconds=reader.integer("ERPGW_TOKEN_TTL_SECONDS", 900, minimum=60),
        api_versions=reader.api_versions("ERPGW_API_VERSIONS"),
        public_base_url=reader.url("ERPGW_PUBLIC_BASE_URL", schemes=("http", "https")),
        var_dir=var_dir,
        emulators=reader.boolean("ERPGW_EMULATORS", True),
        vendor_quotas=reader.boolean("ERPGW_VENDOR_QUOTAS", True),
        env=env,
    )


class _Reader:
    """Reads one variable at a time, raising `SettingsError` naming it on a bad value."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def optional(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise SettingsError(f"{name}: {value} is out of range ({bound})")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}: expected true or false, got {raw!r}")

    def choice(self, name: str, options: tuple[str, ...], default: str, upper: bool = False) -> str:
        raw = self.optional(name)
        if raw is None:
            return default
        value = raw.upper() if upper else raw.lower()
        if value not in options:
            raise SettingsError(f"{name}: expected one of {', '.join(options)}, got {raw!r}")
        return value

    def url(self, name: str, *, schemes: tuple[str, ...]) -> str | None:
        raw = self.optional(name)
        if raw is None:
            return None
        parts = _split(name, raw)
        web = parts.scheme in ("http", "https")
        if parts.scheme not in schemes or not (parts.netloc if web else parts.netloc or parts.path):
            raise SettingsError(
                f"{name}: expected a URL with scheme {' or '.join(schemes)}, got {_redact(raw)!r}"
            )
        return raw.rstrip("/") if web else raw

    def database_url(self, name: str, default: str) -> str:
        raw = self.text(name, default)
        scheme = _split(name, raw).scheme
        if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise SettingsError(
                f"{name}: expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://..., "
                f"got {_redact(raw)!r}"
            )
        return raw

    def rate_limit_tiers(self, name: str) -> str:
        from gateway.rate_limits import parse_tiers

        raw = self.text(name, DEFAULT_RATE_LIMIT_TIERS)
        try:
            parse_tiers(raw)
        except ValueError as exc:
            raise SettingsError(f"{name}: {exc}") from None
        return raw

    def api_versions(self, name: str) -> tuple[ApiVersionEntry, ...]:
        raw = self.optional(name)
        if raw is None:
            return ()
        try:
            entries = json.loads(raw)
            if not isinstance(entries, list):
                raise ValueError("the value is not a JSON list")
            return tuple(_version_entry(item) for item in entries)
        except (ValueError, TypeError, KeyError) as exc:
            raise SettingsError(
                f"{name}: expected a JSON list of {{api, major, status, deprecated_at, "
                f"sunset_at, successor}} objects ({exc})"
            ) from None


def _version_entry(item: object) -> ApiVersionEntry:
    if not isinstance(item, dict):
        raise ValueError(f"entry {item!r} is not an object")
    for key in ("api", "major", "status", "deprecated_at", "sunset_at", "successor"):
        required = key in ("api", "major")
        if (required or item.get(key) is not None) and not isinstance(item.get(key), str):
            raise ValueError(f"{key} must be a string, got {item.get(key)!r}")

    def when(key: str) -> datetime | None:
        value = item.get(key)
        if value is None:
            return None
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    status = item.get("status", "current")
    if status not in ("current", "deprecated"):
        raise ValueError(f"status must be current or deprecated, got {status!r}")
    return ApiVersionEntry(
        api=item["api"].strip("/"),
        major=item["major"],
        status=status,
        deprecated_at=when("deprecated_at"),
        sunset_at=when("sunset_at"),
        successor=item.get("successor"),
    )


def _split(name: str, raw: str) -> SplitResult:
    try:
        return urlsplit(raw)
    except ValueError:
        raise SettingsError(f"{name}: {_redact(raw)!r} is not a valid URL") from None


def _redact(url: str) -> str:
    """Hide a password in a URL before it is printed (also in URLs that do not parse)."""
    return _URL_PASSWORD.sub(r"\1:***@", url)
