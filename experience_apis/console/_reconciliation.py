"""The console's reconciliation pages: the latest run's drift per legal entity and currency,
and one run's mismatches with their reason, status and exception. Read-only (`ops:read`);
an operator limited to some legal entities sees only theirs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get

from contracts.errors import NotFound
from contracts.money import Money, format_decimal
from experience_apis.console._web import ConsoleDep, html

__all__ = ["RECONCILIATION_PAGES"]

_OPT: dict[str, Any] = {"public": True, "rate_limit_group": "console"}


def _money(amount: int, currency: str | None) -> str:
    if not currency:
        return ""
    return f"{format_decimal(Money(amount=amount, currency=currency))} {currency}"


def _run_url(run_id: str) -> str:
    return f"/ops/reconciliation/{quote(run_id, safe=':')}"


@get("/reconciliation", opt=_OPT, include_in_schema=False)
async def reconciliation_overview(
    request: Request[Any, Any, Any], console: ConsoleDep
) -> Response[str]:
    operator = await console.operator(request)
    rows = await console.reads.reconciliation.drift(operator.principal.entities)
    return html(
        console,
        "reconciliation.html",
        request=request,
        operator=operator,
        rows=rows,
        money=_money,
        run_url=_run_url,
    )


@get("/reconciliation/{run_id:str}", opt=_OPT, include_in_schema=False)
async def reconciliation_run(
    request: Request[Any, Any, Any], run_id: str, console: ConsoleDep
) -> Response[str]:
    operator = await console.operator(request)
    found = await console.reads.reconciliation.mismatches(run_id, operator.principal.entities)
    if found is None:
        raise NotFound(f"No reconciliation {run_id}")
    return html(
        console,
        "reconciliation_run.html",
        request=request,
        operator=operator,
        run_id=run_id,
        mismatches=found,
        money=_money,
    )


RECONCILIATION_PAGES = [reconciliation_overview, reconciliation_run]
