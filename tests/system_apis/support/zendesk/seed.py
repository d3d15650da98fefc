"""What the seeded sandbox holds, named for the tests (ids follow from the demo keys)."""

from __future__ import annotations

from sandbox.zendesk.records import stable_id

__all__ = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "org_id", "user_id"]

ACME = "acme"
GLOBEX = "globex"
INITECH = "initech"
UMBRELLA = "umbrella"


def org_id(key: str) -> str:
    """The Zendesk id of the organization seeded for demo account `key`."""
    return str(stable_id("organization", key))


def user_id(email: str) -> str:
    return str(stable_id("user", email))
