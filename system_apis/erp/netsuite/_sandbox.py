"""The fixed identity of the emulator's sandbox integration (client id, certificate, key).

The sandbox key is derived from a fixed scalar so that the emulator and `sandbox_credentials`
agree without sharing state, the same way every other vendor's sandbox has a fixed test secret.
It signs nothing but requests to the in-memory emulator.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "SANDBOX_ACCOUNT_ID",
    "SANDBOX_CERTIFICATE_ID",
    "SANDBOX_CLIENT_ID",
    "sandbox_private_key",
    "sandbox_private_key_pem",
]

SANDBOX_ACCOUNT_ID = "ERPGW_SANDBOX"
SANDBOX_CLIENT_ID = "erpgw-sandbox"
SANDBOX_CERTIFICATE_ID = "erpgw-sandbox-cert"

_SEED = b"erp-gateway netsuite sandbox certificate"


def sandbox_private_key() -> ec.EllipticCurvePrivateKey:
    """The sandbox's P-256 private key (NetSuite accepts ES256 client assertions)."""
    scalar = int.from_bytes(hashlib.sha256(_SEED).digest(), "big")
    # The scalar must lie in [1, n-1]; reducing modulo the P-256 group order keeps it there.
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    return ec.derive_private_key(scalar % (order - 1) + 1, ec.SECP256R1())


def sandbox_private_key_pem() -> str:
    """The sandbox private key as PKCS#8 PEM text."""
    return (
        sandbox_private_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
