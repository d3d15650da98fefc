"""Sandbox and live modes, failing closed.

Sandbox (`ERPGW_SANDBOX=true`): vendors without credentials are emulated, the demo client is
made and the published sandbox webhook secrets are accepted. Live: every vendor needs complete
credentials and its webhook secrets, and a published sandbox secret is refused, so a forged
delivery signed with the README's secret fails like any bad signature.
"""

from __future__ import annotations

from gateway.settings import VENDORS, Settings, SettingsError
from process_apis.webhooks import SANDBOX_SECRETS

__all__ = ["check_mode", "live_problems", "webhook_secrets"]


def live_problems(settings: Settings) -> list[str]:
    """What keeps `settings` from serving live: each missing variable, and each configured
    webhook secret that is a published sandbox one."""
    missing: list[str] = []
    for vendor in VENDORS:
        chosen = settings.vendor(vendor)
        missing += chosen.missing() + chosen.missing_webhook_secrets()
    problems = [f"{', '.join(missing)}: required in live mode"] if missing else []
    for source, published in SANDBOX_SECRETS.items():
        if set(settings.webhook_secrets(source)) & set(published):
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
    """Signing secrets by source for the webhook intake: each live vendor's configured ones.
    A source left out gets the sandbox's, which only a sandbox gateway lets happen."""
    return {
        source: settings.webhook_secrets(source)
        for source in SANDBOX_SECRETS
        if settings.is_live(source)
    }
