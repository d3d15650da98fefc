"""Zendesk Support: client, mapping to the canonical contracts, webhook signatures, emulator."""

from __future__ import annotations

from system_apis.support.zendesk.client import (
    WebhookInfo,
    ZendeskClient,
    ZendeskCredentials,
    credentials_from_env,
    sandbox_credentials,
)
from system_apis.support.zendesk.emulator import ZendeskEmulator, create_emulator
from system_apis.support.zendesk.mapping import TicketComment, case_from_ticket_event
from system_apis.support.zendesk.webhooks import sign_webhook, verify_webhook

__all__ = [
    "TicketComment",
    "WebhookInfo",
    "ZendeskClient",
    "ZendeskCredentials",
    "ZendeskEmulator",
    "case_from_ticket_event",
    "create_emulator",
    "credentials_from_env",
    "sandbox_credentials",
    "sign_webhook",
    "verify_webhook",
]
