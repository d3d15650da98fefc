"""One request as the emulator's routes see it: the account, links and body parsing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, Response

from sandbox.zendesk.errors import ZendeskApiError, bad_request
from sandbox.zendesk.front import (
    IDENTITY_KEY,
    ORIGINAL_PATH_KEY,
    PREFIX_KEY,
    Identity,
)
from sandbox.zendesk.paging import page_link, paginate, parse_paging
from sandbox.zendesk.records import User
from sandbox.zendesk.seed import api_user_id
from sandbox.zendesk.store import DirectoryStore
from sandbox.zendesk.tickets import TicketDesk
from sandbox.zendesk.webhooks import WebhookDispatcher

__all__ = ["ACCOUNT_STATE_KEY", "JSON", "Account", "Call", "json_response"]

T = TypeVar("T")
ACCOUNT_STATE_KEY = "zendesk_account"
JSON = "application/json; charset=utf-8"


@dataclass(slots=True, kw_only=True)
class Account:
    """Everything one emulated Zendesk account holds."""

    directory: DirectoryStore
    desk: TicketDesk
    webhooks: WebhookDispatcher


def json_response(
    body: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(body), status_code=status, media_type=JSON,
        headers=headers or {},
    )


class Call:
    """What the routes need from one request."""

    def __init__(self, request: Request[Any, Any, Any]) -> None:
        self.request = request
        self.account: Account = request.app.state[ACCOUNT_STATE_KEY]
        self.params: list[tuple[str, str]] = parse_qsl(
            request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )

    @property
    def base(self) -> str:
        """scheme://host + the prefix the emulator is mounted under (empty when served alone)."""
        scope = self.request.scope
        host = self.request.headers.get("host")
        if not host:
            server = scope.get("server") or ("localhost", 80)
            host = f"{server[0]}:{server[1]}"
        prefix = str(_scope_value(self.request, PREFIX_KEY) or "")
        return f"{scope.get('scheme', 'http')}://{host}{prefix}"

    def query(self, name: str) -> str | None:
        return next((value for key, value in self.params if key == name), None)

    def ids(self, name: str) -> list[int]:
        raw = self.query(name) or ""
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise bad_request("InvalidValue", "Invalid value", f"{name} must be integers")
        return [int(part) for part in parts][:100]

    def actor(self) -> User:
        """The user the request authenticated as (the account's API user)."""
        identity = cast("Identity | None", _scope_value(self.request, IDENTITY_KEY))
        directory = self.account.directory
        user = directory.user_by_email(identity.email) if identity else None
        return user or directory.user(api_user_id())

    def includes(self) -> set[str]:
        """The sideloads asked for with `include=` (comma separated)."""
        return {part.strip() for part in (self.query("include") or "").split(",") if part.strip()}

    @property
    def url(self) -> str:
        """The URL this request came in on, without its query."""
        original = str(_scope_value(self.request, ORIGINAL_PATH_KEY) or "")
        return f"{self.base}{original}"

    def page(
        self, root: str, items: Sequence[T], *, key: Callable[[T], int],
        render: Callable[[T], dict[str, Any]], cursor_allowed: bool = True,
        sideload: Callable[[list[T]], dict[str, Any]] | None = None,
    ) -> Response[bytes]:
        """A list response in whichever pagination the request asked for."""
        paging = parse_paging(self.params, cursor_allowed=cursor_allowed)
        url = self.url
        page, extra = paginate(
            items, paging, key=key, link=lambda changes: page_link(url, self.params, changes)
        )
        body = {root: [render(item) for item in page], **extra}
        if sideload is not None:
            body.update(sideload(page))
        return json_response(body)

    async def body(self, root: str) -> dict[str, Any]:
        """The object under `root` in the JSON body (Zendesk wraps bodies by resource name)."""
        raw = await self.request.body()
        try:
            decoded = msgspec.json.decode(raw) if raw else {}
        except msgspec.DecodeError as exc:
            raise bad_request("InvalidJSON", "Request body is not valid JSON") from exc
        inner = decoded.get(root) if isinstance(decoded, dict) else None
        if not isinstance(inner, dict):
            raise ZendeskApiError(
                400, {"error": "ParameterMissing", "description": f"Parameter {root} is required"}
            )
        return inner


def _scope_value(request: Request[Any, Any, Any], key: str) -> Any:
    """A value the emulator's front put in the ASGI scope under its own key."""
    return cast("Mapping[str, Any]", request.scope).get(key)
