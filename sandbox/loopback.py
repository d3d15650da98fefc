"""Where an emulator may send webhooks: loopback URLs only.

An emulator delivers to whatever URL is registered with it; kept to this machine, it can
never be pointed at another host (a cloud metadata address, an internal service) by whoever
reaches its API.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_HOSTS", "is_loopback_url"]

LOOPBACK_HOSTS = "127.0.0.0/8, ::1 or localhost"
"""The hosts a webhook URL may name, as error messages put it."""


def is_loopback_url(url: str) -> bool:
    """Whether `url` is an absolute http(s) URL whose host is 127.0.0.0/8, ::1 or localhost."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (a malformed port raises here)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
