"""The console's audit trail page (`audit:read`): the records of the signed-in person's legal
entities, newest first, filtered by actor, target and action, a page at a time."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.params import QueryParameter

from contracts.audit import AuditQuery
from contracts.errors import Forbidden, NotFound
from experience_apis.console._signin import AUDIT_SCOPE
from experience_apis.console._web import ConsoleDep, html

__all__ = ["AUDIT_PAGES"]

PAGE_SIZE = 100
Filter = Annotated[str | None, QueryParameter(max_length=300)]
Before = Annotated[int | None, QueryParameter(ge=1)]
_OPT: dict[str, Any] = {"public": True, "rate_limit_group": "console"}


@get("/audit", opt=_OPT, include_in_schema=False)
async def audit_page(
    request: Request[Any, Any, Any],
    console: ConsoleDep,
    actor: Filter = None,
    target: Filter = None,
    action: Filter = None,
    before: Before = None,
) -> Response[str]:
    operator = await console.operator(request)
    if not operator.may_audit:
        raise Forbidden("The audit trail needs the audit:read scope", required_scopes=[AUDIT_SCOPE])
    if console.audit is None:
        raise NotFound("No audit trail is wired in this gateway")
    filters = {"actor": actor or "", "target": target or "", "action": action or ""}
    query = AuditQuery(actor=actor or None, target=target or None, action=action or None)
    records = await console.audit.query(
        query, principal=operator.principal, after_seq=before, limit=PAGE_SIZE
    )
    older = (
        urlencode({**{k: v for k, v in filters.items() if v}, "before": records[-1].seq})
        if len(records) == PAGE_SIZE
        else None
    )
    return html(
        console,
        "audit.html",
        request=request,
        operator=operator,
        records=records,
        filters=filters,
        older=older,
    )


AUDIT_PAGES = [audit_page]
