"""Our token-signing keys: unencrypted PEM files in one directory, rotated by the CLI.

`keys.json` in the directory lists the key ids, current signer first; the JWKS publishes the
current key and the previous one (tokens signed before a rotation stay valid until they
expire). Keys are created under an exclusive file lock, so two processes starting together
never make two. Processes notice a rotation by the index file's identity: every write
replaces it with a new file (a new inode), which a coarse modification time alone can miss.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from joserfc.jwk import ECKey, KeySet

__all__ = ["SIGNING_ALGORITHM", "KeyStore", "SigningKey"]

SIGNING_ALGORITHM = "ES256"
"""ES256: small tokens and cheap signing; verification cost is paid once per token (cache)."""
PUBLISHED_KEYS = 2
"""The current signer and the one before it, during rotation."""
INDEX_FILE = "keys.json"
LOCK_FILE = ".keys.lock"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: ECKey


class KeyStore:
    """The signing keys in `directory`, loaded lazily and reloaded when the index changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keys: list[SigningKey] = []
        self._index_version: tuple[int, int] | None = None

    def ensure(self) -> None:
        """Create the directory and a first key if there is none (once across processes)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.directory / LOCK_FILE), timeout=30):
            if not self._index_path.exists():
                self._write_index([self._new_key_file()])
        self.reload()

    def rotate(self) -> str:
        """Make a new current key; keep the previous one published. Returns the new kid."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.directory / LOCK_FILE), timeout=30):
            kids = self._read_index() if self._index_path.exists() else []
            new_kid = self._new_key_file()
            self._write_index([new_kid, *kids[: PUBLISHED_KEYS - 1]])
        self.reload()
        return new_kid

    def reload(self) -> None:
        # Version first: a rotation landing during the read is then seen on the next check.
        version = self._version()
        kids = self._read_index()
        self._keys = [SigningKey(kid, self._load(kid)) for kid in kids]
        self._index_version = version

    def refresh_if_changed(self) -> None:
        """Pick up a rotation made by another process (a stat per call; cheap)."""
        try:
            version = self._version()
        except FileNotFoundError:
            return
        if version != self._index_version:
            self.reload()

    @property
    def current(self) -> SigningKey:
        if not self._keys:
            self.reload()
        return self._keys[0]

    def key_set(self) -> KeySet:
        if not self._keys:
            self.reload()
        return KeySet([k.key for k in self._keys])

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document, current signer first."""
        self.refresh_if_changed()
        return {
            "keys": [
                {**k.key.as_dict(private=False), "use": "sig", "alg": SIGNING_ALGORITHM}
                for k in self._keys
            ]
        }

    @property
    def _index_path(self) -> Path:
        return self.directory / INDEX_FILE

    def _version(self) -> tuple[int, int]:
        stat = self._index_path.stat()
        return stat.st_ino, stat.st_mtime_ns

    def _read_index(self) -> list[str]:
        data = json.loads(self._index_path.read_text())
        return [str(kid) for kid in data["keys"]]

    def _write_index(self, kids: list[str]) -> None:
        tmp = self._index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": kids}, indent=2))
        os.replace(tmp, self._index_path)

    def _new_key_file(self) -> str:
        kid = f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
        key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
        path = self.directory / f"{kid}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.as_pem(private=True))
        return kid

    def _load(self, kid: str) -> ECKey:
        pem = (self.directory / f"{kid}.pem").read_bytes()
        return ECKey.import_key(pem, parameters={"kid": kid})
