"""Every recorded Zendesk response that concerns what we map, parsed by the client.

Each sample is served by a mock transport to the client operation that would receive it, so
the client's real decoding and error classification run on bytes the live API produced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from contracts.errors import (
    UpstreamAuthFailed,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from system_apis.support.zendesk import ZendeskClient
from system_apis.support.zendesk._client_http import next_cursor
from system_apis.support.zendesk._wire import ListPage
from tests.support.vendor_specs import vendor_specs_dir
from tests.system_apis.support.zendesk.spec import ResponseValidator, load_spec

SINCE = datetime(2024, 1, 1, tzinfo=UTC)
SKIPPED = {
    "create-brand.json": "Brands API: the gateway maps no brands",
    "write-post.json": "Help Center community API: not the Support API",
    "read__help-center-posts.json": "Help Center community API: not the Support API",
}
Samples = dict[str, bytes]
Check = Callable[[Samples, str], Awaitable[None]]


def _client(responses: list[tuple[int, bytes]], seen: list[httpx.Request]) -> ZendeskClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body = responses.pop(0)
        return httpx.Response(status, content=body, headers={"x-request-id": "rec-1"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer),
                             base_url="https://recorded.zendesk.com")
    return ZendeskClient(http, default_legal_entity="US01", currency_by_entity={"US01": "USD"})


async def _incremental_tickets(samples: Samples, name: str) -> None:
    seen: list[httpx.Request] = []
    cases = [c async for c in _client([(200, samples[name])], seen)
             .iter_cases_changed_since(SINCE)]
    assert [(c.id, c.status, c.priority) for c in cases] == [("5", "open", "normal")]
    assert cases[0].tags == ["inquiry", "sample_ticket", "standard_customer"]
    assert seen[0].url.path == "/api/v2/incremental/tickets/cursor"


async def _incremental_organizations(samples: Samples, name: str) -> None:
    seen: list[httpx.Request] = []
    found = [c async for c in _client([(200, samples[name])], seen)
             .iter_organizations_changed_since(SINCE)]
    assert [(c.id, c.legal_name, c.legal_entity) for c in found] == [
        ("26363643450387", "Ampersand", "US01")]


async def _incremental_users(samples: Samples, name: str) -> None:
    first = samples["read__incremental__users-1-first-page.json"]
    last = samples["read__incremental__users-2-last-page.json"]
    seen: list[httpx.Request] = []
    client = _client([(200, first), (200, last)], seen)
    contacts = [c async for c in client.iter_contacts_changed_since(SINCE)]
    assert [(c.first_name, c.last_name, c.email) for c in contacts] == [
        ("The", "Customer", "customer@example.com"), ("TEST", "USER", "admin@test.com")]
    assert seen[1].url.params["cursor"] == "MTczOTkwMTY5OC4wfHwzODYzNDM4MTYyMDM3MXw="


async def _cursor_page(samples: Samples, name: str) -> None:
    page = msgspec.json.decode(samples[name], type=ListPage)
    assert page.meta is not None and page.links is not None
    expected = page.meta.after_cursor if page.meta.has_more else None
    assert next_cursor(page) == expected


async def _offset_page(samples: Samples, name: str) -> None:
    page = msgspec.json.decode(samples[name], type=ListPage)
    assert (page.next_page, page.count) == (None, 10)
    assert next_cursor(page) is None


def _error(status: int, kind: type[Exception], expected: str, pointers: list[str]) -> Check:
    async def check(samples: Samples, name: str) -> None:
        client = _client([(status, samples[name])], [])
        with pytest.raises(kind) as raised:
            await client.get_case("1")
        assert expected in str(raised.value)
        assert "rec-1" in str(raised.value)
        assert [e.pointer for e in getattr(raised.value, "errors", ())] == pointers

    return check


CHECKS: dict[str, Check] = {
    "read__incremental__tickets.json": _incremental_tickets,
    "read__incremental__organizations.json": _incremental_organizations,
    "read__incremental__users-1-first-page.json": _incremental_users,
    "read__incremental__users-2-last-page.json": _incremental_users,
    "read__triggers-1-first-page.json": _cursor_page,
    "read__triggers-2-last-page.json": _cursor_page,
    "read__custom_fields__ticket_fields.json": _offset_page,
    "duplicate-error.json": _error(422, UpstreamInvalid, "has already been taken",
                                   ["route.subdomain"]),
    "record-validation.json": _error(422, UpstreamInvalid, "cannot be blank",
                                     ["route.subdomain", "recipient_addresses.email", "name"]),
    "missing-parameter.json": _error(400, UpstreamInvalid, "Parameter brands is required", []),
    "forbidden.json": _error(403, UpstreamAuthFailed, "Forbidden", []),
    "resource-not-found.json": _error(404, UpstreamNotFound, "InvalidEndpoint", []),
    "server-error.json": _error(500, UpstreamUnavailable, "Internal Server Error", []),
}


@pytest.fixture
def samples() -> Samples:
    folder = vendor_specs_dir() / "zendesk" / "wire-samples"
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.json"))}


async def test_client_parses_every_relevant_recorded_response(samples: Samples) -> None:
    unknown = [name for name in samples if name not in CHECKS and name not in SKIPPED]
    assert not unknown, f"new recorded samples need a check or a reason to skip: {unknown}"
    parsed = 0
    for name in samples:
        if name in SKIPPED:
            continue
        await CHECKS[name](samples, name)
        parsed += 1
    assert parsed == len(CHECKS)
    assert parsed > 0


def test_recorded_records_fit_the_published_spec_as_adjusted() -> None:
    specs = vendor_specs_dir()
    validator = ResponseValidator(load_spec(specs))
    samples = specs / "zendesk" / "wire-samples"
    checks = {
        "read__incremental__tickets.json": "/api/v2/incremental/tickets/cursor",
        "read__incremental__users-1-first-page.json": "/api/v2/incremental/users/cursor",
        "read__incremental__users-2-last-page.json": "/api/v2/incremental/users/cursor",
        "read__incremental__organizations.json": "/api/v2/incremental/organizations",
    }
    for name, path in checks.items():
        assert validator.check("GET", path, 200, (samples / name).read_bytes())
    assert len(validator.validated) == len(checks)
