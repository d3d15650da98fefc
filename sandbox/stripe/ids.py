"""Deterministic Stripe-looking ids: the same seed key or creation order gives the same id."""

from __future__ import annotations

import hashlib
from collections import Counter

__all__ = ["IdMinter", "stable_id"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_LENGTH = 14


def stable_id(prefix: str, key: str) -> str:
    """`{prefix}_{14 base62 chars}` derived from `key`, random-looking but reproducible."""
    number = int.from_bytes(hashlib.sha256(f"{prefix}:{key}".encode()).digest()[:16], "big")
    chars: list[str] = []
    for _ in range(_SUFFIX_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(chars)}"


class IdMinter:
    """Counter-based ids per prefix; `reset()` restarts every counter."""

    def __init__(self) -> None:
        self._counters: Counter[str] = Counter()

    def mint(self, prefix: str) -> str:
        self._counters[prefix] += 1
        return stable_id(prefix, f"#{self._counters[prefix]}")

    def reset(self) -> None:
        self._counters.clear()
