"""The vendor sandbox: four emulators, their shared control API, demo data and credentials.

A development and test tool that production code never imports: only the gateway's sandbox
wiring (`gateway.platforms`), the CLI `emulator` command, tests and benches import it, and it
imports nothing of ours but `contracts` (import-linter contracts in `pyproject.toml`).

```
sandbox/
  control.py       the control API every emulator answers (`/_emulator/reset`,
                   `/_emulator/faults`: JSON only) and the fault injection it drives
  credentials.py   the fixed sandbox credentials each emulator accepts (plain values)
  demo_data.py     the demo company every emulator is seeded from
  <vendor>/        salesforce/, stripe/, zendesk/, netsuite/, one layout for all:
    __init__.py    exports `<Vendor>Emulator` and `create_emulator(**options)`
    emulator.py    that class: state, reset, fault rendering, the ASGI app it serves
    front.py       what every request passes first: auth check, the vendor's rate or
                   concurrency limit, request ids
    auth.py        the vendor's token endpoint or credential check (where it has one)
    store.py       the records held in memory and the write rules the vendor applies
    errors.py      the vendor's error bodies and the exception the routes raise
    render.py      records rendered as the vendor's JSON (where rendering is apart)
    routes*.py     the HTTP endpoints (`routes_<area>.py` when there are several)
    seed.py        the demo data loaded on reset, with deterministic ids
    webhooks.py    webhook endpoints (loopback URLs only) and signed deliveries
    ids.py         the vendor's id format (where it has one)
    ...            further modules named for the vendor concept they model (Salesforce
                   `soql.py`, NetSuite `suiteql.py`, Stripe `invoicing.py`, Zendesk `tickets.py`)
```

Responses are plain JSON shaped like each vendor's documentation, never built from the
production vendor package's wire Structs, so a wrong Struct is not mirrored here; a vendor fact
needed on both sides of the wire (a webhook signature scheme) is implemented on each side.
"""
