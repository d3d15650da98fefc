"""Each fake is its port: same methods, same parameters, so it cannot drift from the port."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import tests.fakes
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmContractsPort, CrmPort
from system_apis.erp.port import ErpPort
from system_apis.support.port import SupportPort
from tests.fakes import FakeBilling, FakeCrm, FakeErp, FakeSupport
from tests.fakes._base import FakePort

# Checked by mypy: each fake is assignable to its port.
_crm: CrmPort = FakeCrm()
_contracts: CrmContractsPort = FakeCrm()
_billing: BillingPort = FakeBilling()
_support: SupportPort = FakeSupport()
_erp: ErpPort = FakeErp()

PAIRS: list[tuple[type[FakePort], type[Any]]] = [
    (FakeCrm, CrmPort),
    (FakeCrm, CrmContractsPort),
    (FakeBilling, BillingPort),
    (FakeSupport, SupportPort),
    (FakeErp, ErpPort),
]


def _port_methods(port: type[Any]) -> list[str]:
    return sorted(name for name, value in vars(port).items()
                  if callable(value) and not name.startswith("_"))


def _shape(function: Any) -> list[tuple[str, Any, Any]]:
    parameters = list(inspect.signature(function).parameters.values())[1:]  # without self
    return [(p.name, p.kind, p.default) for p in parameters]


@pytest.mark.parametrize(("fake", "port"), PAIRS, ids=lambda value: value.__name__)
def test_every_port_method_has_the_same_parameters(
    fake: type[FakePort], port: type[Any]
) -> None:
    methods = _port_methods(port)
    assert methods, f"{port.__name__} declares no methods"
    for name in methods:
        implementation = getattr(fake, name)
        assert inspect.iscoroutinefunction(implementation), f"{fake.__name__}.{name} not async"
        assert _shape(implementation) == _shape(getattr(port, name)), name


def test_exported_members() -> None:
    """The package exports every fake port there is (a new fake cannot be left out) and each
    is checked against its port here."""
    exported = {getattr(tests.fakes, name) for name in tests.fakes.__all__}
    assert exported == set(FakePort.__subclasses__()) == {fake for fake, _ in PAIRS}


@pytest.mark.parametrize(("fake", "port"), PAIRS, ids=lambda value: value.__name__)
def test_fail_next_refuses_a_method_the_port_lacks(
    fake: type[FakePort], port: type[Any]
) -> None:
    for name in ("no_such_method", "seed_product", "now", "_page"):
        with pytest.raises(AttributeError):
            fake().fail_next(name, RuntimeError("x"))
    for name in _port_methods(port):
        fake().fail_next(name, RuntimeError("x"))
