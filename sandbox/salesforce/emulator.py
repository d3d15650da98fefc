"""Salesforce in memory: the OAuth token endpoint and the REST data API the gateway uses.

Speaks Salesforce's wire format: `/services/oauth2/token` (client credentials, JWT bearer),
`/services/data/vXX.X/` sObject rows, upsert by external id, SOQL queries paged through
`nextRecordsUrl`, sObject Collections, JSON-array errors, 18-character ids and the daily API
quota in `Sforce-Limit-Info`. Seeded from `sandbox.demo_data` with ids derived from the demo
keys. Links it emits (instance_url, nextRecordsUrl, attributes.url, Location) are built from the
URL the request came in on, so it works served alone or mounted under a prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar
from litestar.datastructures import State

from sandbox.control import EmulatedVendor, FaultResponse
from sandbox.credentials import SALESFORCE
from sandbox.salesforce import routes, routes_sobjects
from sandbox.salesforce.auth import OAuthServer
from sandbox.salesforce.callouts import ClosedWonCallouts, NamedCredential
from sandbox.salesforce.context import JSON, OrgState, handle_error
from sandbox.salesforce.front import ASGIApp, DataApiGate, Quota, error_answer
from sandbox.salesforce.ids import seeded_id
from sandbox.salesforce.seed import seed_org
from sandbox.salesforce.store import EmulatedOrg

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "SalesforceEmulator",
    "create_emulator",
]

DEFAULT_PAGE_SIZE = 2000
"""Salesforce returns at most 2,000 records per query batch."""

_FAULTS = {
    400: ("JSON_PARSER_ERROR", "The request body could not be parsed"),
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    409: ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"),
    429: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1462839118-38781 (-1437370368)",
    ),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable; please retry shortly"),
}


class SalesforceEmulator:
    """One emulated org: its records, connected apps, access tokens and daily API quota."""

    def __init__(
        self,
        *,
        seed: bool = True,
        daily_api_limit: int = 15000,
        query_page_size: int = DEFAULT_PAGE_SIZE,
        clients: Mapping[str, str] | None = None,
        jwt_public_keys: Mapping[str, str | bytes] | None = None,
        clock: Callable[[], datetime] | None = None,
        fault_seed: int = 0,
    ) -> None:
        self.seed = seed
        oauth = OAuthServer(
            clients=(
                clients if clients is not None else {SALESFORCE.client_id: SALESFORCE.client_secret}
            ),
            jwt_public_keys=jwt_public_keys or {},
            org_id=seeded_id("Organization", "org"),
            user_id=seeded_id("User", "integration"),
        )
        self.state = OrgState(
            org=EmulatedOrg(clock=clock or (lambda: datetime.now(UTC))),
            oauth=oauth,
            quota=Quota(limit=daily_api_limit),
            page_size=query_page_size,
        )
        self.callouts = ClosedWonCallouts()
        self._sandbox_key_pem: str | None = None
        self.app = Litestar(
            route_handlers=[*routes.ROUTES, *routes_sobjects.ROUTES],
            exception_handlers={Exception: handle_error},
            state=State({"org_state": self.state}),
            openapi_config=None,
        )
        self.vendor = EmulatedVendor(
            # Litestar's scope types are TypedDicts; the gate takes any ASGI callable.
            DataApiGate(cast(ASGIApp, self.app), oauth=oauth, quota=self.state.quota),
            render_fault=self.render_fault,
            reset=self.reset,
            seed=fault_seed,
        )
        self.reset()

    @property
    def org(self) -> EmulatedOrg:
        return self.state.org

    @property
    def api_usage(self) -> tuple[int, int]:
        """(calls used today, daily limit), as `Sforce-Limit-Info` reports them."""
        return self.state.quota.used, self.state.quota.limit

    def reset(self) -> None:
        """Back to the seeded demo state: records, access tokens, query cursors and quota."""
        self.state.org.clear()
        # The seed's won deals were won before the Flow existed: they announce nothing.
        self.state.org.on_won = None
        if self.seed:
            seed_org(self.state.org)
        self.state.org.on_won = self.callouts.opportunity_won
        self.callouts.reset()
        self.state.oauth.revoke_tokens()
        self.state.cursors.clear()
        self.state.cursor_count = 0
        self.state.quota.used = 0

    def call_out_closed_won(self, target: NamedCredential) -> None:
        """Set up the Closed Won Flow's callout (its Named Credential): from now on each
        opportunity that becomes Closed Won is announced to `target.endpoint`."""
        self.callouts.target = target

    async def aclose(self) -> None:
        """Stop sending callouts, as the app stops (its endpoint is going away too)."""
        await self.callouts.aclose()

    def register_jwt_public_key(self, client_id: str, pem: str | bytes) -> None:
        """Register a connected app's certificate or public key for the JWT bearer flow."""
        self.state.oauth.register_jwt_public_key(client_id, pem)

    @property
    def sandbox_jwt_private_key_pem(self) -> str:
        """A private key (PKCS#8 PEM) whose public half is registered for the sandbox app."""
        if self._sandbox_key_pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._sandbox_key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            public = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            self.register_jwt_public_key(SALESFORCE.client_id, public)
        return self._sandbox_key_pem

    def revoke_tokens(self) -> None:
        """Revoke every access token, as a timeout does: the next data call answers 401."""
        self.state.oauth.revoke_tokens()

    def render_fault(self, status: int, retry_after: int | None) -> FaultResponse:
        """An injected fault in Salesforce's shape: a JSON error array plus its headers."""
        fallback = "UNKNOWN_EXCEPTION" if status >= 500 else "INVALID_INPUT"
        code, message = _FAULTS.get(status, (fallback, f"Request failed with status {status}"))
        extra = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        answer = error_answer(status, code, message, self.state.quota, *extra)
        headers = tuple((k, v) for k, v in answer.headers if k != "Content-Type")
        return FaultResponse(status=status, body=answer.body, content_type=JSON, headers=headers)


def create_emulator(**kwargs: Any) -> SalesforceEmulator:
    """A seeded Salesforce emulator (keyword arguments as for `SalesforceEmulator`)."""
    return SalesforceEmulator(**kwargs)
