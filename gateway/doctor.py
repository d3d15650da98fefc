"""`erp-gateway doctor`: is this configuration able to serve? One line per check, `ok` or
`failed` with why: the mode, the database, Redis, the signing keys, each vendor (one
harmless authenticated call through its client) and each live vendor's webhook secrets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from gateway import storage
from gateway.keys import KeyStore
from gateway.modes import live_problems
from gateway.platforms import build_platforms
from gateway.settings import VENDORS, Settings, redact_url

__all__ = ["Check", "run_checks"]

TIMEOUT_SECONDS = 15.0
"""Per check: a vendor call retries within its own deadline, a database connect may hang."""

_PROBES: dict[str, Callable[[Any], Awaitable[Any]]] = {
    # One page of one item of something every integration user may read.
    "salesforce": lambda client: client.list_accounts(limit=1),
    "stripe": lambda client: client.list_customers(limit=1),
    "zendesk": lambda client: client.list_organizations(limit=1),
    "netsuite": lambda client: client.list_customers(limit=1),
}


@dataclass(frozen=True)
class Check:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.name:<22} {'ok' if self.ok else 'failed':<7} {self.detail}"


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in order; none raises."""
    checks = [_mode(settings)]
    checks.append(await _guarded("database", _database(settings)))
    if settings.redis_url is not None:
        checks.append(await _guarded("redis", _redis(settings.redis_url)))
    checks.append(await _guarded("signing keys", _keys(settings)))
    checks += await _vendors(settings)
    for source in ("stripe", "zendesk"):
        if settings.is_live(source):
            secrets = settings.webhook_secrets(source)
            name = f"ERPGW_{source.upper()}_WEBHOOK_SECRETS"
            checks.append(
                Check(
                    f"{source} webhook secret",
                    bool(secrets) or settings.sandbox.enabled,
                    f"{len(secrets)} configured"
                    if secrets
                    else f"{name} is unset"
                    + (" (the sandbox secret is used)" if settings.sandbox.enabled else ""),
                )
            )
    return checks


def _mode(settings: Settings) -> Check:
    if settings.sandbox.enabled:
        emulated = [vendor for vendor in VENDORS if settings.is_emulated(vendor)]
        return Check("mode", True, f"sandbox (emulated: {', '.join(emulated) or 'none'})")
    problems = live_problems(settings)
    return Check("mode", not problems, "; ".join(problems) or "live, every vendor configured")


async def _guarded(name: str, check: Awaitable[str]) -> Check:
    try:
        detail = await asyncio.wait_for(check, TIMEOUT_SECONDS)
    except TimeoutError:
        return Check(name, False, f"no answer within {TIMEOUT_SECONDS:.0f} s")
    except Exception as exc:
        return Check(name, False, _why(exc))
    return Check(name, True, detail)


async def _database(settings: Settings) -> str:
    engine = storage.create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
    finally:
        await engine.dispose()
    return f"connected to {redact_url(settings.database_url)}"


async def _redis(url: str) -> str:
    client = Redis.from_url(url)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return f"PING answered at {redact_url(url)}"


async def _keys(settings: Settings) -> str:
    keys = KeyStore(settings.signing_keys_dir)
    try:
        await asyncio.to_thread(keys.reload)
    except FileNotFoundError:
        raise _Failed(
            f"no signing keys in {settings.signing_keys_dir} (`serve` or "
            "`erp-gateway keys rotate` makes the first)"
        ) from None
    return f"current key {keys.current.kid} in {settings.signing_keys_dir}"


async def _vendors(settings: Settings) -> list[Check]:
    engine = storage.create_engine(settings.database_url)
    try:
        platforms = build_platforms(
            settings, engine=engine, redis=None, registry=CollectorRegistry(), record_calls=False
        )
    except Exception as exc:
        await engine.dispose()
        return [Check("vendors", False, _why(exc))]
    checks = []
    try:
        for vendor in VENDORS:
            wired = platforms.vendors.get(vendor)
            if wired is None:
                sandbox = settings.sandbox.enabled
                why = "not wired (not in ERPGW_SANDBOX_VENDORS)" if sandbox else "no credentials"
                checks.append(Check(vendor, sandbox, why))
                continue
            kind = "emulated" if wired.emulator is not None else "live"
            checks.append(await _guarded(vendor, _probe(vendor, wired.client, kind)))
    finally:
        await platforms.stop()
        await engine.dispose()
    return checks


async def _probe(vendor: str, client: Any, kind: str) -> str:
    await _PROBES[vendor](client)
    return f"{kind}: authenticated call answered"


class _Failed(Exception):
    """A check failed for a reason its message says in full."""


def _why(exc: BaseException) -> str:
    if isinstance(exc, _Failed):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {redact_url(text)}" if text else type(exc).__name__
