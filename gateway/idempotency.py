"""`Idempotency-Key` on unsafe routes that declare it (IETF httpapi idempotency-key draft).

A route opts in with `opt={"idempotency": "required"}` (or `"optional"`). The key (a bare
token or a quoted structured-field string, at most 255 characters) is scoped by client and
stored with a fingerprint of method, path and body. The first request claims the key with an
atomic insert; a retry gets the stored status, headers and body with `Idempotent-Replayed:
true`; a retry while the first is in flight gets 409 + Retry-After; the same key with another
request gets 422; a missing key where required gets 400. A handler that fails with a 5xx or
an exception releases its claim, so a retry runs again rather than replaying an outage.

A claim belongs to the process that made it, as a lease: it is good for `LEASE_SECONDS`, and
the process renews the leases of all the claims it holds every `RENEW_SECONDS` in one
statement (`IdempotencyStore.keep_claims`, run by the gateway core). A process that dies
(SIGKILL, OOM, a lost host) renews nothing, so its claims lapse within `LEASE_SECONDS` and
the next request with the key takes the claim over and runs the handler (or replays the
answer, if it was stored before the crash). A lease rather than a lookup of the owner's
heartbeat, because it needs no knowledge of who the owner is: no process table, no clock
shared across hosts beyond the database's, and nothing from the layers below.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import Conflict, InvalidRequest, ValidationFailed
from gateway.storage import idempotency_records

__all__ = [
    "IDEMPOTENCY_KEY_PATTERN",
    "IdempotencyPolicy",
    "IdempotencyStore",
    "parse_idempotency_key",
]

MAX_KEY_LENGTH = 255
BARE_KEY = re.compile(r"^[A-Za-z0-9._~:/+=\-]+$")
QUOTED_KEY = re.compile(r'^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$')
IDEMPOTENCY_KEY_PATTERN = (
    r'^(?:[A-Za-z0-9._~:/+=\-]{1,255}|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\]){1,255}")$'
)
"""What `parse_idempotency_key` accepts, as the OpenAPI states it: a token, or a quoted
structured-field string of 1 to 255 characters."""
LEASE_SECONDS = 5
"""A claim not renewed for this long is taken as abandoned (its process died)."""
RENEW_SECONDS = 1.0
"""How often a process renews the leases of the claims it holds (several times a lease, so a
busy event loop or a slow write does not lose a live claim)."""
IN_FLIGHT_RETRY_AFTER = 1
"""Retry-After of a 409 for a key in flight: a dead owner's claim lapses within a lease."""
RENEW_BATCH = 500
REPLAY_HEADER_DENYLIST = frozenset(
    {
        "content-length",
        "date",
        "server",
        "traceparent",
        "x-correlation-id",
        "ratelimit",
        "ratelimit-policy",
        "idempotent-replayed",
        "set-cookie",
    }
)


def parse_idempotency_key(raw: str) -> str:
    """The key as sent, or `InvalidRequest` for a malformed one."""
    value = raw.strip()
    quoted = QUOTED_KEY.match(value)
    key = re.sub(r"\\(.)", r"\1", quoted.group(1)) if quoted else value
    if not key or len(key) > MAX_KEY_LENGTH or (not quoted and not BARE_KEY.match(key)):
        raise InvalidRequest(
            "Idempotency-Key must be a token or a quoted string of 1 to 255 characters",
            code="idempotency_key_invalid",
        )
    return key


@dataclass(frozen=True, kw_only=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, kw_only=True)
class Claim:
    """Outcome of claiming a key: ours to run, or a stored answer to replay."""

    acquired: bool
    replay: StoredResponse | None = None


class IdempotencyStore:
    """Idempotency records in the gateway database; the claim is one atomic insert."""

    def __init__(self, engine: AsyncEngine, *, retention_seconds: int) -> None:
        self.engine = engine
        self.retention = timedelta(seconds=retention_seconds)
        self._held: Counter[tuple[str, str]] = Counter()
        """(client id, key) of the claims this process holds, with how many requests hold each
        (one, unless a takeover raced with its own process)."""

    async def keep_claims(self) -> None:
        """Renew the leases of the claims this process holds, for as long as it runs."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            await self.renew()

    async def renew(self) -> int:
        """Extend the lease of every claim this process holds; returns how many."""
        held = list(self._held)
        renewed = 0
        until = datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS)
        for start in range(0, len(held), RENEW_BATCH):
            batch = held[start : start + RENEW_BATCH]
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    idempotency_records.update()
                    .where(
                        sa.tuple_(idempotency_records.c.client_id, idempotency_records.c.key).in_(
                            batch
                        ),
                        idempotency_records.c.state == "in_flight",
                    )
                    .values(locked_until=until)
                )
            renewed += int(result.rowcount or 0)
        return renewed

    def _hold(self, client_id: str, key: str) -> None:
        self._held[(client_id, key)] += 1

    def _let_go(self, client_id: str, key: str) -> None:
        self._held[(client_id, key)] -= 1
        if self._held[(client_id, key)] <= 0:
            del self._held[(client_id, key)]

    async def claim(self, client_id: str, key: str, fingerprint: str) -> Claim:
        claim = await self._claim(client_id, key, fingerprint)
        if claim.acquired:
            self._hold(client_id, key)
        return claim

    async def _claim(self, client_id: str, key: str, fingerprint: str) -> Claim:
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            inserted = await conn.execute(self._insert(client_id, key, fingerprint, now))
            if inserted.rowcount == 1:
                return Claim(acquired=True)
            row = (
                await conn.execute(
                    sa.select(idempotency_records).where(
                        idempotency_records.c.client_id == client_id,
                        idempotency_records.c.key == key,
                    )
                )
            ).first()
            if row is None:
                raise Conflict("the key is being released; retry", retry_after=1)
            record = row._mapping
            if _aware(record["expires_at"]) <= now:
                return await self._take_over(conn, client_id, key, fingerprint, now, expired=True)
            if record["fingerprint"] != fingerprint:
                raise ValidationFailed(
                    "this Idempotency-Key was used with a different request",
                    code="idempotency_key_reused",
                )
            if record["state"] == "completed":
                return Claim(
                    acquired=False,
                    replay=StoredResponse(
                        status=int(record["status_code"]),
                        headers=[(str(n), str(v)) for n, v in json.loads(record["headers"])],
                        body=bytes(record["body"] or b""),
                    ),
                )
            if _aware(record["locked_until"]) <= now:
                return await self._take_over(conn, client_id, key, fingerprint, now, expired=False)
            raise Conflict(
                "a request with this Idempotency-Key is still in progress",
                retry_after=IN_FLIGHT_RETRY_AFTER,
                code="idempotency_key_in_flight",
            )

    async def complete(self, client_id: str, key: str, response: StoredResponse) -> None:
        self._let_go(client_id, key)
        async with self.engine.begin() as conn:
            await conn.execute(
                idempotency_records.update()
                .where(
                    idempotency_records.c.client_id == client_id,
                    idempotency_records.c.key == key,
                )
                .values(
                    state="completed",
                    status_code=response.status,
                    headers=json.dumps(response.headers),
                    body=response.body,
                )
            )

    async def release(self, client_id: str, key: str) -> None:
        self._let_go(client_id, key)
        async with self.engine.begin() as conn:
            await conn.execute(
                idempotency_records.delete().where(
                    idempotency_records.c.client_id == client_id,
                    idempotency_records.c.key == key,
                    idempotency_records.c.state == "in_flight",
                )
            )

    async def purge_expired(self) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                idempotency_records.delete().where(
                    idempotency_records.c.expires_at <= datetime.now(UTC)
                )
            )
        return int(result.rowcount or 0)

    def _insert(self, client_id: str, key: str, fingerprint: str, now: datetime) -> Any:
        values = {
            "client_id": client_id,
            "key": key,
            "fingerprint": fingerprint,
            "state": "in_flight",
            "created_at": now,
            "locked_until": now + timedelta(seconds=LEASE_SECONDS),
            "expires_at": now + self.retention,
        }
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        return insert(idempotency_records).values(**values).on_conflict_do_nothing()

    async def _take_over(
        self,
        conn: Any,
        client_id: str,
        key: str,
        fingerprint: str,
        now: datetime,
        *,
        expired: bool,
    ) -> Claim:
        """Claim an expired or abandoned record; exactly one contender's update matches."""
        stale = (
            idempotency_records.c.expires_at <= now
            if expired
            else sa.and_(
                idempotency_records.c.state == "in_flight",
                idempotency_records.c.locked_until <= now,
            )
        )
        result = await conn.execute(
            idempotency_records.update()
            .where(
                idempotency_records.c.client_id == client_id,
                idempotency_records.c.key == key,
                stale,
            )
            .values(
                fingerprint=fingerprint,
                state="in_flight",
                status_code=None,
                headers=None,
                body=None,
                created_at=now,
                locked_until=now + timedelta(seconds=LEASE_SECONDS),
                expires_at=now + self.retention,
            )
        )
        if result.rowcount == 1:
            return Claim(acquired=True)
        raise Conflict(
            "a request with this Idempotency-Key is still in progress",
            retry_after=IN_FLIGHT_RETRY_AFTER,
            code="idempotency_key_in_flight",
        )


class IdempotencyPolicy:
    """Runs a request of a route whose `opt["idempotency"]` is `required` or `optional`."""

    def __init__(self, store: IdempotencyStore) -> None:
        self.store = store

    @staticmethod
    def applies_to(scope: Scope) -> bool:
        mode = scope["route_handler"].opt.get("idempotency")
        method: str = scope["method"]  # type: ignore[typeddict-item]
        return mode in ("required", "optional") and method not in ("GET", "HEAD", "OPTIONS")

    async def run(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        mode = scope["route_handler"].opt.get("idempotency")
        raw_key = _header(scope, b"idempotency-key")
        if raw_key is None:
            if mode == "required":
                raise InvalidRequest(
                    "this operation requires an Idempotency-Key header",
                    code="idempotency_key_missing",
                )
            await next_app(scope, receive, send)
            return
        key = parse_idempotency_key(raw_key)
        body = await _read_body(receive)
        client_id = getattr(scope.get("user"), "client_id", "anonymous")
        claim = await self.store.claim(client_id, key, _fingerprint(scope, body))
        if claim.replay is not None:
            await _send_replay(send, claim.replay)
            return
        await self._run(scope, body, send, next_app, client_id, key)

    async def _run(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        next_app: ASGIApp,
        client_id: str,
        key: str,
    ) -> None:
        captured_status = 500
        captured_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            nonlocal captured_status, captured_headers
            if message["type"] == "http.response.start":
                captured_status = message["status"]
                captured_headers = [
                    (n.decode("latin-1"), v.decode("latin-1"))
                    for n, v in message.get("headers", ())
                    if n.decode("latin-1").lower() not in REPLAY_HEADER_DENYLIST
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await next_app(scope, _replay_receive(body), capture)
        except BaseException:
            await self.store.release(client_id, key)
            raise
        if captured_status >= 500:
            await self.store.release(client_id, key)
            return
        stored = StoredResponse(
            status=captured_status, headers=captured_headers, body=b"".join(chunks)
        )
        await self.store.complete(client_id, key, stored)


def _header(scope: Scope, name: bytes) -> str | None:
    for header, value in scope["headers"]:
        if header == name:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay_receive(body: bytes) -> Receive:
    sent = False

    async def receive() -> Any:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(scope["method"].encode())  # type: ignore[typeddict-item]
    digest.update(b"\0")
    digest.update(scope["path"].encode())
    digest.update(b"?")
    digest.update(scope.get("query_string", b""))
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


async def _send_replay(send: Send, stored: StoredResponse) -> None:
    headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in stored.headers]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
