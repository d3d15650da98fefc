"""Sandbox and live modes, failing closed.

Sandbox (`ERPGW_SANDBOX=true`): vendors without credentials are emulated, the demo client is
made and the published sandbox webhook secrets are accepted. Live: every vendor needs complete
credentials and its webhook secrets, and a published sandbox secret is refused, so a forged
delivery signed with the README's secret fails like any bad signature.
"""

from __future__ import annotations

import hashlib

from gateway.settings import VENDORS, Settings, SettingsError

__all__ = ["PUBLISHED_SANDBOX_SECRETS", "check_mode", "live_problems", "webhook_secrets"]

WEBHOOK_SOURCES = ("stripe", "zendesk")
"""The vendors whose webhooks the intake verifies by a shared signing secret."""

PUBLISHED_SANDBOX_SECRETS: dict[str, frozenset[str]] = {
    # SHA-256 of the emulators' fixed secrets (sandbox.credentials), kept as digests so that a
    # live gateway can refuse them without loading the sandbox package.
    "stripe": frozenset({"657d0f8e1d6c41b738c73ceb3df0df40fba11a1996cbed19441b999fccb14628"}),
    "zendesk": frozenset({"215400b6448941d055f882e6e5c8e82429770153e70cc95bc93cb41e11f1072e"}),
}


def _published(source: str, secret: str) -> bool:
    return hashlib.sha256(secret.encode()).hexdigest() in PUBLISHED_SANDBOX_SECRETS[source]


def live_problems(settings: Settings) -> list[str]:
    """What keeps `settings` from serving live: each missing variable, and each configured
    webhook secret that is a published sandbox one."""
    missing: list[str] = []
    for vendor in VENDORS:
        chosen = settings.vendor(vendor)
        missing += chosen.missing() + chosen.missing_webhook_secrets()
    problems = [f"{', '.join(missing)}: required in live mode"] if missing else []
    for source in WEBHOOK_SOURCES:
        if any(_published(source, secret) for secret in settings.webhook_secrets(source)):
            problems.append(
                f"ERPGW_{source.upper()}_WEBHOOK_SECRETS: the published sandbox secret is "
                "refused in live mode"
            )
    return problems


def check_mode(settings: Settings) -> None:
    """Stop start-up (one line naming the variables) when a live gateway is not complete.

    Raises:
        SettingsError: live mode with missing credentials, missing webhook secrets or a
            sandbox webhook secret.
    """
    if settings.sandbox.enabled:
        return
    problems = live_problems(settings)
    if problems:
        raise SettingsError(
            "; ".join(problems) + " (ERPGW_SANDBOX=true serves the emulators instead)"
        )


def webhook_secrets(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Signing secrets by source for the webhook intake: each live vendor's configured ones,
    and in sandbox mode the fixed sandbox secret for every other vendor. A live gateway's
    intake knows no sandbox secret at all."""
    secrets: dict[str, tuple[str, ...]] = {}
    for source in WEBHOOK_SOURCES:
        if settings.is_live(source):
            secrets[source] = settings.webhook_secrets(source)
        elif settings.sandbox.enabled:
            from gateway import sandbox_wiring  # sandbox mode only

            secrets[source] = sandbox_wiring.webhook_secrets(source)
    return secrets
