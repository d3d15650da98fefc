"""Stripe webhook signatures: verify that Stripe (or the sandbox) sent a delivery.

`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]` where each v1 is the HMAC-SHA256 of
`"{t}.{raw_body}"` keyed by an endpoint's `whsec_...` secret
(https://docs.stripe.com/webhooks#verify-manually). During a secret roll Stripe signs with both
secrets, and the receiver holds both too, so a payload is genuine when any v1 matches any
configured secret. Timestamps further than `tolerance` seconds from now are refused (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from contracts.errors import FieldError, InvalidRequest, Unauthenticated
from contracts.json_input import decode_signed_json

__all__ = ["DEFAULT_TOLERANCE", "VerifiedEvent", "verify_event"]

DEFAULT_TOLERANCE = 300
"""Stripe's SDKs refuse signatures older (or newer) than five minutes."""
_SCHEME = "v1"
T = TypeVar("T")


class VerifiedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A Stripe event whose signature verified: its envelope, and its object as sent."""

    id: str
    type: str
    created: datetime | None
    """When the event happened."""
    object_id: str | None
    """`data.object.id`: the invoice, subscription, ... the event is about."""
    object: msgspec.Raw
    """`data.object`, a JSON object, in Stripe's bytes."""
    previous_attributes: msgspec.Raw | None
    """`data.previous_attributes` (a JSON object) of an `*.updated` event, in Stripe's bytes."""


def verify_event(
    payload: bytes,
    header: str,
    secrets: Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> VerifiedEvent:
    """The event's envelope if `header` proves `payload` came from Stripe, else an error.

    Raises:
        InvalidRequest: the header is malformed, or the payload is not a Stripe event (an
            object with a non-empty `id` and `type` and an object `data.object`).
        Unauthenticated: no signature matches (`invalid_signature`) or the timestamp is
            outside the tolerance (`stale_timestamp`).
    """
    _verify_signature(payload, header, secrets, tolerance=tolerance, now=now)
    envelope = _read(payload, _Envelope, "/")
    data = _read(envelope.data, _Data, "/data") if _is_object(envelope.data) else _Data()
    if not _is_object(data.object):
        raise _not_an_event("/data/object", "an event carries its object")
    head = _read(data.object, _Head, "/data/object")
    previous = data.previous_attributes
    return VerifiedEvent(
        id=_text(envelope.id, "/id"),
        type=_text(envelope.type, "/type"),
        created=_unix_time(envelope.created),
        object_id=head.id if isinstance(head.id, str) else None,
        object=data.object,
        previous_attributes=previous if _is_object(previous) else None,
    )


_ABSENT = msgspec.Raw()
"""A `Raw` field's default: msgspec decodes no union of `Raw`."""


class _Envelope(msgspec.Struct):
    id: Any = None
    type: Any = None
    created: Any = None
    data: msgspec.Raw = _ABSENT


class _Data(msgspec.Struct):
    object: msgspec.Raw = _ABSENT
    previous_attributes: msgspec.Raw = _ABSENT


class _Head(msgspec.Struct):
    id: Any = None


def _read(raw: bytes | msgspec.Raw, shape: type[T], pointer: str) -> T:
    try:
        return decode_signed_json(raw, shape, what="Stripe webhook payload")
    except msgspec.ValidationError:  # not an object where the envelope has one
        raise _not_an_event(pointer, "must be a JSON object") from None


def _is_object(raw: msgspec.Raw) -> bool:
    return memoryview(raw)[:1].tobytes() == b"{"


def _unix_time(value: Any) -> datetime | None:
    if type(value) is not int:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise _not_an_event("/created", "must be a Unix time") from None


def _text(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not value:
        raise _not_an_event(pointer, "must be a non-empty string")
    return value


def _not_an_event(pointer: str, detail: str) -> InvalidRequest:
    return InvalidRequest(
        f"Malformed stripe webhook: {pointer} {detail}",
        errors=[FieldError(pointer=pointer, detail=detail)],
        code="invalid_payload",
    )


def _verify_signature(
    payload: bytes, header: str, secrets: Sequence[str], *, tolerance: int, now: int | None
) -> None:
    timestamp, signatures = _parse_header(header)
    if isinstance(secrets, str):
        secrets = [secrets]  # one secret given bare, not a sequence of its characters
    if not any(
        hmac.compare_digest(_digest(payload, secret, timestamp), signature)
        for secret in secrets
        for signature in signatures
    ):
        raise Unauthenticated(
            "No Stripe-Signature v1 signature matches the payload for the configured secrets",
            error="invalid_signature",
            code="invalid_signature",
        )
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise Unauthenticated(
            f"Stripe-Signature timestamp {timestamp} is more than {tolerance}s from now",
            error="stale_timestamp",
            code="stale_timestamp",
        )


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _parse_header(header: str) -> tuple[int, list[str]]:
    if not header.isascii():
        # Signatures are hex: anything else is malformed (and `hmac.compare_digest` raises
        # TypeError on non-ASCII text).
        raise _malformed("it holds characters other than ASCII")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise _malformed(f"element {part.strip()!r} is not key=value")
        if key == "t":
            timestamps.append(value)
        elif key == _SCHEME:
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        raise _malformed("it needs exactly one numeric t=<unix time>")
    if not signatures:
        raise _malformed("it has no v1 signature")
    return int(timestamps[0]), signatures


def _malformed(reason: str) -> InvalidRequest:
    return InvalidRequest(
        f"Malformed Stripe-Signature header: {reason}",
        errors=[FieldError(pointer="Stripe-Signature", detail=reason)],
        code="malformed_signature",
    )
