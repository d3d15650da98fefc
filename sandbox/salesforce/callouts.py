"""The org's record-triggered Flow: when an opportunity becomes Closed Won, an HTTP callout.

A real org announces a won deal the way an admin wires it: a record-triggered Flow on
Opportunity (entry condition `IsWon` changed to true) with an HTTP Callout action through a
Named Credential that signs in with OAuth 2.0 client credentials
(https://help.salesforce.com/s/articleView?id=sf.nc_named_creds_and_ext_creds.htm). The emulator
does the same: it takes a token from the Named Credential's token endpoint, then posts
`{"event": "opportunity.closed_won", "opportunity_id": ..., "event_id": ...}` with it, retrying
a failed delivery a few times. Only loopback endpoints are accepted (`sandbox.loopback`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from sandbox.loopback import LOOPBACK_HOSTS, is_loopback_url

__all__ = ["CLOSED_WON_EVENT", "CalloutDelivery", "ClosedWonCallouts", "NamedCredential"]

CLOSED_WON_EVENT = "opportunity.closed_won"
_DRAIN_LIMIT_SECONDS = 30.0


@dataclass(frozen=True, kw_only=True)
class NamedCredential:
    """Where the Flow's callout goes and how it signs in (client credentials)."""

    endpoint: str
    """The callout's URL (a loopback URL in the sandbox)."""
    token_url: str
    """The OAuth 2.0 token endpoint the Named Credential gets its access token from."""
    client_id: str
    client_secret: str

    def __post_init__(self) -> None:
        for url in (self.endpoint, self.token_url):
            if not is_loopback_url(url):
                raise ValueError(f"the sandbox calls out only to {LOOPBACK_HOSTS}, not {url}")


@dataclass
class CalloutDelivery:
    """One closed-won callout, as the emulator recorded it."""

    opportunity_id: str
    event_id: str
    attempts: int = 0
    statuses: list[int | None] = field(default_factory=list)
    delivered: bool = False


class ClosedWonCallouts:
    """Sends a callout for each opportunity that becomes Closed Won, once a target is set."""

    def __init__(self, *, max_attempts: int = 4, retry_delay: float = 0.5) -> None:
        self.target: NamedCredential | None = None
        self.deliveries: list[CalloutDelivery] = []
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0

    def reset(self) -> None:
        """Forget the deliveries (the target, set up like a Named Credential, stays)."""
        self.deliveries.clear()

    def opportunity_won(self, opportunity_id: str, stamp: str) -> None:
        """Queue the callout for a deal that just became Closed Won (no target: none)."""
        if self.target is None:
            return
        delivery = CalloutDelivery(
            opportunity_id=opportunity_id, event_id=f"{opportunity_id}:closed_won:{stamp}"
        )
        self.deliveries.append(delivery)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: a synchronous caller (seeding); nothing is sent
        self._in_flight += 1
        task = loop.create_task(self._deliver(self.target, delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every queued callout has been answered or given up (at most 30 s)."""
        deadline = time.monotonic() + _DRAIN_LIMIT_SECONDS
        while self._in_flight and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        """Cancel the callouts still being sent or retried."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver(self, target: NamedCredential, delivery: CalloutDelivery) -> None:
        try:
            async with httpx.AsyncClient(timeout=10.0) as http:
                for attempt in range(1, self.max_attempts + 1):
                    delivery.attempts = attempt
                    status = await _send_once(http, target, delivery)
                    delivery.statuses.append(status)
                    if status is not None and 200 <= status < 300:
                        delivery.delivered = True
                        return
                    if attempt < self.max_attempts:
                        await asyncio.sleep(self.retry_delay * attempt)
        finally:
            self._in_flight -= 1


async def _send_once(
    http: httpx.AsyncClient, target: NamedCredential, delivery: CalloutDelivery
) -> int | None:
    try:
        token = await http.post(
            target.token_url,
            data={"grant_type": "client_credentials"},
            auth=(target.client_id, target.client_secret),
        )
        if token.status_code != 200:
            return token.status_code
        answer = await http.post(
            target.endpoint,
            json={
                "event": CLOSED_WON_EVENT,
                "opportunity_id": delivery.opportunity_id,
                "event_id": delivery.event_id,
            },
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return answer.status_code
