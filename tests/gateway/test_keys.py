"""Signing keys on disk: created once across processes, rotated with the previous key kept
published, and readable by their owner only."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from gateway.keys import KeyStore


def _ensure_when_released(directory: str, start: multiprocessing.synchronize.Event) -> None:
    start.wait(timeout=30)
    KeyStore(Path(directory)).ensure()


def test_two_processes_ensuring_at_once_make_exactly_one_key(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=_ensure_when_released, args=(str(directory), start))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=60)

    assert [worker.exitcode for worker in workers] == [0, 0]
    store = KeyStore(directory)
    store.reload()
    assert len(store.jwks()["keys"]) == 1
    assert len(list(directory.glob("*.pem"))) == 1
    assert store.current.kid == next(directory.glob("*.pem")).stem


def test_ensure_keeps_an_existing_key(tmp_path: Path) -> None:
    first = KeyStore(tmp_path)
    first.ensure()

    second = KeyStore(tmp_path)
    second.ensure()

    assert second.current.kid == first.current.kid
    assert len(list(tmp_path.glob("*.pem"))) == 1


def test_rotate_publishes_the_new_key_first_and_keeps_one_previous(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.ensure()
    original = store.current.kid

    second = store.rotate()
    assert [key["kid"] for key in store.jwks()["keys"]] == [second, original]
    assert store.current.kid == second

    third = store.rotate()
    assert [key["kid"] for key in store.jwks()["keys"]] == [third, second]


def test_another_process_rotation_is_seen_at_once(tmp_path: Path) -> None:
    serving = KeyStore(tmp_path)
    serving.ensure()
    original = serving.current.kid

    # Two rotations in quick succession, as when retiring a leaked key: the serving store must
    # follow each one, however close together they land.
    first = KeyStore(tmp_path).rotate()
    serving.refresh_if_changed()
    assert [key["kid"] for key in serving.jwks()["keys"]] == [first, original]
    second = KeyStore(tmp_path).rotate()

    assert [key["kid"] for key in serving.jwks()["keys"]] == [second, first]


def test_key_files_are_private(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.ensure()
    store.rotate()

    pems = list(tmp_path.glob("*.pem"))
    assert len(pems) == 2
    for pem in pems:
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600


def test_jwks_has_no_private_members(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.ensure()

    (key,) = store.jwks()["keys"]

    assert "d" not in key
    assert {"kty", "crv", "x", "y", "kid", "alg", "use"} <= key.keys()
