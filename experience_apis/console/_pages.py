"""The console's pages: overview, flows (filtered list and detail with its swimlane), the
exception queue and one exception with its audit history. All read-only (`ops:read`)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.params import QueryParameter

from contracts.errors import NotFound
from experience_apis.console._reads import FlowFilter
from experience_apis.console._timeline import chart, swimlane
from experience_apis.console._web import ConsoleDep, QueueDep, ReaderDep, html
from experience_apis.finance import EXCEPTION_AGES, exception_age
from process_apis.exceptions import ExceptionEntry

__all__ = ["PAGES"]

Query = Annotated[str | None, QueryParameter(max_length=200)]
AGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
STATUSES = (
    "pending", "running", "waiting_approval", "waiting", "succeeded", "failed", "cancelled"
)
OWNERS = ("finance", "revenue_ops", "support_ops", "integration")
QUEUE_PAGE = 100
_OPT: dict[str, Any] = {"public": True, "rate_limit_group": "console"}


@get("/", opt=_OPT, include_in_schema=False)
async def overview(
    request: Request[Any, Any, Any], console: ConsoleDep
) -> Response[str]:
    operator = await console.operator(request)
    entities = operator.principal.entities
    now = console.clock()
    pulse = await console.reads.pulse(entities, now=now)
    counts = await console.reads.status_counts(entities)
    return html(
        console,
        "overview.html",
        request=request,
        operator=operator,
        pulse=pulse,
        counts=counts,
        statuses=STATUSES,
        chart=chart(pulse.minutes),
    )


@get("/flows", opt=_OPT, include_in_schema=False)
async def flows(
    request: Request[Any, Any, Any],
    console: ConsoleDep,
    type: Query = None,
    status: Query = None,
    owner: Query = None,
    age: Query = None,
    q: Query = None,
    before: Query = None,
) -> Response[str]:
    operator = await console.operator(request)
    entities = operator.principal.entities
    query = FlowFilter(
        type=type or None,
        status=status if status in STATUSES else None,
        owner=owner if owner in OWNERS else None,
        age=AGES.get(age or ""),
        search=(q or "").strip() or None,
        before=_instant(before),
    )
    rows = await console.reads.flows(query, entities, now=console.clock())
    counts = await console.reads.status_counts(entities)
    return html(
        console,
        "flows.html",
        request=request,
        operator=operator,
        rows=rows,
        counts=counts,
        statuses=STATUSES,
        owners=OWNERS,
        ages=list(AGES),
        filters={"type": type or "", "status": status or "", "owner": owner or "",
                 "age": age or "", "q": q or ""},
        older=rows[-1].created_at.isoformat() if len(rows) >= 100 else None,
    )


@get("/flows/{flow_id:str}", opt=_OPT, include_in_schema=False)
async def flow_detail(
    request: Request[Any, Any, Any],
    flow_id: str,
    console: ConsoleDep,
    flow_reader: ReaderDep,
    exception_queue: QueueDep,
) -> Response[str]:
    operator = await console.operator(request)
    flow = await flow_reader.get(flow_id, principal=operator.principal)
    if flow is None:
        raise NotFound(f"No flow {flow_id}")
    calls = await console.reads.vendor_calls(flow_id)
    hooks = await console.reads.webhooks(flow_id)
    cause, caused = await console.reads.related_flows(
        flow_id, flow.caused_by, operator.principal.entities
    )
    entries = [
        await exception_queue.get(exception_id, principal=operator.principal)
        for exception_id in await console.reads.flow_exception_ids(flow_id)
    ]
    now = console.clock()
    return html(
        console,
        "flow.html",
        request=request,
        operator=operator,
        flow=flow,
        lanes=swimlane(flow, calls, hooks, console.links, now=now),
        calls=calls,
        hooks=hooks,
        cause=cause,
        caused=caused,
        exceptions=entries,
        inputs={entry.id: _pretty(entry.input) for entry in entries},
        link=console.links.url,
        refresh=flow.status in ("pending", "running", "waiting_approval", "waiting", "failed"),
    )


@get("/exceptions", opt=_OPT, include_in_schema=False)
async def exception_queue_page(
    request: Request[Any, Any, Any],
    console: ConsoleDep,
    exception_queue: QueueDep,
    owner: Query = None,
    status: Query = None,
) -> Response[str]:
    operator = await console.operator(request)
    chosen = status if status in ("open", "retrying", "resolved") else None
    page = await exception_queue.list(
        principal=operator.principal,
        owner=owner if owner in OWNERS else None,
        status=chosen,
        limit=QUEUE_PAGE,
    )
    now = console.clock()
    groups: dict[str, list[ExceptionEntry]] = defaultdict(list)
    for entry in page.data:
        groups[entry.owner].append(entry)
    ages = {
        team: {age: sum(1 for e in entries if exception_age(e.created_at, now) == age)
               for age in EXCEPTION_AGES}
        for team, entries in groups.items()
    }
    return html(
        console,
        "exceptions.html",
        request=request,
        operator=operator,
        groups=dict(sorted(groups.items())),
        ages=ages,
        age_names=EXCEPTION_AGES,
        age_of=lambda entry: exception_age(entry.created_at, now),
        owners=OWNERS,
        filters={"owner": owner or "", "status": status or ""},
        more=page.next_cursor is not None,
    )


@get("/exceptions/{exception_id:str}", opt=_OPT, include_in_schema=False)
async def exception_page(
    request: Request[Any, Any, Any],
    exception_id: str,
    console: ConsoleDep,
    exception_queue: QueueDep,
) -> Response[str]:
    operator = await console.operator(request)
    entry = await exception_queue.get(exception_id, principal=operator.principal)
    return html(
        console,
        "exception.html",
        request=request,
        operator=operator,
        entry=entry,
        input_json=_pretty(entry.input),
        errors=[],
    )


PAGES = [overview, flows, flow_detail, exception_queue_page, exception_page]


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
