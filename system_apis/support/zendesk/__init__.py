"""Zendesk Support: client, mapping to the canonical contracts, webhook verification."""

from __future__ import annotations

from system_apis.support.zendesk.client import (
    WebhookInfo,
    ZendeskClient,
    ZendeskCredentials,
)
from system_apis.support.zendesk.mapping import TicketComment, case_from_ticket_event
from system_apis.support.zendesk.webhooks import verify_webhook

__all__ = [
    "TicketComment",
    "WebhookInfo",
    "ZendeskClient",
    "ZendeskCredentials",
    "case_from_ticket_event",
    "verify_webhook",
]
