"""The public surface of `system_apis.outbound`: `__all__` names exactly what it exports."""

from __future__ import annotations

import system_apis.outbound as outbound


def test_all_names_every_public_member() -> None:
    public = {name for name in vars(outbound) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(outbound, name)).__name__ == "module"}
    assert set(outbound.__all__) == public - modules - {"annotations"}
