"""The event envelope: CloudEvents 1.0 (JSON format) with the `correlationid` extension."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from contracts.v1.base import UtcDateTime, normalize_timestamps

__all__ = ["EventEnvelope"]

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One event as CloudEvents 1.0 carries it; unset optional attributes are not emitted.

    `id` is unique per `source`: a consumer deduplicates by the pair. `correlationid` ties the
    event to the request or flow that caused it (the gateway's `X-Correlation-ID`).
    """

    specversion: Literal["1.0"]
    """Required by CloudEvents in every event, so it has no default here either."""
    id: _NonEmpty
    source: _NonEmpty
    """URI-reference of the producer, e.g. `/process/v1/flows` or `stripe`."""
    type: _NonEmpty
    """Reverse-DNS event type, e.g. `com.erp-gateway.invoice.paid.v1`."""
    subject: str | None = None
    """The resource the event is about, e.g. an invoice id."""
    time: UtcDateTime | None = None
    datacontenttype: str | None = None
    """Media type of `data`; absent means application/json."""
    dataschema: str | None = None
    """URI of the schema `data` follows, e.g. `/contracts/v1/Invoice.schema.json`."""
    correlationid: str | None = None
    data: Any = None
    """The payload: raw JSON here; decode it with the contract `dataschema` names."""

    def __post_init__(self) -> None:
        normalize_timestamps(self)
