"""Stripe's bracket-notation form bodies (`metadata[k]=v`, `items[0][price]=...`) as nested data.

Stripe reads every request body (and GET query) as `application/x-www-form-urlencoded` whose
keys nest with brackets. `a[b]=1` makes a dict, `a[]=1` appends to a list, and indexed lists
(`items[0][price]`) arrive as dicts keyed by digits: `Params.list` turns those into lists, so a
metadata key that happens to be a number is never mistaken for a list index.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from sandbox.stripe.errors import invalid_request

__all__ = ["parse_form"]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def parse_form(raw: str) -> dict[str, Any]:
    """Parse a query string or form body into nested dicts, lists and strings."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True, strict_parsing=False):
        path = _split_key(key)
        _assign(root, path, value, key)
    return root


def _split_key(key: str) -> list[str]:
    match = _KEY.match(key)
    if match is None:
        raise invalid_request(f"Invalid parameter name: {key}", param=key)
    return [match.group(1), *_SEGMENT.findall(match.group(2))]


def _assign(root: dict[str, Any], path: list[str], value: str, key: str) -> None:
    container: dict[str, Any] = root
    for position, segment in enumerate(path[:-1]):
        if segment == "":
            raise invalid_request(f"Invalid array parameter: {key}", param=key)
        following = path[position + 1]
        child = container.get(segment)
        if child is None:
            child = [] if following == "" else {}
            container[segment] = child
        if following == "":
            if not isinstance(child, list) or position + 2 != len(path):
                raise invalid_request(f"Invalid array parameter: {key}", param=key)
            child.append(value)
            return
        if not isinstance(child, dict):
            raise invalid_request(f"Invalid hash parameter: {key}", param=key)
        container = child
    last = path[-1]
    if isinstance(container.get(last), dict | list):
        raise invalid_request(f"Invalid parameter: {key} is given as a hash and a value", param=key)
    container[last] = value
