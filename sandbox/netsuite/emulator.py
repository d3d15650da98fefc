"""An in-memory NetSuite account speaking SuiteTalk REST web services (record API v1).

Serves the OAuth 2.0 client credentials token endpoint, the record API (create, read with
`expandSubResources`, update, upsert and read by external id, delete, filtered and paged
lists) and SuiteQL, seeded from `sandbox.demo_data`, with NetSuite's per-account
concurrency limit and its error documents. `vendor` is what gets served or mounted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from litestar import Litestar
from litestar.datastructures import State

from sandbox.control import ASGIApp, FaultResponse
from sandbox.credentials import NETSUITE
from sandbox.netsuite.auth import TokenIssuer
from sandbox.netsuite.errors import ERROR, encode, error_body, operation_id
from sandbox.netsuite.front import AccountGate
from sandbox.netsuite.routes import ROUTES, on_error
from sandbox.netsuite.store import RecordStore

__all__ = ["NetSuiteEmulator", "create_emulator"]

_FAULT_CODES = {400: "INVALID_CONTENT", 401: "INVALID_LOGIN", 403: "INSUFFICIENT_PERMISSION",
                404: "NONEXISTENT_ID", 429: "CONCURRENCY_LIMIT_EXCEEDED"}
_FAULT_DETAILS = {
    429: "Concurrent request limit exceeded. Request blocked.",
    503: "The service is temporarily unavailable. Try again later.",
}


class NetSuiteEmulator:
    """One emulated NetSuite account with the sandbox integration mapped."""

    def __init__(
        self,
        *,
        seed: bool = True,
        concurrency_limit: int | None = 5,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.seeded = seed
        self.store = RecordStore(today=today)
        self.tokens = TokenIssuer()
        sandbox_key = serialization.load_pem_private_key(NETSUITE.private_key_pem.encode(), None)
        public_pem = sandbox_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.tokens.register(NETSUITE.certificate_id, NETSUITE.client_id, public_pem)
        self.sandbox_client_id = NETSUITE.client_id
        self.sandbox_certificate_id = NETSUITE.certificate_id
        self.sandbox_private_key_pem = NETSUITE.private_key_pem
        self.app = Litestar(
            route_handlers=ROUTES,
            state=State({"netsuite": self}),
            exception_handlers={Exception: on_error},
            openapi_config=None,
        )
        self.vendor: AccountGate = AccountGate(
            cast(ASGIApp, self.app), render_fault=render_fault, reset=self._reset_state,
            concurrency_limit=concurrency_limit,
        )
        self._reset_state()

    def register_certificate(
        self, certificate_id: str, public_pem: str | bytes, *, client_id: str = NETSUITE.client_id
    ) -> None:
        """Map another certificate (its public key) to an integration's client id."""
        self.tokens.register(certificate_id, client_id, public_pem)

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (clients must fetch a new one)."""
        self.tokens.revoke_tokens()

    def reset(self) -> None:
        """Back to the seeded demo state with no faults."""
        self.vendor.reset()

    def _reset_state(self) -> None:
        self.store.reset(seed=self.seeded)


def create_emulator(**kwargs: Any) -> NetSuiteEmulator:
    """A seeded NetSuite emulator (keyword arguments as for `NetSuiteEmulator`)."""
    return NetSuiteEmulator(**kwargs)


def render_fault(status: int, retry_after: int | None) -> FaultResponse:
    """NetSuite's own answer for an injected fault."""
    code = _FAULT_CODES.get(status, "UNEXPECTED_ERROR" if status >= 500 else "USER_ERROR")
    detail = _FAULT_DETAILS.get(status, f"An unexpected error occurred ({status}).")
    headers = [("X-N-OperationId", operation_id())]
    if status == 429 or retry_after is not None:
        headers.append(("Retry-After", str(retry_after if retry_after is not None else 1)))
    return FaultResponse(status=status, body=encode(error_body(status, code, detail)),
                         content_type=ERROR, headers=tuple(headers))
