"""Upstreams and client builders for the outbound policy tests."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from system_apis.outbound import (
    BreakerSettings,
    CallRecorder,
    CircuitBreaker,
    OutboundMetrics,
    PlatformPolicy,
    PolicyTransport,
    QuotaBudget,
    RetrySettings,
    Timeouts,
)

__all__ = ["Reply", "ScriptedUpstream", "fast_policy", "policy_client"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the upstream."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    body: bytes = b'{"ok": true}'


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedUpstream:
    """A plain ASGI vendor stand-in answering from a script, then with `default`."""

    script: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append(
            Seen(
                method=scope["method"],
                path=scope["path"],
                query=scope["query_string"].decode(),
                headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
                body=body,
            )
        )
        reply = self.script.pop(0) if self.script else self.default
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = [(b"content-type", b"application/json")]
        headers += [(k.encode(), v.encode()) for k, v in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})


def fast_policy(
    *,
    max_attempts: int = 3,
    deadline: float = 5.0,
    attempt: float = 4.0,
    breaker: BreakerSettings | None = None,
    statuses: Iterable[int] | None = None,
) -> PlatformPolicy:
    """A Stripe policy with millisecond backoff, so retry tests run fast."""
    retry = RetrySettings(max_attempts=max_attempts, backoff_base=0.001, backoff_cap=0.01)
    if statuses is not None:
        retry = RetrySettings(
            max_attempts=max_attempts,
            backoff_base=0.001,
            backoff_cap=0.01,
            retry_statuses=frozenset(statuses),
        )
    return PlatformPolicy(
        name="stripe",
        timeouts=Timeouts(attempt=attempt, interactive_deadline=deadline, batch_deadline=deadline),
        retry=retry,
        breaker=breaker or BreakerSettings(),
    )


def policy_client(
    inner: httpx.AsyncBaseTransport | Callable[..., Any],
    *,
    policy: PlatformPolicy | None = None,
    breaker: CircuitBreaker | None = None,
    quota: QuotaBudget | None = None,
    recorder: CallRecorder | None = None,
    metrics: OutboundMetrics | None = None,
    observe: Callable[[httpx.Response], None] | None = None,
    base_url: str = "https://vendor.test",
) -> httpx.AsyncClient:
    """An httpx client over `PolicyTransport`; `inner` may be an ASGI app or a transport."""
    policy = policy or fast_policy()
    transport = (
        inner if isinstance(inner, httpx.AsyncBaseTransport) else httpx.ASGITransport(app=inner)
    )
    return httpx.AsyncClient(
        base_url=base_url,
        transport=PolicyTransport(
            transport,
            policy=policy,
            breaker=breaker or CircuitBreaker(policy.name, policy.breaker),
            quota=quota,
            recorder=recorder,
            metrics=metrics,
            observe=observe,
            rng=random.Random(1),
        ),
    )
