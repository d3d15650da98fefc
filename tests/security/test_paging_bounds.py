"""Filling a page for a limited caller costs a bounded number of vendor calls, and resumes
exactly after the last record it handed out."""

from __future__ import annotations

from contracts.principal import Principal
from contracts.v1 import Page
from system_apis.outbound import CursorSeal
from system_apis.visibility import VENDOR_CALLS_PER_PAGE, visible_page

SEAL = CursorSeal(bytes(range(32)))
LIMITED = Principal(client_id="us", name="us", scopes=frozenset(), entities=frozenset({"US01"}))
EVERYONE = Principal(client_id="all", name="all", scopes=frozenset())


class Vendor:
    """A list of (id, entity) records paged by position, counting calls."""

    def __init__(self, entities: list[str]) -> None:
        self.records = [(f"r{i}", entity) for i, entity in enumerate(entities)]
        self.calls = 0

    async def fetch(self, position: str | None, size: int) -> Page[tuple[str, str]]:
        self.calls += 1
        start = int(position or 0)
        end = start + size
        more = end < len(self.records)
        return Page(data=self.records[start:end], next_cursor=str(end) if more else None)


async def _page(
    vendor: Vendor, who: Principal, cursor: str | None, limit: int
) -> Page[tuple[str, str]]:
    return await visible_page(
        who, seal=SEAL, list_name="test", cursor=cursor, limit=limit, fetch=vendor.fetch,
        entity=lambda record: record[1],
    )


async def test_a_caller_whose_records_are_rare_costs_a_bounded_number_of_calls() -> None:
    vendor = Vendor(["DE01"] * 1000 + ["US01"])
    page = await _page(vendor, LIMITED, None, 10)
    assert vendor.calls <= VENDOR_CALLS_PER_PAGE
    assert page.data == [] and page.next_cursor is not None
    # Following the cursors reaches the one US01 record, each request bounded the same way.
    found: list[tuple[str, str]] = []
    cursor: str | None = page.next_cursor
    while cursor is not None:
        vendor.calls = 0
        page = await _page(vendor, LIMITED, cursor, 10)
        assert vendor.calls <= VENDOR_CALLS_PER_PAGE
        found.extend(page.data)
        cursor = page.next_cursor
    assert found == [("r1000", "US01")]


async def test_pages_resume_right_after_the_last_record_handed_out() -> None:
    entities = ["US01", "DE01", "US01", "US01", "DE01", "US01", "US01"] * 30
    vendor = Vendor(entities)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await _page(vendor, LIMITED, cursor, 4)
        seen.extend(record_id for record_id, _ in page.data)
        if page.next_cursor is None:
            break
        assert len(page.data) == 4
        cursor = page.next_cursor
    assert seen == [f"r{i}" for i, entity in enumerate(entities) if entity == "US01"]


async def test_a_caller_of_every_entity_costs_one_call_a_page() -> None:
    vendor = Vendor(["DE01", "US01"] * 100)
    page = await _page(vendor, EVERYONE, None, 50)
    assert vendor.calls == 1 and len(page.data) == 50
