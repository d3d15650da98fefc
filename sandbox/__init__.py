"""The vendor sandbox: four emulators, their shared control API, demo data and credentials.

A development and test tool that production code never imports: only the gateway's sandbox
wiring (`gateway.platforms`), the CLI `emulator` command, tests and benches import it, and it
imports nothing of ours but `contracts` (import-linter contracts in `pyproject.toml`).

```
sandbox/
  control.py       the control API every emulator answers (`/_emulator/reset`,
                   `/_emulator/faults`: JSON writes only) and the fault injection it drives
  credentials.py   the fixed sandbox credentials each emulator accepts (plain values)
  demo_data.py     the demo company every emulator is seeded from
  loopback.py      the rule for webhook URLs: loopback hosts only
  <vendor>/        salesforce/, stripe/, zendesk/, netsuite/, one layout for all:
    __init__.py    exports `<Vendor>Emulator` and `create_emulator(**options)`
    emulator.py    that class: state, reset, fault rendering, and `vendor`, the ASGI app
                   to serve or mount
    front.py       what every request passes before its route: credential check, the
                   vendor's rate or concurrency limit, request ids, idempotency
    routes*.py     the HTTP endpoints (`routes_<area>.py` when there are several)
    store.py       the records held in memory and the write rules the vendor applies
    seed.py        the demo company loaded on reset, under deterministic ids
    errors.py      the vendor's error bodies and the exception the routes raise
    render.py      records rendered as the vendor's JSON (Salesforce: in query.py)
    auth.py        a token endpoint, where the vendor has one (Salesforce, NetSuite)
    webhooks.py    webhook endpoints and signed deliveries, where the vendor sends them
                   (Stripe, Zendesk)
    context.py     what a route knows of the request it serves (Salesforce, Stripe, Zendesk)
    ...            further modules named for the vendor concept they model: ids.py,
                   Salesforce soql.py/query.py/schema.py, NetSuite suiteql.py/records.py,
                   Stripe invoicing.py/cycle.py/app.py (its Litestar app), Zendesk tickets.py
```

Responses are plain JSON shaped like each vendor's documentation, never built from the
production vendor package's wire Structs, so a wrong Struct is not mirrored here; a vendor fact
needed on both sides of the wire (a webhook signature scheme) is implemented on each side.
"""
