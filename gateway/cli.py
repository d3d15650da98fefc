"""`erp-gateway`: serve the gateway, show and check its configuration, migrate its database,
manage clients and signing keys (each change audited), verify the audit trail, run a vendor
emulator alone, and compare contract versions."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts.audit import AuditEvent, gateway_target, system_actor
from contracts.errors import GatewayError
from contracts.scopes import SCOPES, TIERS
from gateway import storage
from gateway.audit import AuditLog
from gateway.clients import ClientRegistry
from gateway.keys import KeyStore
from gateway.logging import configure_logging
from gateway.settings import (
    Settings,
    SettingsError,
    effective_settings,
    export_overrides,
    load_settings,
    markdown_table,
)

__all__ = ["main"]

DEMO_CLIENT_FILE = "demo-client.json"
# uvloop wherever it installs (not Windows): it cut the CPU a webhook delivery costs the
# gateway from about 650 to 450 us, lifting intake from about 1,400 to 2,000 events/s on two
# cores (bench/webhooks.py).
EVENT_LOOP = "asyncio" if sys.platform == "win32" else "uvloop"
VENDORS = ("salesforce", "stripe", "zendesk", "netsuite")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except SettingsError as exc:
        print(f"erp-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"erp-gateway: {exc.message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="erp-gateway", description=__doc__)
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="serve the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--server", choices=("granian", "uvicorn"), default="granian")
    serve.set_defaults(run=_serve)

    config = commands.add_parser("config", help="print the effective settings (secrets redacted)")
    config.add_argument(
        "--markdown", action="store_true", help="print the README's table of every variable"
    )
    config.set_defaults(run=_config)
    doctor = commands.add_parser(
        "doctor", help="check the database, Redis, signing keys, vendors and webhook secrets"
    )
    doctor.set_defaults(run=_doctor)

    db = commands.add_parser("db", help="database schema").add_subparsers(title="db commands")
    db.add_parser("upgrade", help="apply the migrations").set_defaults(run=_db_upgrade)

    clients = commands.add_parser("clients", help="API clients").add_subparsers(
        title="clients commands"
    )
    create = clients.add_parser("create", help="create a client (its secret is shown once)")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scopes", required=True, help=f"space-separated, of: {' '.join(sorted(SCOPES))}"
    )
    create.add_argument("--entities", help="comma-separated legal entities (default: all)")
    create.add_argument("--customer", help="bind a portal client to one customer")
    create.add_argument("--tier", choices=TIERS, default="bronze")
    create.add_argument("--json", action="store_true", help="print only JSON on stdout")
    create.set_defaults(run=_clients_create)
    listing = clients.add_parser("list", help="list clients")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_clients_list)
    revoke = clients.add_parser("revoke", help="revoke a client")
    revoke.add_argument("client_id")
    revoke.set_defaults(run=_clients_revoke)

    keys = commands.add_parser("keys", help="token signing keys").add_subparsers(
        title="keys commands"
    )
    keys.add_parser("rotate", help="make a new signing key current").set_defaults(run=_keys_rotate)

    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(
        title="audit commands"
    )
    audit.add_parser(
        "verify", help="check the hash chain; exits 1 naming the first bad record"
    ).set_defaults(run=_audit_verify)

    emulator = commands.add_parser("emulator", help="serve one vendor emulator alone")
    emulator.add_argument("vendor", choices=VENDORS)
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, required=True)
    emulator.add_argument(
        "--no-limits", action="store_true", help="turn off the vendor's own rate limits"
    )
    emulator.set_defaults(run=_emulator)

    contracts = commands.add_parser("contracts", help="canonical contracts").add_subparsers(
        title="contracts commands"
    )
    diff = contracts.add_parser(
        "diff", help="every change between two contract versions, breaking or compatible"
    )
    diff.add_argument("old")
    diff.add_argument("new")
    diff.add_argument("--json", action="store_true", help="as JSON")
    diff.set_defaults(run=_contracts_diff)
    check = contracts.add_parser(
        "check",
        help="fail on a breaking change of the published OpenAPI (per major snapshot)",
        description="Compare the OpenAPI document this code publishes with the committed "
        "snapshots (contracts/published/openapi.<api>.<major>.json) and name every breaking "
        "change by file and JSON pointer; additions pass. --update rewrites the snapshots.",
    )
    check.add_argument("--update", action="store_true", help="rewrite the snapshots")
    check.add_argument("--snapshots", type=Path, help="snapshot folder (default: the committed)")
    check.add_argument("--json", action="store_true", help="as JSON")
    check.set_defaults(run=_contracts_check)

    kit = commands.add_parser(
        "contract-test",
        help="hold a running gateway to its OpenAPI (schemathesis, every check)",
        description="Hold a running gateway to its OpenAPI with schemathesis and every check. "
        "A live gateway gets GET and HEAD only; a sandbox one also the unsafe operations, on "
        "business state the kit seeds through the API (unless --read-only).",
    )
    kit.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    kit.add_argument("--client-id", required=True)
    kit.add_argument("--client-secret", required=True)
    kit.add_argument("--read-only", action="store_true", help="GET and HEAD only")
    kit.add_argument("--junit-xml", type=Path, help="write a JUnit XML report here")
    kit.add_argument("--max-examples", type=int, default=20, help="cases per operation")
    kit.set_defaults(run=_contract_test)
    return parser


def _contract_test(args: argparse.Namespace) -> int:
    from gateway.partner_kit import run_contract_test

    done = run_contract_test(
        args.base_url,
        client_id=args.client_id,
        client_secret=args.client_secret,
        read_only=args.read_only,
        junit_xml=args.junit_xml,
        max_examples=args.max_examples,
    )
    writes = "GET and HEAD only" if done.read_only else "unsafe operations on its own records"
    print(f"contract-test: {done.mode} gateway, {writes}; exit {done.exit_code}", file=sys.stderr)
    return done.exit_code


def _settings(overrides: dict[str, str] | None = None) -> Settings:
    settings = load_settings(overrides=overrides)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    return settings


def _db_upgrade(_args: argparse.Namespace) -> int:
    settings = _settings()
    storage.upgrade(settings.database_url)
    # The durable engine's tables too: a database re-created empty serves again at once.
    # Imported here: DBOS takes a while to import and no other command needs it.
    from process_apis.engine.flow_engine import migrate_engine_storage

    migrate_engine_storage(settings.database_url)
    print("database schema is up to date", file=sys.stderr)
    return 0


def _registry_call(settings: Settings, call: Any) -> Any:
    async def run() -> Any:
        engine = storage.create_engine(settings.database_url)
        try:
            return await call(ClientRegistry(engine))
        finally:
            await engine.dispose()

    storage.upgrade(settings.database_url)
    return asyncio.run(run())


def _audit_call(settings: Settings, call: Any) -> Any:
    """`call(audit_log)` on the configured database (migrated first)."""

    async def run() -> Any:
        engine = storage.create_engine(settings.database_url)
        try:
            return await call(AuditLog(engine))
        finally:
            await engine.dispose()

    storage.upgrade(settings.database_url)
    return asyncio.run(run())


def _record(settings: Settings, event: AuditEvent) -> None:
    _audit_call(settings, lambda audit: audit.record(event))


def _cli_actor() -> Any:
    """Who ran the command, as far as the machine knows: its user at its host."""
    return system_actor(f"cli:{getpass.getuser()}@{socket.gethostname()}")


def _clients_create(args: argparse.Namespace) -> int:
    settings = _settings()
    entities = args.entities.split(",") if args.entities is not None else None
    created = _registry_call(
        settings,
        lambda registry: registry.create(
            name=args.name,
            scopes=args.scopes.split(),
            tier=args.tier,
            entities=entities,
            customer=args.customer,
        ),
    )
    _record(
        settings,
        AuditEvent(
            action="client.create",
            actor=_cli_actor(),
            target=gateway_target(created.client.client_id),
            after=_client_json(created.client),
        ),
    )
    payload = _client_json(created.client) | {"client_secret": created.client_secret}
    if args.json:
        print(json.dumps(payload))
    else:
        print(f"client_id:     {created.client.client_id}")
        print(f"client_secret: {created.client_secret}   (shown once: store it now)")
        print(f"scopes:        {' '.join(sorted(created.client.scopes))}")
        print(f"tier:          {created.client.tier}")
    return 0


def _clients_list(args: argparse.Namespace) -> int:
    settings = _settings()
    listed = _registry_call(settings, lambda registry: registry.list())
    rows = [_client_json(client) for client in listed]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        state = "revoked" if row["revoked_at"] else "active"
        scopes = " ".join(row["scopes"])
        print(f"{row['client_id']}  {state:8} {row['tier']:7} {row['name']}  [{scopes}]")
    return 0


def _clients_revoke(args: argparse.Namespace) -> int:
    settings = _settings()
    _registry_call(settings, lambda registry: registry.revoke(args.client_id))
    _record(
        settings,
        AuditEvent(
            action="client.revoke", actor=_cli_actor(), target=gateway_target(args.client_id)
        ),
    )
    print(f"revoked {args.client_id}; its tokens stop working within a minute", file=sys.stderr)
    return 0


def _client_json(client: Any) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "scopes": sorted(client.scopes),
        "tier": client.tier,
        "entities": sorted(client.entities) if client.entities is not None else None,
        "customer": client.customer,
        "created_at": client.created_at.isoformat(),
        "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None,
    }


def _keys_rotate(_args: argparse.Namespace) -> int:
    settings = _settings()
    kid = KeyStore(settings.signing_keys_dir).rotate()
    _record(
        settings,
        AuditEvent(action="keys.rotate", actor=_cli_actor(), target=gateway_target(kid)),
    )
    print(f"new signing key {kid} is current; the previous key stays published", file=sys.stderr)
    return 0


def _audit_verify(_args: argparse.Namespace) -> int:
    report = _audit_call(_settings(), lambda audit: audit.verify())
    if not report.intact:
        print(f"audit chain broken at record {report.first_bad}: {report.problem}", file=sys.stderr)
        return 1
    print(f"audit chain intact: {report.checked} records checked", file=sys.stderr)
    return 0


def _contracts_diff(args: argparse.Namespace) -> int:
    """List every change from one version to the other; a listing, not a gate (exit 0)."""
    import msgspec

    from contracts.compat import changes_between_versions

    changes = changes_between_versions(args.old, args.new)
    breaking = sum(change.breaking for change in changes)
    if args.json:
        report = {
            "old": args.old,
            "new": args.new,
            "breaking": breaking,
            "compatible": len(changes) - breaking,
            "changes": msgspec.to_builtins(changes),
        }
        print(json.dumps(report, indent=2))
        return 0
    for change in changes:
        kind = "BREAKING  " if change.breaking else "compatible"
        print(f"{kind}  {change.contract}: {change.path}: {change.change}")
    print(
        f"{args.old} -> {args.new}: {breaking} breaking, {len(changes) - breaking} compatible",
        file=sys.stderr,
    )
    return 0


def _contracts_check(args: argparse.Namespace) -> int:
    import msgspec

    from gateway.published import SNAPSHOTS, check_published, write_snapshots

    directory = args.snapshots or SNAPSHOTS
    if args.update:
        for path in write_snapshots(directory):
            print(f"wrote {path}")
        return 0
    report = check_published(directory)
    if args.json:
        print(json.dumps(msgspec.to_builtins(report), indent=2))
    else:
        for name, found in report.breaking.items():
            for change in found:
                print(f"BREAKING {name}#{change.pointer}: {change.change}")
        for name in report.changed + report.missing:
            print(f"compatible change in {name} (refresh: erp-gateway contracts check --update)")
    breaking = sum(len(found) for found in report.breaking.values())
    print(f"contracts check: {breaking} breaking change(s)", file=sys.stderr)
    return 1 if breaking else 0


def _emulator(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.sandbox_wiring import emulator_app

    configure_logging()
    app = emulator_app(args.vendor, limits=not args.no_limits)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _config(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown_table())
        return 0
    settings = load_settings()
    rows = effective_settings(settings)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def _doctor(_args: argparse.Namespace) -> int:
    from gateway.doctor import run_checks

    settings = _settings()
    checks = asyncio.run(run_checks(settings))
    for check in checks:
        print(check.line(), flush=True)
    return 0 if all(check.ok for check in checks) else 1


def _share_metrics(default_dir: Path) -> None:
    """Workers keep their Prometheus series in one directory (prometheus-client's
    multiprocess mode), so a scrape of any worker answers all of them; emptied first."""
    from gateway.metrics import prepare_multiprocess_dir
    from gateway.settings import export_shared_metrics_dir, shared_metrics_dir

    directory = shared_metrics_dir() or default_dir
    prepare_multiprocess_dir(directory)
    export_shared_metrics_dir(directory)


def _serve(args: argparse.Namespace) -> int:
    from gateway.modes import check_mode

    overrides = {
        name: str(value)
        for name, value in (("ERPGW_HOST", args.host), ("ERPGW_PORT", args.port))
        if value
    }
    settings = _settings(overrides)
    check_mode(settings)
    # The workers read their settings from the environment they inherit.
    export_overrides(overrides)
    if args.workers > 1:
        _share_metrics(settings.var_dir / "metrics")
    storage.upgrade(settings.database_url)
    KeyStore(settings.signing_keys_dir).ensure()
    demo = _ensure_demo_client(settings) if settings.sandbox.enabled else None
    _print_banner(settings, demo)
    if args.server == "uvicorn":
        import uvicorn

        # One uvicorn worker serves in this process; several run as children to watch us.
        # uvicorn has no header-read timeout (granian has, see below): a client may hold a
        # connection open by trickling headers, so uvicorn is the fallback, not the default.
        factory = (
            "gateway.workers:worker_app"
            if args.workers > 1
            else ("gateway.app:create_app_from_env")
        )
        uvicorn.run(
            factory,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=args.workers,
            log_level="warning",
            loop=EVENT_LOOP,
        )
        return 0
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings

    Granian(
        "gateway.workers:worker_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        loop=Loops(EVENT_LOOP),
        workers=args.workers,
        log_level="warning",  # type: ignore[arg-type]
        backlog=2048,
        # Headers get the time a body gets (the app bounds body reads itself, gateway/edge.py).
        http1_settings=HTTP1Settings(
            header_read_timeout=round(settings.body_read_timeout_seconds * 1000)
        ),
    ).serve()
    return 0


def _ensure_demo_client(settings: Settings) -> dict[str, Any]:
    """The demo client holding every scope, created on first run and kept under var/."""
    path = settings.var_dir / DEMO_CLIENT_FILE
    stored = json.loads(path.read_text()) if path.exists() else None

    async def ensure(registry: ClientRegistry) -> dict[str, Any]:
        if stored is not None:
            existing = await registry.get(stored["client_id"])
            if existing is not None and existing.active:
                return dict(stored)
        created = await registry.create(name="demo", scopes=SCOPES, tier="gold")
        return _client_json(created.client) | {"client_secret": created.client_secret}

    demo: dict[str, Any] = _registry_call(settings, ensure)
    if demo != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, json.dumps(demo, indent=2))
    return demo


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _print_banner(settings: Settings, demo: dict[str, Any] | None) -> None:
    base = settings.base_url
    lines = [
        "",
        f"erp-gateway on {base}",
        f"  docs            {base}/docs   (OpenAPI: {base}/docs/openapi.json)",
        f"  ops console     {base}/ops",
        f"  contracts       {base}/contracts",
        f"  health          {base}/health/ready   metrics {base}/metrics",
    ]
    if demo is not None:
        lines += [
            "",
            f"demo client (every scope; stored in {settings.var_dir / DEMO_CLIENT_FILE}):",
            f"  client_id      {demo['client_id']}",
            f"  client_secret  {demo['client_secret']}",
            f"  get a token:   curl -s -u {demo['client_id']}:{demo['client_secret']} "
            f"-d grant_type=client_credentials {base}/oauth/token",
        ]
    from gateway.platforms import sandbox_banner

    lines += ["", *sandbox_banner(settings)]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
