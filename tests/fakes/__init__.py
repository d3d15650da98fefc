"""In-memory fakes of the four ports, for fast tests of the process and experience layers.

Each fake holds plain dicts of contract Structs, raises the `contracts.errors` its real adapter
raises, replays a repeated write (same idempotency key or external id) instead of doing it twice,
and takes injected faults (`fake.fail_next("create_invoice", fake.unavailable())`).
"""

from __future__ import annotations

from tests.fakes.billing import FakeBilling
from tests.fakes.crm import FakeCrm
from tests.fakes.erp import FakeErp
from tests.fakes.support import FakeSupport

__all__ = ["FakeBilling", "FakeCrm", "FakeErp", "FakeSupport"]
