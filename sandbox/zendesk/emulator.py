"""Zendesk Support in memory, speaking its HTTP API: the sandbox the gateway runs against when no
Zendesk credentials are configured, and what the client's tests drive over real HTTP.

Serve or mount `ZendeskEmulator().vendor` (fault injection and `/_emulator/*` in front of the
Zendesk routes). Paths are `/api/v2/...` with an optional `.json` suffix; authentication is
`Basic base64("{email}/token:{api_token}")` or an OAuth bearer token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import msgspec
from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from sandbox.control import ASGIApp, EmulatedVendor, FaultResponse
from sandbox.credentials import ZENDESK
from sandbox.zendesk.context import (
    ACCOUNT_STATE_KEY,
    JSON,
    Account,
    json_response,
)
from sandbox.zendesk.errors import (
    ZendeskApiError,
    bad_request,
    fault_body,
    invalid_endpoint,
)
from sandbox.zendesk.front import Credentials, RateLimiter, ZendeskFront
from sandbox.zendesk.routes_directory import DIRECTORY_ROUTES
from sandbox.zendesk.routes_incremental import INCREMENTAL_ROUTES
from sandbox.zendesk.routes_tickets import TICKET_ROUTES
from sandbox.zendesk.routes_webhooks import WEBHOOK_ROUTES
from sandbox.zendesk.seed import seed_account, seed_api_user
from sandbox.zendesk.store import DirectoryStore
from sandbox.zendesk.tickets import TicketDesk
from sandbox.zendesk.webhooks import Delivery, WebhookDispatcher

__all__ = [
    "DEFAULT_RATE_LIMIT_PER_MINUTE",
    "ZendeskEmulator",
    "create_emulator",
]

DEFAULT_RATE_LIMIT_PER_MINUTE = 700
"""Zendesk Suite Professional's account-wide API limit."""


class ZendeskEmulator:
    """One emulated Zendesk account, seeded from the demo company."""

    def __init__(
        self,
        *,
        seed: bool = True,
        rate_limit_per_minute: int | None = DEFAULT_RATE_LIMIT_PER_MINUTE,
        email: str = ZENDESK.email,
        api_token: str = ZENDESK.api_token,
        oauth_token: str | None = ZENDESK.oauth_token,
        read_only_oauth_token: str | None = None,
        webhook_http: httpx.AsyncClient | None = None,
        webhook_secret: str = ZENDESK.webhook_secret,
        webhook_max_attempts: int = 3,
        webhook_retry_delay: float = 0.2,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.seeded = seed
        self.clock: Callable[[], datetime] = clock or _utc_now
        self.directory = DirectoryStore(clock=self.clock)
        self.desk = TicketDesk(self.directory)
        self.webhooks = WebhookDispatcher(
            clock=self.clock, secret=webhook_secret, http=webhook_http,
            max_attempts=webhook_max_attempts, retry_delay=webhook_retry_delay,
        )
        self.desk.listeners.append(self.webhooks.on_ticket_events)
        self.limiter = RateLimiter(
            limit=rate_limit_per_minute or DEFAULT_RATE_LIMIT_PER_MINUTE,
            enforce=rate_limit_per_minute is not None, clock=self.clock,
        )
        account = Account(directory=self.directory, desk=self.desk, webhooks=self.webhooks)
        self.app = Litestar(
            route_handlers=[
                *DIRECTORY_ROUTES, *TICKET_ROUTES, *INCREMENTAL_ROUTES, *WEBHOOK_ROUTES,
            ],
            exception_handlers={
                ZendeskApiError: _zendesk_error,
                HTTPException: _http_error,
                Exception: _server_error,
            },
            state=State({ACCOUNT_STATE_KEY: account}),
            openapi_config=None,
        )
        credentials = Credentials(
            email=email, api_token=api_token, oauth_token=oauth_token,
            read_only_oauth_token=read_only_oauth_token,
        )
        self.vendor = EmulatedVendor(
            ZendeskFront(cast("ASGIApp", self.app), credentials=credentials,
                         limiter=self.limiter),
            render_fault=self.render_fault,
            reset=self.reset,
        )
        self.reset()

    def reset(self) -> None:
        """Back to the seeded demo account (same ids every time), with no webhooks."""
        self.directory.clear()
        self.desk.clear()
        self.webhooks.reset()
        self.limiter.reset()
        seed_api_user(self.directory)
        if self.seeded:
            seed_account(self.directory, self.desk)

    async def drain_webhooks(self) -> None:
        """Wait for every webhook delivery queued so far to succeed or give up."""
        await self.webhooks.drain()

    @property
    def webhook_deliveries(self) -> list[Delivery]:
        return list(self.webhooks.deliveries)

    def render_fault(self, status: int, retry_after: int | None) -> FaultResponse:
        """An injected fault in Zendesk's own shape, with its rate-limit headers."""
        headers = [
            ("X-Rate-Limit", str(self.limiter.limit)),
            ("X-Rate-Limit-Remaining", "0" if status == 429 else str(self.limiter.limit)),
        ]
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        return FaultResponse(
            status=status, body=msgspec.json.encode(fault_body(status)), content_type=JSON,
            headers=tuple(headers),
        )


def create_emulator(**kwargs: Any) -> ZendeskEmulator:
    """A new emulated Zendesk account; keyword arguments as `ZendeskEmulator`."""
    return ZendeskEmulator(**kwargs)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _zendesk_error(_: Request[Any, Any, Any], exc: ZendeskApiError) -> Response[bytes]:
    return json_response(exc.body, status=exc.status, headers=exc.headers)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    # Zendesk answers an unknown path, or a known path with another method, as InvalidEndpoint.
    if exc.status_code in (404, 405):
        return _zendesk_error(request, invalid_endpoint())
    if exc.status_code == 400:
        return _zendesk_error(request, bad_request("InvalidValue", "Invalid value", exc.detail))
    return json_response(fault_body(exc.status_code), status=exc.status_code)


def _server_error(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    return json_response(fault_body(500), status=500)
