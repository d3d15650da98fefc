"""The gateway's settings: every `ERPGW_*` variable declared once, parsed once at start-up.

`Settings` is a tree of msgspec Structs; each field names its variable, type, default and
meaning (`var(...)`), and is marked when it holds a secret. `load_settings()` reads the
environment (the one place in the project that does) and stops on a bad value or an unknown
`ERPGW_*` variable with one line naming it (`SettingsError`); the result is passed down.
`python -m gateway.settings --markdown` prints the README's configuration table.

Variables read only by tests, CI and benchmarks (`TEST_ONLY_*`) are declared but not parsed.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Final, Literal
from urllib.parse import SplitResult, urlsplit

import msgspec

__all__ = [
    "TEST_ONLY_PREFIXES",
    "TEST_ONLY_VARIABLES",
    "VENDORS",
    "ApiVersionEntry",
    "ConsoleRole",
    "ExperienceSettings",
    "NetSuiteSettings",
    "ProcessSettings",
    "SalesforceSettings",
    "SandboxSettings",
    "Settings",
    "SettingsError",
    "StripeSettings",
    "Variable",
    "ZendeskSettings",
    "effective_settings",
    "export_overrides",
    "load_settings",
    "markdown_table",
    "redact_url",
    "variables",
]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/erp-gateway.db"
DEFAULT_RATE_LIMIT_TIERS = (
    "bronze=60/minute;silver=600/minute;gold=6000/minute;anonymous=300/minute;"
    "anonymous.webhooks=300000/minute"
)
VENDORS: tuple[str, ...] = ("salesforce", "stripe", "zendesk", "netsuite")
SALESFORCE_LOGIN_URL = "https://login.salesforce.com"
STRIPE_BASE_URL = "https://api.stripe.com"
TEST_ONLY_PREFIXES: tuple[str, ...] = ("ERPGW_TEST_", "ERPGW_BENCH_")
"""Variables of the test suite (`ERPGW_TEST_DATABASE_URL`, `ERPGW_TEST_REDIS_URL`) and the
benchmarks (`ERPGW_BENCH_*`): never read by the gateway, allowed beside it."""
TEST_ONLY_VARIABLES: dict[str, str] = {
    "ERPGW_REQUIRE_SERVICES": "CI: fail (not skip) tests whose PostgreSQL or Redis is absent",
    "ERPGW_VENDOR_SPECS": "tests: folder of the vendors' published API specifications",
    "ERPGW_TEST_DATABASE_URL": "tests: PostgreSQL for the integration tests",
    "ERPGW_TEST_REDIS_URL": "tests: Redis for the integration tests",
}
_REPLACED: dict[str, str] = {"ERPGW_EMULATORS": "ERPGW_SANDBOX"}
"""Variables the gateway no longer reads, and what replaced them."""
_URL_PASSWORD = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?[^:/?#@]*):.*@")
"""`user:password@` in a URL, up to its last `@` (hiding too much beats showing a password)."""
_REDACTED = "***"


class SettingsError(ValueError):
    """A setting has a value the gateway cannot start with; the message names the variable."""


@dataclass(frozen=True, kw_only=True)
class ApiVersionEntry:
    """The lifecycle of one major version of one API (e.g. `system/crm` `v1`)."""

    api: str
    major: str
    status: Literal["current", "deprecated"] = "current"
    deprecated_at: datetime | None = None
    sunset_at: datetime | None = None
    successor: str | None = None
    """Path prefix of the version that replaces this one, e.g. `/system/crm/v2`."""


CONSOLE_PERSON_SCOPES: tuple[str, ...] = ("ops:read", "ops:replay", "finance:approve", "audit:read")
"""What a console role may grant a person."""


@dataclass(frozen=True, kw_only=True)
class ConsoleRole:
    """What members of one identity-provider group may do in the console."""

    group: str
    scopes: frozenset[str]
    entities: frozenset[str] | None
    """The legal entities they see; None: every entity (`@*`)."""


# --- how one variable's text becomes a value -------------------------------------------------

Check = Callable[[str, str], Any]
"""(variable name, stripped non-blank text) -> value; raises SettingsError naming the variable."""


def var(
    name: str,
    meaning: str,
    *,
    secret: bool = False,
    default_doc: str | None = None,
    check: Check | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    upper: bool = False,
) -> msgspec.Meta:
    """Declare the variable behind a settings field: its name and one-line meaning.

    `secret`: never printed (`erp-gateway config` shows `***`). `default_doc`: the default as
    the README shows it, when it follows other settings. `check`: parses and validates the text.
    """
    return msgspec.Meta(
        description=meaning,
        extra={
            "env": name,
            "secret": secret,
            "default_doc": default_doc,
            "check": check,
            "minimum": minimum,
            "maximum": maximum,
            "positive": positive,
            "upper": upper,
        },
    )


def _url(*schemes: str) -> Check:
    def check(name: str, raw: str) -> str:
        parts = _split(name, raw)
        web = parts.scheme in ("http", "https")
        if parts.scheme not in schemes or not (parts.netloc if web else parts.netloc or parts.path):
            raise SettingsError(
                f"{name}: expected a URL with scheme {' or '.join(schemes)}, "
                f"got {redact_url(raw)!r}"
            )
        return raw.rstrip("/") if web else raw

    return check


def _console_roles(name: str, raw: str) -> tuple[ConsoleRole, ...]:
    """`GROUP=SCOPE,SCOPE@ENTITY,ENTITY;...` (`@*`: every legal entity)."""
    roles = []
    for rule in (part.strip() for part in raw.split(";")):
        if not rule:
            continue
        group, equals, rest = rule.partition("=")
        scopes_text, at, entities_text = rest.partition("@")
        scopes = frozenset(s.strip() for s in scopes_text.split(",") if s.strip())
        entities = [e.strip() for e in entities_text.split(",") if e.strip()]
        if not equals or not group.strip() or not at or not scopes or not entities:
            raise SettingsError(
                f"{name}: expected GROUP=SCOPE,...@ENTITY,... (or @*) rules separated by ';', "
                f"got {rule!r}"
            )
        unknown = sorted(scopes - set(CONSOLE_PERSON_SCOPES))
        if unknown:
            raise SettingsError(
                f"{name}: {', '.join(unknown)} cannot be granted in the console "
                f"(one of {', '.join(CONSOLE_PERSON_SCOPES)})"
            )
        roles.append(
            ConsoleRole(
                group=group.strip(),
                scopes=scopes,
                entities=None if entities == ["*"] else frozenset(e.upper() for e in entities),
            )
        )
    return tuple(roles)


def _database_url(name: str, raw: str) -> str:
    scheme = _split(name, raw).scheme
    if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise SettingsError(
            f"{name}: expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://..., "
            f"got {redact_url(raw)!r}"
        )
    return raw


def _renewal_risk_rules(name: str, raw: str) -> str:
    from process_apis.renewals.risk import parse_rules

    try:
        parse_rules(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
    return raw


def _rate_limit_tiers(name: str, raw: str) -> str:
    from gateway.rate_limits import parse_tiers

    try:
        parse_tiers(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
    return raw


def _networks(name: str, raw: str) -> tuple[str, ...]:
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise SettingsError(f"{name}: {item!r} is not an IP address or CIDR") from None
    return tuple(networks)


def _api_versions(name: str, raw: str) -> tuple[ApiVersionEntry, ...]:
    try:
        entries = json.loads(raw)
        if not isinstance(entries, list):
            raise ValueError("the value is not a JSON list")
        return tuple(_version_entry(item) for item in entries)
    except (ValueError, TypeError, KeyError) as exc:
        raise SettingsError(
            f"{name}: expected a JSON list of {{api, major, status, deprecated_at, "
            f"sunset_at, successor}} objects ({exc})"
        ) from None


def _sandbox_vendors(name: str, raw: str) -> tuple[str, ...]:
    if raw.lower() == "none":
        return ()
    chosen = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    unknown = [vendor for vendor in chosen if vendor not in VENDORS]
    if unknown:
        raise SettingsError(
            f"{name}: expected vendors of {', '.join(VENDORS)} (or none), got {unknown[0]!r}"
        )
    return chosen


def _pem(name: str, raw: str) -> str:
    # A PEM in one environment line carries its line breaks as `\n`.
    return raw.replace("\\n", "\n")


def _console_secret(name: str, raw: str) -> bytes:
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SettingsError(f"{name}: must be 32 bytes as 64 hex digits")
    return key


# --- the schema ------------------------------------------------------------------------------


class SandboxSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Sandbox mode: emulators for the vendors without credentials, a demo client, and the
    published sandbox webhook secrets. Off, the gateway is live and fails closed."""

    enabled: Annotated[
        bool,
        var(
            "ERPGW_SANDBOX",
            "sandbox mode (`make run`, tests, benches); unset: live, every vendor needs "
            "credentials and webhook secrets",
        ),
    ] = False
    vendors: Annotated[
        tuple[str, ...],
        var(
            "ERPGW_SANDBOX_VENDORS",
            "sandbox mode: which vendors without credentials get an emulator (comma-separated, "
            "or `none`); the others are not wired",
            default_doc="`salesforce,stripe,zendesk,netsuite`",
            check=_sandbox_vendors,
        ),
    ] = VENDORS


class SalesforceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A Salesforce connected app: client credentials, or JWT bearer (username + key)."""

    client_id: Annotated[
        str | None, var("ERPGW_SALESFORCE_CLIENT_ID", "connected app consumer key")
    ] = None
    client_secret: Annotated[
        str | None,
        var(
            "ERPGW_SALESFORCE_CLIENT_SECRET",
            "consumer secret (client credentials flow)",
            secret=True,
        ),
    ] = None
    username: Annotated[
        str | None, var("ERPGW_SALESFORCE_USERNAME", "integration user (JWT bearer flow)")
    ] = None
    private_key: Annotated[
        str | None,
        var(
            "ERPGW_SALESFORCE_PRIVATE_KEY",
            "JWT signing key, PEM text (`\\n` for line breaks)",
            secret=True,
            check=_pem,
        ),
    ] = None
    private_key_file: Annotated[
        Path | None,
        var("ERPGW_SALESFORCE_PRIVATE_KEY_FILE", "JWT signing key, path of a PEM file"),
    ] = None
    login_url: Annotated[
        str,
        var(
            "ERPGW_SALESFORCE_LOGIN_URL",
            "token endpoint host (a My Domain URL, or the login host)",
            check=_url("https", "http"),
        ),
    ] = SALESFORCE_LOGIN_URL
    audience: Annotated[
        str,
        var(
            "ERPGW_SALESFORCE_AUDIENCE",
            "JWT `aud` (`https://test.salesforce.com` for sandbox orgs)",
            check=_url("https", "http"),
        ),
    ] = SALESFORCE_LOGIN_URL

    def missing(self) -> list[str]:
        """The variables still needed for complete credentials."""
        absent = [] if self.client_id else ["ERPGW_SALESFORCE_CLIENT_ID"]
        key = self.private_key or self.private_key_file
        if not self.client_secret and not (self.username and key):
            if self.username:
                absent.append("ERPGW_SALESFORCE_PRIVATE_KEY (or ERPGW_SALESFORCE_PRIVATE_KEY_FILE)")
            elif key:
                absent.append("ERPGW_SALESFORCE_USERNAME")
            else:
                absent.append(
                    "ERPGW_SALESFORCE_CLIENT_SECRET (or ERPGW_SALESFORCE_USERNAME with "
                    "ERPGW_SALESFORCE_PRIVATE_KEY)"
                )
        return absent

    def missing_webhook_secrets(self) -> list[str]:
        # Salesforce Flow callouts authenticate as a registered client (`process:write`).
        return []


class StripeSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A Stripe account: its secret key and the signing secrets of its webhook endpoint."""

    secret_key: Annotated[
        str | None,
        var(
            "ERPGW_STRIPE_SECRET_KEY", "secret API key (`sk_live_...`, `sk_test_...`)", secret=True
        ),
    ] = None
    base_url: Annotated[
        str, var("ERPGW_STRIPE_BASE_URL", "Stripe API base URL", check=_url("https", "http"))
    ] = STRIPE_BASE_URL
    webhook_secrets: Annotated[
        tuple[str, ...],
        var(
            "ERPGW_STRIPE_WEBHOOK_SECRETS",
            "webhook signing secrets, comma-separated (two while rolling one)",
            secret=True,
        ),
    ] = ()

    def missing(self) -> list[str]:
        return [] if self.secret_key else ["ERPGW_STRIPE_SECRET_KEY"]

    def missing_webhook_secrets(self) -> list[str]:
        return [] if self.webhook_secrets else ["ERPGW_STRIPE_WEBHOOK_SECRETS"]


class ZendeskSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A Zendesk account: where it is, an API token or OAuth token, its webhooks' secrets."""

    subdomain: Annotated[
        str | None, var("ERPGW_ZENDESK_SUBDOMAIN", "account subdomain (`{subdomain}.zendesk.com`)")
    ] = None
    base_url: Annotated[
        str | None,
        var(
            "ERPGW_ZENDESK_BASE_URL",
            "account URL, instead of the subdomain",
            default_doc="`https://{subdomain}.zendesk.com`",
            check=_url("https", "http"),
        ),
    ] = None
    email: Annotated[
        str | None, var("ERPGW_ZENDESK_EMAIL", "agent email for API token sign-in")
    ] = None
    api_token: Annotated[
        str | None, var("ERPGW_ZENDESK_API_TOKEN", "API token (with the email)", secret=True)
    ] = None
    oauth_token: Annotated[
        str | None,
        var(
            "ERPGW_ZENDESK_OAUTH_TOKEN",
            "OAuth access token, instead of email and API token",
            secret=True,
        ),
    ] = None
    webhook_secrets: Annotated[
        tuple[str, ...],
        var(
            "ERPGW_ZENDESK_WEBHOOK_SECRETS",
            "webhook signing secrets, comma-separated (several while rotating)",
            secret=True,
        ),
    ] = ()

    @property
    def url(self) -> str | None:
        """The account URL: the base URL, else from the subdomain."""
        if self.base_url:
            return self.base_url
        return f"https://{self.subdomain}.zendesk.com" if self.subdomain else None

    def missing(self) -> list[str]:
        absent = [] if self.url else ["ERPGW_ZENDESK_SUBDOMAIN (or ERPGW_ZENDESK_BASE_URL)"]
        if not self.oauth_token and not (self.email and self.api_token):
            if self.email:
                absent.append("ERPGW_ZENDESK_API_TOKEN")
            elif self.api_token:
                absent.append("ERPGW_ZENDESK_EMAIL")
            else:
                absent.append(
                    "ERPGW_ZENDESK_EMAIL and ERPGW_ZENDESK_API_TOKEN (or ERPGW_ZENDESK_OAUTH_TOKEN)"
                )
        return absent

    def missing_webhook_secrets(self) -> list[str]:
        return [] if self.webhook_secrets else ["ERPGW_ZENDESK_WEBHOOK_SECRETS"]


class NetSuiteSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A NetSuite integration record with OAuth 2.0 M2M: a mapped certificate and its key."""

    account_id: Annotated[
        str | None, var("ERPGW_NETSUITE_ACCOUNT_ID", "account id (e.g. `1234567_SB1`)")
    ] = None
    client_id: Annotated[
        str | None, var("ERPGW_NETSUITE_CLIENT_ID", "integration record client id")
    ] = None
    certificate_id: Annotated[
        str | None, var("ERPGW_NETSUITE_CERTIFICATE_ID", "id of the mapped M2M certificate")
    ] = None
    private_key: Annotated[
        str | None,
        var(
            "ERPGW_NETSUITE_PRIVATE_KEY",
            "the certificate's private key, PEM text",
            secret=True,
            check=_pem,
        ),
    ] = None
    private_key_file: Annotated[
        Path | None, var("ERPGW_NETSUITE_PRIVATE_KEY_FILE", "the private key, path of a PEM file")
    ] = None
    base_url: Annotated[
        str | None,
        var(
            "ERPGW_NETSUITE_BASE_URL",
            "SuiteTalk REST base URL",
            default_doc="`https://{account}.suitetalk.api.netsuite.com`",
            check=_url("https", "http"),
        ),
    ] = None
    algorithm: Annotated[
        str | None,
        var(
            "ERPGW_NETSUITE_ALGORITHM",
            "JWT algorithm (default PS256 for RSA keys, ES256 for EC keys)",
        ),
    ] = None

    @property
    def url(self) -> str | None:
        if self.base_url:
            return self.base_url
        if not self.account_id:
            return None
        return f"https://{self.account_id.lower().replace('_', '-')}.suitetalk.api.netsuite.com"

    def missing(self) -> list[str]:
        absent = [
            f"ERPGW_NETSUITE_{name}"
            for name, value in (
                ("ACCOUNT_ID", self.account_id),
                ("CLIENT_ID", self.client_id),
                ("CERTIFICATE_ID", self.certificate_id),
            )
            if not value
        ]
        if not (self.private_key or self.private_key_file):
            absent.append("ERPGW_NETSUITE_PRIVATE_KEY (or ERPGW_NETSUITE_PRIVATE_KEY_FILE)")
        return absent

    def missing_webhook_secrets(self) -> list[str]:
        return []


class ExperienceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The composed views' caches and budgets, and the operations console."""

    view_cache_seconds: Annotated[
        float,
        var(
            "ERPGW_VIEW_CACHE_SECONDS", "how long a source's answer is reused (0: never)", minimum=0
        ),
    ] = 5.0
    view_stale_seconds: Annotated[
        float,
        var(
            "ERPGW_VIEW_STALE_SECONDS",
            "how old an answer may stand in for a failing optional source",
            minimum=0,
        ),
    ] = 300.0
    budget_crm: Annotated[
        float | None,
        var("ERPGW_VIEW_BUDGET_CRM", "seconds a view waits for the CRM", positive=True),
    ] = None
    budget_billing: Annotated[
        float | None,
        var("ERPGW_VIEW_BUDGET_BILLING", "seconds a view waits for billing", positive=True),
    ] = None
    budget_support: Annotated[
        float | None,
        var("ERPGW_VIEW_BUDGET_SUPPORT", "seconds a view waits for support", positive=True),
    ] = None
    budget_erp: Annotated[
        float | None,
        var("ERPGW_VIEW_BUDGET_ERP", "seconds a view waits for the ERP", positive=True),
    ] = None
    budget_process: Annotated[
        float | None,
        var("ERPGW_VIEW_BUDGET_PROCESS", "seconds a view waits for the flows", positive=True),
    ] = None
    console_secret: Annotated[
        bytes | None,
        var(
            "ERPGW_CONSOLE_SECRET",
            "console cookie key, 64 hex digits (set it when replicas do not share the var folder)",
            default_doc="`{ERPGW_VAR_DIR}/console-cookie.key`",
            secret=True,
            check=_console_secret,
        ),
    ] = None
    console_oidc_issuer: Annotated[
        str | None,
        var(
            "ERPGW_CONSOLE_OIDC_ISSUER",
            "the company's OpenID Connect provider people sign in to the console with "
            "(its discovery document is read from `/.well-known/openid-configuration`)",
            check=_url("https", "http"),
        ),
    ] = None
    console_oidc_client_id: Annotated[
        str | None,
        var("ERPGW_CONSOLE_OIDC_CLIENT_ID", "the console's client id at that provider"),
    ] = None
    console_oidc_client_secret: Annotated[
        str | None,
        var(
            "ERPGW_CONSOLE_OIDC_CLIENT_SECRET",
            "the console's client secret at that provider",
            secret=True,
        ),
    ] = None
    console_oidc_roles: Annotated[
        tuple[ConsoleRole, ...],
        var(
            "ERPGW_CONSOLE_OIDC_ROLES",
            "what each group of the ID token's groups claim may do: "
            "`GROUP=SCOPE,...@ENTITY,...` rules separated by `;` (scopes among ops:read, "
            "ops:replay, finance:approve, audit:read; `@*` for every legal entity)",
            check=_console_roles,
        ),
    ] = ()
    console_oidc_groups_claim: Annotated[
        str,
        var("ERPGW_CONSOLE_OIDC_GROUPS_CLAIM", "the ID token claim listing a person's groups"),
    ] = "groups"
    console_salesforce_url: Annotated[
        str | None,
        var(
            "ERPGW_CONSOLE_SALESFORCE_URL",
            "console links to Salesforce records",
            check=_url("https", "http"),
        ),
    ] = None
    console_stripe_url: Annotated[
        str | None,
        var(
            "ERPGW_CONSOLE_STRIPE_URL",
            "console links to the Stripe dashboard",
            default_doc="Stripe's test dashboard (live one with an `sk_live_` key)",
            check=_url("https", "http"),
        ),
    ] = None
    console_netsuite_url: Annotated[
        str | None,
        var(
            "ERPGW_CONSOLE_NETSUITE_URL",
            "console links to NetSuite records",
            default_doc="from `ERPGW_NETSUITE_ACCOUNT_ID`",
            check=_url("https", "http"),
        ),
    ] = None
    console_zendesk_url: Annotated[
        str | None,
        var(
            "ERPGW_CONSOLE_ZENDESK_URL",
            "console links to Zendesk tickets",
            default_doc="from `ERPGW_ZENDESK_SUBDOMAIN`",
            check=_url("https", "http"),
        ),
    ] = None

    @property
    def budgets(self) -> dict[str, float]:
        """Per-source budget overrides, seconds, by source name."""
        chosen = {
            "crm": self.budget_crm,
            "billing": self.budget_billing,
            "support": self.budget_support,
            "erp": self.budget_erp,
            "process": self.budget_process,
        }
        return {name: value for name, value in chosen.items() if value is not None}


class ProcessSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The durable flows: won-deal polling, approval waits, the executor's identity."""

    crm_poll_seconds: Annotated[
        float,
        var("ERPGW_CRM_POLL_SECONDS", "seconds between polls for won deals (0: off)", minimum=0),
    ] = 0.0
    crm_poll_since: Annotated[
        datetime | None,
        var(
            "ERPGW_CRM_POLL_SINCE",
            "RFC 3339 time the first won-deal poll starts from",
            default_doc="when polling starts",
        ),
    ] = None
    approval_timeout_seconds: Annotated[
        float,
        var(
            "ERPGW_APPROVAL_TIMEOUT_SECONDS",
            "how long a service credit waits for approval",
            positive=True,
        ),
    ] = 7 * 24 * 3600.0
    step_wait_ceiling_seconds: Annotated[
        float,
        var(
            "ERPGW_STEP_WAIT_CEILING_SECONDS",
            "how long a flow may wait on an outage (open breaker, spent quota) before the "
            "integration team gets an exception",
            minimum=30,
        ),
    ] = 900.0
    reconcile_interval_seconds: Annotated[
        float,
        var(
            "ERPGW_RECONCILE_INTERVAL_SECONDS",
            "seconds between scheduled reconciliations of every kind and entity (0: off)",
            minimum=0,
        ),
    ] = 3600.0
    reconcile_full_every_seconds: Annotated[
        float,
        var(
            "ERPGW_RECONCILE_FULL_EVERY_SECONDS",
            "a scheduled reconciliation reads every record (not only those changed since the "
            "last run) when the last one that did began this long ago; finds drift no change "
            "feed shows, such as a record deleted in the ERP",
            positive=True,
        ),
    ] = 86400.0
    reconcile_settle_seconds: Annotated[
        float,
        var(
            "ERPGW_RECONCILE_SETTLE_SECONDS",
            "records younger than this are reported pending by a reconciliation, not mismatched",
            minimum=0,
        ),
    ] = 300.0
    usage_flush_seconds: Annotated[
        float,
        var(
            "ERPGW_USAGE_FLUSH_SECONDS",
            "seconds between pushes of accepted usage records to billing (0: only on demand "
            "and before a period closes)",
            minimum=0,
        ),
    ] = 60.0
    usage_grace_seconds: Annotated[
        int,
        var(
            "ERPGW_USAGE_GRACE_SECONDS",
            "how long before the open billing period a usage record may be timestamped (it "
            "counts in the open period)",
            minimum=0,
        ),
    ] = 3600
    webhook_dispatch_poll_seconds: Annotated[
        float,
        var(
            "ERPGW_WEBHOOK_DISPATCH_POLL_SECONDS",
            "seconds between looks for stored webhook events no dispatcher took yet (other "
            "replicas', retries, a crashed dispatcher's); events this process stores wake it",
            positive=True,
        ),
    ] = 2.0
    webhook_dispatch_defer_seconds: Annotated[
        float,
        var(
            "ERPGW_WEBHOOK_DISPATCH_DEFER_SECONDS",
            "longest a backlog of stored webhook events waits for this process's intake to "
            "pause (deliveries come first during a burst; their flows start once it ends or "
            "after this long); 0 starts flows at once",
            minimum=0,
            maximum=300,
        ),
    ] = 10.0
    webhook_dispatch_attempts: Annotated[
        int,
        var(
            "ERPGW_WEBHOOK_DISPATCH_ATTEMPTS",
            "attempts to start a stored webhook event's flows before it is marked failed and "
            "the integration team gets an exception",
            minimum=1,
            maximum=100,
        ),
    ] = 5
    webhook_dispatch_concurrency: Annotated[
        int,
        var(
            "ERPGW_WEBHOOK_DISPATCH_CONCURRENCY",
            "stored webhook events a process dispatches at once (bounds the database "
            "connections dispatch takes from interactive requests)",
            minimum=1,
            maximum=256,
        ),
    ] = 4
    webhook_inbox_batch: Annotated[
        int,
        var(
            "ERPGW_WEBHOOK_INBOX_BATCH",
            "webhook deliveries stored at most by one INSERT (group commit of concurrent "
            "deliveries)",
            minimum=1,
            maximum=5000,
        ),
    ] = 500
    renewal_scan_interval_seconds: Annotated[
        float,
        var(
            "ERPGW_RENEWAL_SCAN_INTERVAL_SECONDS",
            "seconds between scheduled renewal scans (0: off)",
            minimum=0,
        ),
    ] = 86400.0
    renewal_lead_days: Annotated[
        int,
        var(
            "ERPGW_RENEWAL_LEAD_DAYS",
            "days before a contract's end its renewal opportunity is made",
            minimum=1,
            maximum=730,
        ),
    ] = 90
    renewal_risk_rules: Annotated[
        str,
        var(
            "ERPGW_RENEWAL_RISK_RULES",
            "renewal risk thresholds that differ from the defaults, as JSON "
            '(`{"sla_breaches_high": 2}`; 0 turns a rule off)',
            check=_renewal_risk_rules,
            default_doc="the defaults (see `process_apis/renewals/risk.py`)",
        ),
    ] = "{}"
    executor_id: Annotated[
        str | None,
        var(
            "ERPGW_EXECUTOR_ID",
            "fixed flow executor id: a restart under it resumes its flows",
            default_doc="one per process",
        ),
    ] = None
    queue_concurrency: Annotated[
        int,
        var(
            "ERPGW_FLOW_QUEUE_CONCURRENCY",
            "flows one gateway process runs at once from the flows queue",
            minimum=1,
        ),
    ] = 8
    queue_global_concurrency: Annotated[
        int | None,
        var(
            "ERPGW_FLOW_QUEUE_GLOBAL_CONCURRENCY",
            "flows all gateway processes together run at once",
            minimum=1,
            default_doc="no limit beyond each process's",
        ),
    ] = None
    queue_poll_seconds: Annotated[
        float,
        var(
            "ERPGW_FLOW_QUEUE_POLL_SECONDS",
            "seconds between two polls of the flows queue (and of message waits)",
            positive=True,
        ),
    ] = 0.25


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the gateway is configured with; built by `load_settings`."""

    database_url: Annotated[
        str,
        var(
            "ERPGW_DATABASE_URL",
            "database: `sqlite+aiosqlite:///PATH` or `postgresql+asyncpg://user@host/db`",
            check=_database_url,
        ),
    ] = DEFAULT_DATABASE_URL
    database_pool_size: Annotated[
        int,
        var(
            "ERPGW_DATABASE_POOL_SIZE",
            "PostgreSQL connections a gateway process holds at most in each of its three pools "
            "(requests, flow records, the flow engine's system database)",
            minimum=1,
        ),
    ] = 10
    redis_url: Annotated[
        str | None,
        var(
            "ERPGW_REDIS_URL",
            "Redis shared by replicas (rate limits, quotas, caches); unset: in-process state",
            check=_url("redis", "rediss", "unix"),
        ),
    ] = None
    host: Annotated[str, var("ERPGW_HOST", "where `serve` listens")] = "127.0.0.1"
    port: Annotated[int, var("ERPGW_PORT", "where `serve` listens", minimum=1, maximum=65535)] = (
        8000
    )
    issuer: Annotated[
        str,
        var(
            "ERPGW_ISSUER",
            "`iss` of the tokens we mint; also the default audience",
            default_doc="`http://{ERPGW_HOST}:{ERPGW_PORT}`",
            check=_url("http", "https"),
        ),
    ] = ""
    audience: Annotated[str, var("ERPGW_AUDIENCE", "`aud` our tokens carry and we require")] = (
        "erp-gateway"
    )
    signing_keys_dir: Annotated[
        Path,
        var(
            "ERPGW_SIGNING_KEYS_DIR",
            "token signing keys (PEM), created on first run",
            default_doc="`{ERPGW_VAR_DIR}/keys`",
        ),
    ] = Path("var/keys")
    external_issuer: Annotated[
        str | None,
        var("ERPGW_EXTERNAL_ISSUER", "also accept tokens of this external IdP (with its JWKS URL)"),
    ] = None
    external_jwks_url: Annotated[
        str | None,
        var("ERPGW_EXTERNAL_JWKS_URL", "the external IdP's JWKS", check=_url("http", "https")),
    ] = None
    log_format: Annotated[
        Literal["console", "json"], var("ERPGW_LOG_FORMAT", "log lines (to stderr)")
    ] = "console"
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        var("ERPGW_LOG_LEVEL", "log level", upper=True),
    ] = "INFO"
    access_log: Annotated[bool, var("ERPGW_ACCESS_LOG", "one log line per request")] = True
    rate_limit_tiers: Annotated[
        str,
        var(
            "ERPGW_RATE_LIMIT_TIERS",
            "limits per tier, optionally per route group (`gold.process=100/minute`)",
            check=_rate_limit_tiers,
        ),
    ] = DEFAULT_RATE_LIMIT_TIERS
    rate_limit_strategy: Annotated[
        Literal["sliding-window-counter", "moving-window"],
        var("ERPGW_RATE_LIMIT_STRATEGY", "rate-limit window"),
    ] = "sliding-window-counter"
    rate_limit_on_store_error: Annotated[
        Literal["allow", "deny"],
        var("ERPGW_RATE_LIMIT_ON_STORE_ERROR", "when Redis is unreachable: allow, or deny (503)"),
    ] = "allow"
    max_body_bytes: Annotated[
        int, var("ERPGW_MAX_BODY_BYTES", "larger request bodies get 413", minimum=1024)
    ] = 1_048_576
    body_read_timeout_seconds: Annotated[
        float,
        var(
            "ERPGW_BODY_READ_TIMEOUT_SECONDS",
            "seconds a client may take sending its headers or its body (then 408)",
            minimum=0.1,
            maximum=60,
        ),
    ] = 30.0
    trusted_proxies: Annotated[
        tuple[str, ...],
        var(
            "ERPGW_TRUSTED_PROXIES",
            "proxies (IPs or CIDRs, comma-separated) whose `X-Forwarded-For` or `Forwarded` "
            "names the client",
            check=_networks,
        ),
    ] = ()
    idempotency_retention_seconds: Annotated[
        int,
        var(
            "ERPGW_IDEMPOTENCY_RETENTION_SECONDS",
            "how long an `Idempotency-Key` answer is replayed",
            minimum=60,
        ),
    ] = 86_400
    audit_retention_days: Annotated[
        int,
        var(
            "ERPGW_AUDIT_RETENTION_DAYS",
            "how long audit records are kept (older ones are pruned hourly)",
            minimum=1,
        ),
    ] = 400
    token_ttl_seconds: Annotated[
        int, var("ERPGW_TOKEN_TTL_SECONDS", "access token lifetime", minimum=60)
    ] = 900
    api_versions: Annotated[
        tuple[ApiVersionEntry, ...],
        var(
            "ERPGW_API_VERSIONS",
            "JSON list of version lifecycle entries (see below)",
            check=_api_versions,
        ),
    ] = ()
    public_base_url: Annotated[
        str | None,
        var(
            "ERPGW_PUBLIC_BASE_URL",
            "where vendors reach our webhooks (https: Secure console cookies)",
            default_doc="`http://{ERPGW_HOST}:{ERPGW_PORT}`",
            check=_url("http", "https"),
        ),
    ] = None
    var_dir: Annotated[
        Path, var("ERPGW_VAR_DIR", "local state: demo client, keys, SQLite database")
    ] = Path("var")
    vendor_quotas: Annotated[
        bool,
        var(
            "ERPGW_VENDOR_QUOTAS",
            "client-side vendor quota budgets (Stripe 25/s, NetSuite 5 "
            "concurrent, ...); off only where the vendor's limits were raised",
        ),
    ] = True
    sandbox: SandboxSettings = msgspec.field(default_factory=SandboxSettings)
    salesforce: SalesforceSettings = msgspec.field(default_factory=SalesforceSettings)
    stripe: StripeSettings = msgspec.field(default_factory=StripeSettings)
    zendesk: ZendeskSettings = msgspec.field(default_factory=ZendeskSettings)
    netsuite: NetSuiteSettings = msgspec.field(default_factory=NetSuiteSettings)
    experience: ExperienceSettings = msgspec.field(default_factory=ExperienceSettings)
    process: ProcessSettings = msgspec.field(default_factory=ProcessSettings)

    def __post_init__(self) -> None:
        if not self.issuer:
            msgspec.structs.force_setattr(self, "issuer", f"http://{self.host}:{self.port}")

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"http://{self.host}:{self.port}"

    def vendor(self, name: str) -> VendorSettings:
        """One vendor's settings by name (`salesforce`, `stripe`, `zendesk`, `netsuite`)."""
        chosen: VendorSettings = getattr(self, name)
        return chosen

    def webhook_secrets(self, source: str) -> tuple[str, ...]:
        """The configured signing secrets of `source`'s webhooks (Stripe, Zendesk)."""
        if source == "stripe":
            return self.stripe.webhook_secrets
        if source == "zendesk":
            return self.zendesk.webhook_secrets
        return ()

    def is_live(self, vendor: str) -> bool:
        """Whether `vendor` has credentials configured (it is then never emulated)."""
        return _is_configured(self.vendor(vendor))

    def is_emulated(self, vendor: str) -> bool:
        return self.sandbox.enabled and vendor in self.sandbox.vendors and not self.is_live(vendor)


VendorSettings = SalesforceSettings | StripeSettings | ZendeskSettings | NetSuiteSettings


# --- the variables, walked from the schema ---------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """One declared `ERPGW_*` variable, as the schema states it."""

    name: str
    path: tuple[str, ...]
    """Attribute names from `Settings` to the field, e.g. `("stripe", "secret_key")`."""
    type: Any
    default: Any
    meaning: str
    secret: bool
    default_doc: str | None
    options: dict[str, Any]


def variables(
    struct: type[msgspec.Struct] = Settings, path: tuple[str, ...] = ()
) -> list[Variable]:
    """Every variable of the schema, in declaration order."""
    hints = typing.get_type_hints(struct, include_extras=True)
    found: list[Variable] = []
    for field in msgspec.structs.fields(struct):
        hint = hints[field.name]
        if typing.get_origin(hint) is not Annotated:
            found += variables(hint, (*path, field.name))
            continue
        base, *metadata = typing.get_args(hint)
        meta = next(item for item in metadata if isinstance(item, msgspec.Meta))
        extra = dict(meta.extra or {})
        default = field.default if field.default is not msgspec.NODEFAULT else None
        found.append(
            Variable(
                name=extra.pop("env"),
                path=(*path, field.name),
                type=base,
                default=default,
                meaning=meta.description or "",
                secret=extra.pop("secret"),
                default_doc=extra.pop("default_doc"),
                options=extra,
            )
        )
    return found


def load_settings(
    env: Mapping[str, str] | None = None, *, overrides: Mapping[str, str] | None = None
) -> Settings:
    """Parse the `ERPGW_*` variables of `env` (default: the process environment), with
    `overrides` (e.g. command-line options) winning.

    Raises:
        SettingsError: a bad value, an unknown `ERPGW_*` variable, or a vendor partly
            configured; the one-line message names the variable.
    """
    source = dict(os.environ if env is None else env) | dict(overrides or {})
    declared = variables()
    _refuse_unknown(source, {item.name for item in declared})
    tree: dict[str, Any] = {}
    for item in declared:
        raw = source.get(item.name, "").strip()
        if not raw:
            continue
        node = tree
        for part in item.path[:-1]:
            node = node.setdefault(part, {})
        node[item.path[-1]] = _parse(item, raw)
    settings = _build(tree)
    if (settings.external_issuer is None) != (settings.external_jwks_url is None):
        missing = (
            "ERPGW_EXTERNAL_JWKS_URL"
            if settings.external_jwks_url is None
            else "ERPGW_EXTERNAL_ISSUER"
        )
        raise SettingsError(f"{missing}: required with the other ERPGW_EXTERNAL_* setting")
    for vendor in VENDORS:
        chosen = settings.vendor(vendor)
        missing_names = chosen.missing()
        if _is_configured(chosen) and missing_names:
            raise SettingsError(
                f"{', '.join(missing_names)}: required, {_title(vendor)} is partly configured "
                f"({', '.join(_given(vendor, chosen))} set); it is never emulated then"
            )
    return settings


def _build(tree: dict[str, Any]) -> Settings:
    nested: dict[str, Any] = {
        name: kind(**tree.pop(name, {}))
        for name, kind in (
            ("sandbox", SandboxSettings),
            ("salesforce", SalesforceSettings),
            ("stripe", StripeSettings),
            ("zendesk", ZendeskSettings),
            ("netsuite", NetSuiteSettings),
            ("experience", ExperienceSettings),
            ("process", ProcessSettings),
        )
    }
    tree.setdefault("signing_keys_dir", tree.get("var_dir", Path("var")) / "keys")
    return Settings(**tree, **nested)


def _is_configured(vendor: VendorSettings) -> bool:
    kind = type(vendor)
    return any(
        getattr(vendor, field.name) != field.default for field in msgspec.structs.fields(kind)
    )


def _given(vendor: str, chosen: VendorSettings) -> list[str]:
    return [
        item.name
        for item in variables()
        if item.path[0] == vendor and getattr(chosen, item.path[-1]) != item.default
    ]


def _title(vendor: str) -> str:
    return {"netsuite": "NetSuite"}.get(vendor, vendor.capitalize())


def _refuse_unknown(source: Mapping[str, str], known: set[str]) -> None:
    allowed = known | set(TEST_ONLY_VARIABLES)
    for name in sorted(source):
        if not name.startswith("ERPGW_") or name in allowed:
            continue
        if name.startswith(TEST_ONLY_PREFIXES):
            continue
        if name in _REPLACED:
            raise SettingsError(f"{name}: no longer a setting; did you mean {_REPLACED[name]}?")
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise SettingsError(f"{name}: not a setting of the gateway{hint}")


def _parse(item: Variable, raw: str) -> Any:
    name, kind, options = item.name, item.type, item.options
    check: Check | None = options.get("check")
    if check is not None:
        return check(name, raw)
    kind = _without_none(kind)
    if kind is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}: expected true or false, got {raw!r}")
    if kind is int:
        try:
            number: float = int(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
        return _in_range(item, number)
    if kind is float:
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
        return float(_in_range(item, number))
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        value = raw.upper() if options.get("upper") else raw.lower()
        if value not in choices:
            raise SettingsError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
        return value
    if kind is Path:
        return Path(raw).expanduser()
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind is datetime:
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise SettingsError(f"{name}: expected an RFC 3339 time, got {raw!r}") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return raw


def _without_none(kind: Any) -> Any:
    if isinstance(kind, UnionType) or typing.get_origin(kind) is typing.Union:
        members = [member for member in typing.get_args(kind) if member is not NoneType]
        return members[0] if len(members) == 1 else kind
    return kind


def _in_range(item: Variable, value: float) -> float:
    minimum, maximum = item.options.get("minimum"), item.options.get("maximum")
    if item.options.get("positive") and not value > 0:
        raise SettingsError(f"{item.name}: must be a positive number, got {value}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise SettingsError(f"{item.name}: {value} is out of range ({bound})")
    return value


# --- what the CLI shows ----------------------------------------------------------------------


def effective_settings(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value as text) for every variable, secrets shown as `***` when set."""
    rows = []
    for item in variables():
        value: Any = settings
        for part in item.path:
            value = getattr(value, part)
        rows.append((item.name, _shown(item, value)))
    return rows


def _shown(item: Variable, value: Any) -> str:
    if value is None or value == () or value == "":
        return "(unset)"
    if item.secret:
        return _REDACTED
    if isinstance(value, tuple) and value and isinstance(value[0], ApiVersionEntry | ConsoleRole):
        return f"{len(value)} entries"
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return redact_url(text) if "://" in text else text


def markdown_table() -> str:
    """The README's configuration table, generated from the schema."""
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for item in variables():
        secret = " (secret)" if item.secret else ""
        lines.append(
            f"| `{item.name}` | {_type_text(item)}{secret} | {_default_text(item)} "
            f"| {item.meaning} |"
        )
    for name, meaning in TEST_ONLY_VARIABLES.items():
        lines.append(f"| `{name}` | text | unset | {meaning} (not read by the gateway) |")
    lines.append(
        "| `ERPGW_BENCH_*` | text | unset | benchmarks' own settings (not read by the gateway) |"
    )
    return "\n".join(lines)


def _type_text(item: Variable) -> str:
    kind = _without_none(item.type)
    check = item.options.get("check")
    minimum, maximum = item.options.get("minimum"), item.options.get("maximum")
    named = {
        _database_url: "URL",
        _api_versions: "JSON",
        _sandbox_vendors: "vendor list",
        _console_secret: "64 hex digits",
        _console_roles: "role rules",
        _pem: "PEM",
        _rate_limit_tiers: "rate list",
        _networks: "IP/CIDR list",
        _renewal_risk_rules: "JSON",
    }
    if check in named:
        return named[check]
    if check is not None:
        return "URL"
    if kind is bool:
        return "true/false"
    if kind in (int, float):
        word = "integer" if kind is int else "number"
        if item.options.get("positive"):
            return f"{word} > 0"
        if minimum is not None and maximum is not None:
            return f"{word} {minimum}..{maximum}"
        return f"{word} >= {minimum}" if minimum is not None else word
    if typing.get_origin(kind) is Literal:
        return " / ".join(f"`{choice}`" for choice in typing.get_args(kind))
    if kind is Path:
        return "path"
    if kind == tuple[str, ...]:
        return "comma list"
    if kind is datetime:
        return "RFC 3339 time"
    return "text"


def _default_text(item: Variable) -> str:
    if item.default_doc is not None:
        return item.default_doc
    value = item.default
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def export_overrides(overrides: Mapping[str, str]) -> None:
    """Hand command-line overrides (`serve --port`) to worker processes, which read their
    settings from the environment they inherit."""
    for name, value in overrides.items():
        if name not in {item.name for item in variables()}:
            raise SettingsError(f"{name}: not a setting of the gateway")
        os.environ[name] = value


METRICS_DIR_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"


def shared_metrics_dir() -> Path | None:
    """The directory worker processes keep their Prometheus series in (prometheus-client's
    own variable, set by `serve --workers N` for its workers), or None in a single process."""
    value = os.environ.get(METRICS_DIR_VARIABLE)
    return Path(value) if value else None


def export_shared_metrics_dir(directory: Path) -> None:
    """Hand the shared metrics directory to the worker processes `serve` is about to start."""
    os.environ[METRICS_DIR_VARIABLE] = str(directory)


# --- helpers ---------------------------------------------------------------------------------


def _version_entry(item: object) -> ApiVersionEntry:
    if not isinstance(item, dict):
        raise ValueError(f"entry {item!r} is not an object")
    for key in ("api", "major", "status", "deprecated_at", "sunset_at", "successor"):
        required = key in ("api", "major")
        if (required or item.get(key) is not None) and not isinstance(item.get(key), str):
            raise ValueError(f"{key} must be a string, got {item.get(key)!r}")

    def when(key: str) -> datetime | None:
        value = item.get(key)
        if value is None:
            return None
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    status = item.get("status", "current")
    if status not in ("current", "deprecated"):
        raise ValueError(f"status must be current or deprecated, got {status!r}")
    return ApiVersionEntry(
        api=item["api"].strip("/"),
        major=item["major"],
        status=status,
        deprecated_at=when("deprecated_at"),
        sunset_at=when("sunset_at"),
        successor=item.get("successor"),
    )


def _split(name: str, raw: str) -> SplitResult:
    try:
        return urlsplit(raw)
    except ValueError:
        raise SettingsError(f"{name}: {redact_url(raw)!r} is not a valid URL") from None


def redact_url(url: str) -> str:
    """Hide a password in a URL before it is printed (also in URLs that do not parse)."""
    return _URL_PASSWORD.sub(r"\1:***@", url)


def _main(argv: Sequence[str]) -> int:
    if list(argv) != ["--markdown"]:
        print("usage: python -m gateway.settings --markdown", file=sys.stderr)
        return 2
    print(markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
