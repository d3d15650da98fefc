"""The scope catalog: every OAuth scope a client may hold and a route may require."""

from __future__ import annotations

__all__ = ["SCOPES", "SCOPE_DESCRIPTIONS", "TIERS"]

SCOPE_DESCRIPTIONS: dict[str, str] = {
    "crm:read": "Read CRM accounts, contacts and opportunities",
    "crm:write": "Update CRM-owned account fields",
    "billing:read": "Read billing customers, catalog, subscriptions, invoices, credit notes",
    "billing:write": "Change billing records",
    "support:read": "Read support organizations, cases and entitlements",
    "support:write": "Change support records",
    "erp:read": "Read ERP legal entities, customers, items, orders, invoices, credit memos",
    "erp:write": "Change ERP records",
    "process:read": "Read business flows and their steps",
    "process:write": "Start business flows",
    "usage:write": "Report usage records of metered subscriptions",
    "finance:approve": "Approve or reject service credits",
    "experience:sales": "Sales console views",
    "experience:support": "Support desk views",
    "experience:finance": "Finance workspace views",
    "experience:portal": "Customer portal views (bound to one customer)",
    "ops:read": "Read traces, flows and the exception queue",
    "ops:replay": "Retry, edit, assign and resolve exceptions",
    "audit:read": "Read the audit trail (of the caller's legal entities)",
}

SCOPES: frozenset[str] = frozenset(SCOPE_DESCRIPTIONS)

TIERS: tuple[str, ...] = ("bronze", "silver", "gold")
