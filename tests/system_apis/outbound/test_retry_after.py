"""The one Retry-After reader: delta-seconds or an HTTP-date, clamped, None on garbage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
from hypothesis import given
from hypothesis import strategies as st

from system_apis.outbound import MAX_RETRY_AFTER, retry_after_of, retry_after_seconds

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=10**30))
def test_delta_seconds_are_read_and_capped(seconds: int) -> None:
    assert retry_after_seconds(str(seconds), now=NOW) == min(float(seconds), MAX_RETRY_AFTER)


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_an_http_date_is_the_seconds_until_then_never_negative(offset: int) -> None:
    value = format_datetime(NOW + timedelta(seconds=offset), usegmt=True)
    assert retry_after_seconds(value, now=NOW) == min(max(float(offset), 0.0), MAX_RETRY_AFTER)


@given(st.text())
def test_any_text_is_a_wait_in_range_or_none(value: str) -> None:
    wait = retry_after_seconds(value, now=NOW)
    assert wait is None or 0.0 <= wait <= MAX_RETRY_AFTER


@given(st.text(alphabet=st.characters(exclude_categories=["Nd"]), min_size=1))
def test_text_without_digits_is_none(value: str) -> None:
    assert retry_after_seconds(value, now=NOW) is None


def test_reads_what_vendors_send() -> None:
    assert retry_after_seconds(" 17 ", now=NOW) == 17.0
    assert retry_after_seconds("1.5", now=NOW) == 1.5
    assert retry_after_seconds("-3", now=NOW) == 0.0
    assert retry_after_seconds("١٢", now=NOW) is None  # digits of another script
    assert retry_after_seconds("nan", now=NOW) is None
    assert retry_after_seconds("inf", now=NOW) is None
    assert retry_after_seconds(None, now=NOW) is None
    response = httpx.Response(429, headers={"Retry-After": "7"})
    assert retry_after_of(response, now=NOW) == 7.0
    assert retry_after_of(httpx.Response(503), now=NOW) is None
