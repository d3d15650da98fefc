"""Zendesk webhook signatures: how the gateway checks a delivery (the sandbox signs its own).

Zendesk signs each delivery with `X-Zendesk-Webhook-Signature` =
base64(HMAC-SHA256(signing secret, timestamp + body)) where the timestamp is the string sent in
`X-Zendesk-Webhook-Signature-Timestamp`, used exactly as received
(https://developer.zendesk.com/documentation/webhooks/verifying/).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from contracts.errors import FieldError, InvalidRequest, Unauthenticated
from contracts.json_input import decode_json_input

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WEBHOOK_ID_HEADER",
    "verify_webhook",
]

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
WEBHOOK_ID_HEADER = "X-Zendesk-Webhook-Id"
DEFAULT_TOLERANCE_SECONDS = 300
"""A delivery older (or newer) than this is refused, so a captured request cannot be replayed."""

_SHA256_DIGEST_SIZE = 32


def verify_webhook(
    body: bytes,
    signature: str,
    timestamp: str,
    secrets: Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check a delivery against every current secret (rotation) and return its decoded payload.

    Raises:
        Unauthenticated: `invalid_signature` when no secret produced the signature,
            `stale_timestamp` when the signed timestamp is outside `tolerance`.
        InvalidRequest: the timestamp is not ISO 8601 or the body is not a JSON object.
    """
    if not _matches_any(body, signature, timestamp, secrets):
        raise Unauthenticated("Zendesk webhook signature does not match", code="invalid_signature")
    signed_at = _parse_timestamp(timestamp)
    current = now or datetime.now(UTC)
    if abs((current - signed_at).total_seconds()) > tolerance:
        raise Unauthenticated(
            f"Zendesk webhook timestamp {timestamp} is outside the {tolerance}s window",
            code="stale_timestamp",
        )
    return _decode_payload(body)


def _matches_any(body: bytes, signature: str, timestamp: str, secrets: Sequence[str]) -> bool:
    received = _decode_signature(signature)
    if received is None:
        return False
    matched = False
    for secret in secrets:
        if not secret:
            continue
        expected = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
        # Every secret is compared even after a match, so timing does not reveal which one fits.
        matched |= hmac.compare_digest(expected, received)
    return matched


def _decode_signature(signature: str) -> bytes | None:
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _SHA256_DIGEST_SIZE else None


def _parse_timestamp(timestamp: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(timestamp.strip())
    except ValueError as exc:
        raise _malformed("timestamp", f"not an ISO 8601 timestamp: {timestamp!r}") from exc
    if parsed.tzinfo is None:
        raise _malformed("timestamp", f"timestamp without a UTC offset: {timestamp!r}")
    return parsed


def _decode_payload(body: bytes) -> dict[str, Any]:
    try:
        payload = decode_json_input(body, what="webhook body")
    except InvalidRequest as exc:
        raise _malformed("body", exc.message) from exc
    if not isinstance(payload, dict):
        raise _malformed("body", "webhook body is not a JSON object")
    return payload


def _malformed(pointer: str, detail: str) -> InvalidRequest:
    return InvalidRequest(
        f"Malformed Zendesk webhook: {detail}",
        errors=[FieldError(pointer=pointer, detail=detail)],
        code="malformed_webhook",
    )
