"""The partner kit run by a read-only client (`erp-gateway contract-test --read-only` does the
same): every check passes and it sends nothing but GET and HEAD. Apart from
test_openapi_contract.py so that the suite's workers (`--dist loadfile`) run the two at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.partner_kit import failures, run_kit, served_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with served_gateway(tmp_path_factory.mktemp("contract")) as served:
        yield served


def test_a_read_only_client_passes_sending_nothing_but_get_and_head(
    gateway: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("partner")
    done, seen, report = run_kit(gateway, "reader", outside, max_examples=3, read_only=True)

    assert failures(report) == []
    assert done.exit_code == 0, done.output[-4000:]
    assert done.seeded == []
    assert seen
    assert {op.split(" ")[0] for op in seen} <= {"GET", "HEAD"}
