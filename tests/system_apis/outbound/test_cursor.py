"""The one cursor codec: what it issues comes back; anything else is a 400 naming the parameter."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import InvalidRequest
from system_apis.outbound import Offset, decode_cursor, encode_cursor

LISTS = st.text(min_size=1, max_size=40)


@given(st.text(max_size=200), LISTS)
def test_a_text_position_comes_back(position: str, list_name: str) -> None:
    cursor = encode_cursor(position, list_name=list_name)
    assert decode_cursor(cursor, list_name=list_name, position=str) == position
    assert cursor.isascii() and "=" not in cursor and len(cursor.split()) == 1


@given(st.integers(min_value=0, max_value=2**53), LISTS)
def test_an_offset_comes_back(offset: int, list_name: str) -> None:
    cursor = encode_cursor(offset, list_name=list_name)
    assert decode_cursor(cursor, list_name=list_name, position=Offset) == offset


def test_a_sort_key_comes_back() -> None:
    key = (datetime(2026, 12, 7, 11, 0, 5, 123456, tzinfo=UTC), "flow_1")
    cursor = encode_cursor(key, list_name="process:flows")
    assert decode_cursor(cursor, list_name="process:flows", position=tuple[datetime, str]) == key


@given(st.text(max_size=60), LISTS)
def test_anything_we_did_not_issue_is_an_invalid_request(cursor: str, list_name: str) -> None:
    try:
        decoded = decode_cursor(cursor, list_name=list_name, position=str)
    except InvalidRequest as exc:
        assert [e.pointer for e in exc.errors] == ["cursor"]
    else:
        assert decoded is None and not cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "\u00a2",
        "x",
        "AAAA",
        base64.urlsafe_b64encode(b'[2,"a",1]').decode(),  # another version
        base64.urlsafe_b64encode(b'[1,"b",1]').decode(),  # another list
        base64.urlsafe_b64encode(b'[1,"a",-1]').decode(),  # a negative offset
        base64.urlsafe_b64encode(b'[1,"a","1"]').decode(),  # not an offset
        encode_cursor(1, list_name="a") + "!",
    ],
)
def test_refuses_naming_the_parameter(cursor: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        decode_cursor(cursor, list_name="a", position=Offset, parameter="page_token")
    assert [e.pointer for e in refused.value.errors] == ["page_token"]


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None, list_name="a", position=Offset) is None
    assert decode_cursor("", list_name="a", position=Offset) is None


def test_the_payload_is_small_and_versioned() -> None:
    cursor = encode_cursor("cus_1", list_name="stripe:/v1/customers")
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert msgspec.json.decode(raw) == [1, "stripe:/v1/customers", "cus_1"]
