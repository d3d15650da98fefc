"""Credit notes against open or paid invoices (`/v1/credit_notes`).

Against an open invoice a credit note is `pre_payment`: it lowers what is due (and settles the
invoice when nothing remains). Against a paid invoice it is `post_payment`: the amount is
refunded, credited to the customer's balance (the default) or recorded as paid out of band.
"""

from __future__ import annotations

from decimal import Decimal

from sandbox.stripe import invoicing
from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.pricing import to_minor
from sandbox.stripe.render import page, page_of, render, render_lines
from sandbox.stripe.store import Obj, Store

__all__ = [
    "create_credit_note",
    "credit_note_lines",
    "get_credit_note",
    "list_credit_notes",
    "void_credit_note",
]

_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


def create_credit_note(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            "amount",
            "credit_amount",
            "invoice",
            "lines",
            "memo",
            "metadata",
            "out_of_band_amount",
            "reason",
            "refund_amount",
        )
    )
    invoice = store.get("invoice", params.required_text("invoice"), param="invoice")
    if invoice["status"] not in ("open", "paid", "uncollectible"):
        raise invalid_request(
            "You can only create a credit note for an open or paid invoice.", param="invoice"
        )
    at = store.now(invoice["customer"])
    number = (
        len([c for c in store.oldest_first("credit_note") if c["invoice"] == invoice["id"]]) + 1
    )
    credit_id = store.mint("cn")
    lines = _lines(store, invoice, params)
    total = sum(int(line["amount"]) for line in lines)
    _check_amount(invoice, params, total)
    kind = "post_payment" if invoice["status"] == "paid" else "pre_payment"
    note: Obj = {
        "id": credit_id,
        "object": "credit_note",
        "amount": total,
        "amount_shipping": 0,
        "created": at,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "customer_balance_transaction": None,
        "discount_amount": 0,
        "discount_amounts": [],
        "effective_at": at,
        "invoice": invoice["id"],
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": "",
        },
        "livemode": False,
        "memo": params.text("memo") or None,
        "metadata": params.metadata({}),
        "number": f"{invoice['number']}-CN-{number:02d}",
        "out_of_band_amount": None,
        "pdf": "",
        "reason": params.choice("reason", _REASONS),
        "refund": None,
        "shipping_cost": None,
        "status": "issued",
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "tax_amounts": [],
        "total": total,
        "total_excluding_tax": total,
        "type": kind,
        "voided_at": None,
    }
    before = render(store, invoice)
    if kind == "pre_payment":
        _reduce_due(store, invoice, total, at=at)
    else:
        _settle_post_payment(store, invoice, note, params, at=at)
    store.insert(note)
    store.emit("credit_note.created", render(store, note), created=at)
    invoicing.refresh_snapshot(store, invoice, "invoice.updated", at=at, before=before)
    return render(store, note, params.texts("expand"))


def get_credit_note(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("credit_note", path["id"]), params.texts("expand"))


def list_credit_notes(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("customer", "invoice", "limit", "starting_after", "ending_before"))
    customer, invoice = params.text("customer"), params.text("invoice")
    candidates = [
        note
        for note in store.newest_first("credit_note")
        if (customer is None or note["customer"] == customer)
        and (invoice is None or note["invoice"] == invoice)
    ]
    return page(store, candidates, params, "/v1/credit_notes")


def credit_note_lines(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("limit", "starting_after", "ending_before"))
    note = store.get("credit_note", path["id"])
    return page_of(render_lines(store, note), params, f"/v1/credit_notes/{note['id']}/lines")


def void_credit_note(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    note = store.get("credit_note", path["id"])
    if note["status"] != "issued":
        raise invalid_request("This credit note is already voided.")
    invoice = store.get("invoice", note["invoice"])
    at = store.now(invoice["customer"])
    if note["type"] == "pre_payment" and invoice["status"] == "open":
        invoice["pre_payment_credit_notes_amount"] -= note["amount"]
        invoicing.recompute(invoice)
    elif note["type"] == "post_payment":
        invoice["post_payment_credit_notes_amount"] -= note["amount"]
        customer = store.get("customer", invoice["customer"])
        customer["balance"] += int(note.get("_credit_amount") or 0)
    note.update(status="void", voided_at=at)
    store.emit("credit_note.voided", render(store, note), created=at)
    return render(store, note, params.texts("expand"))


def _lines(store: Store, invoice: Obj, params: Params) -> list[Obj]:
    entries = params.hashes("lines")
    amount = params.integer("amount", minimum=1)
    if entries and amount is not None:
        total = sum(int(line["amount"]) for line in (_line(store, invoice, e) for e in entries))
        if total != amount:
            raise invalid_request(
                f"The sum of the lines ({total}) must equal `amount` ({amount}).", param="amount"
            )
    if entries:
        return [_line(store, invoice, entry) for entry in entries]
    if amount is None:
        raise invalid_request(
            "Missing required param: amount or lines.", param="amount", code="parameter_missing"
        )
    return [_custom_line(store, params.text("memo") or "Credit", 1, Decimal(amount))]


def _line(store: Store, invoice: Obj, entry: Params) -> Obj:
    entry.only(
        (
            "amount",
            "description",
            "invoice_line_item",
            "quantity",
            "type",
            "unit_amount",
            "unit_amount_decimal",
        )
    )
    kind = entry.choice("type", ("invoice_line_item", "custom_line_item"))
    if kind == "custom_line_item":
        quantity = entry.integer("quantity", minimum=1) or 1
        raw = entry.text("unit_amount_decimal") or entry.text("unit_amount")
        if raw is None:
            raise invalid_request(
                "Missing required param: unit_amount.",
                param=entry.name("unit_amount"),
                code="parameter_missing",
            )
        description = entry.required_text("description")
        return _custom_line(store, description, quantity, Decimal(raw))
    if kind is None:
        raise invalid_request(
            "Missing required param: type.", param=entry.name("type"), code="parameter_missing"
        )
    return _invoice_line(store, invoice, entry)


def _invoice_line(store: Store, invoice: Obj, entry: Params) -> Obj:
    line_id = entry.required_text("invoice_line_item")
    line = next((ln for ln in invoice["lines"]["data"] if ln["id"] == line_id), None)
    if line is None:
        raise invalid_request(
            f"No such invoice line item: '{line_id}'",
            param=entry.name("invoice_line_item"),
            code="resource_missing",
        )
    quantity = entry.integer("quantity", minimum=1)
    amount = entry.integer("amount", minimum=1)
    line_quantity = int(line["quantity"] or 1)
    if amount is None:
        share = Decimal(quantity if quantity is not None else line_quantity) / line_quantity
        amount = to_minor(Decimal(line["amount"]) * share)
    if amount > int(line["amount"]):
        raise invalid_request(
            "The credit amount for a line cannot exceed the line's amount.",
            param=entry.name("amount"),
        )
    return {
        "id": store.mint("cnli"),
        "object": "credit_note_line_item",
        "amount": amount,
        "amount_excluding_tax": amount,
        "description": entry.text("description") or line["description"],
        "discount_amount": 0,
        "discount_amounts": [],
        "invoice_line_item": line_id,
        "livemode": False,
        "quantity": quantity if quantity is not None else line_quantity,
        "tax_amounts": [],
        "tax_rates": [],
        "type": "invoice_line_item",
        "unit_amount": None,
        "unit_amount_decimal": None,
        "unit_amount_excluding_tax": None,
    }


def _custom_line(store: Store, description: str, quantity: int, unit: Decimal) -> Obj:
    amount = to_minor(unit * quantity)
    whole = unit == unit.to_integral_value()
    return {
        "id": store.mint("cnli"),
        "object": "credit_note_line_item",
        "amount": amount,
        "amount_excluding_tax": amount,
        "description": description,
        "discount_amount": 0,
        "discount_amounts": [],
        "livemode": False,
        "quantity": quantity,
        "tax_amounts": [],
        "tax_rates": [],
        "type": "custom_line_item",
        "unit_amount": int(unit) if whole else None,
        "unit_amount_decimal": format(unit.normalize(), "f"),
        "unit_amount_excluding_tax": format(unit.normalize(), "f"),
    }


def _check_amount(invoice: Obj, params: Params, total: int) -> None:
    if invoice["status"] == "paid":
        available = invoice["amount_paid"] - invoice["post_payment_credit_notes_amount"]
    else:
        available = invoice["amount_remaining"]
    if total <= 0 or total > available:
        raise invalid_request(
            f"The credit note amount ({total}) must be positive and at most the amount that can "
            f"still be credited on this invoice ({available}).",
            param="amount",
        )


def _reduce_due(store: Store, invoice: Obj, amount: int, *, at: int) -> None:
    invoice["pre_payment_credit_notes_amount"] += amount
    invoicing.recompute(invoice)
    if invoice["amount_remaining"] == 0 and invoice["status"] in ("open", "uncollectible"):
        invoicing.mark_paid_out_of_band(store, invoice, at=at)
        invoice["paid_out_of_band"] = False


def _settle_post_payment(store: Store, invoice: Obj, note: Obj, params: Params, *, at: int) -> None:
    total = int(note["amount"])
    refund = params.integer("refund_amount", minimum=0) or 0
    out_of_band = params.integer("out_of_band_amount", minimum=0) or 0
    credit = params.integer("credit_amount", minimum=0)
    credit = total - refund - out_of_band if credit is None else credit
    if refund + out_of_band + credit != total:
        raise invalid_request(
            "refund_amount + credit_amount + out_of_band_amount must equal the credit note amount.",
            param="credit_amount",
        )
    invoice["post_payment_credit_notes_amount"] += total
    if refund:
        note["refund"] = store.mint("re")
    if out_of_band:
        note["out_of_band_amount"] = out_of_band
    if credit:
        customer = store.get("customer", invoice["customer"])
        customer["balance"] -= credit
        note["customer_balance_transaction"] = store.mint("cbtxn")
        note["_credit_amount"] = credit
