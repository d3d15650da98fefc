"""One valid instance of each main v1 contract, shared by the contract tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec

from contracts import v1

__all__ = ["SAMPLES"]

_AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
_ADDRESS = v1.Address(
    line1="100 Market St", city="San Francisco", region="CA", postal_code="94105", country="US"
)

SAMPLES: dict[str, msgspec.Struct] = {
    "Money": v1.Money(amount=1250, currency="USD"),
    "Address": _ADDRESS,
    "LegalEntity": v1.LegalEntity(
        id="le_us01", code="US01", name="Northwind Cloud Inc.", country="US", currency="USD",
        refs={"netsuite": "1"},
    ),
    "Customer": v1.Customer(
        id="cus_acme", legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD",
        country="US", billing_address=_ADDRESS, tax_id="US-94-1234567", email="ap@acme.test",
        payment_terms_days=30, payment_status="current", risk_level="low", updated_at=_AT,
        refs={"salesforce": "001000000000001AAA", "netsuite": "42", "stripe": "cus_X"},
    ),
    "Contact": v1.Contact(
        id="con_ada", customer_id="cus_acme", first_name="Ada", last_name="Reyes",
        email="ada@acme.test", title="CFO", refs={"salesforce": "003000000000001AAA"},
    ),
    "Product": v1.Product(
        id="prd_seat", code="SEAT", name="User Seat", billing_interval="month",
        refs={"stripe": "prod_1", "netsuite": "103"},
    ),
    "Price": v1.Price(
        id="pri_seat_usd", product_id="prd_seat", currency="USD", billing_scheme="tiered",
        tiers=[
            v1.PriceTier(up_to=10, unit_amount=2_500),
            v1.PriceTier(up_to=None, unit_amount=2_000, flat_amount=1_000),
        ],
        tiers_mode="graduated", recurring_interval="month", refs={"stripe": "price_1"},
    ),
    "Deal": v1.Deal(
        id="deal_1", customer_id="cus_acme", name="Acme - Platform rollout", stage="Closed Won",
        won=True, closed=True, close_date=date(2026, 11, 2), currency="USD", amount=100_000,
        lines=[
            v1.DealLine(
                id="dl_1", product_code="SEAT", quantity=20, unit_amount=2_500,
                total_amount=50_000, refs={"salesforce": "00k000000000001AAA"},
            )
        ],
        legal_entity="US01", integration_status="synced", erp_order_number="SO-1042",
        refs={"salesforce": "006000000000001AAA"},
    ),
    "Contract": v1.Contract(
        id="ctr_1", customer_id="cus_acme", status="activated", start_date=date(2026, 11, 1),
        end_date=date(2027, 10, 31), term_months=12, currency="USD",
        lines=[v1.ContractLine(id="cl_1", product_code="SEAT", quantity=20, unit_amount=2_500)],
    ),
    "Subscription": v1.Subscription(
        id="sub_1", customer_id="cus_acme", status="active", currency="USD",
        current_period_start=_AT, current_period_end=datetime(2026, 12, 2, tzinfo=UTC),
        collection_method="send_invoice", days_until_due=30,
        items=[v1.SubscriptionItem(id="si_1", price_id="pri_seat_usd", quantity=20)],
        refs={"stripe": "sub_1"},
    ),
    "Invoice": v1.Invoice(
        id="inv_1", customer_id="cus_acme", subscription_id="sub_1", number="INV-0001",
        status="open", currency="USD",
        lines=[
            v1.InvoiceLine(
                id="il_1", description="User Seat", quantity=20, unit_amount=2_500,
                amount=50_000, tax_rate_bps=825, period_start=_AT,
            )
        ],
        subtotal=50_000, tax=4_125, total=54_125, amount_due=54_125, amount_remaining=54_125,
        due_date=date(2026, 12, 2), issued_at=_AT, legal_entity="US01",
        refs={"stripe": "in_1", "netsuite": "77"},
    ),
    "Payment": v1.Payment(
        id="pay_1", invoice_id="inv_1", customer_id="cus_acme", amount=54_125, currency="USD",
        status="succeeded", received_at=_AT, method="card", legal_entity="US01",
    ),
    "CreditNote": v1.CreditNote(
        id="cn_1", invoice_id="inv_1", customer_id="cus_acme", currency="USD", amount=2_500,
        reason="service_credit", lines=[v1.CreditNoteLine(id="cnl_1", amount=2_500)],
    ),
    "SupportCase": v1.SupportCase(
        id="case_1", customer_id="cus_acme", organization_id="361", subject="Login fails",
        priority="urgent", status="open", created_at=_AT, refs={"zendesk": "35436"},
    ),
    "Entitlement": v1.Entitlement(
        id="ent_1", customer_id="cus_acme", plan="enterprise", sla_first_response_minutes=60,
        credit_percent_per_breach=5, credit_cap_percent=20,
    ),
    "SalesOrder": v1.SalesOrder(
        id="so_1", number="SO-1042", customer_id="cus_acme", legal_entity="US01",
        currency="USD", status="pending_fulfillment", order_date=date(2026, 11, 2),
        lines=[
            v1.SalesOrderLine(
                item_id="103", product_code="SEAT", quantity=20, unit_amount=2_500,
                amount=50_000,
            )
        ],
        total=50_000, external_id="q2c:deal_1:create_order", refs={"netsuite": "501"},
    ),
    "CreditMemo": v1.CreditMemo(
        id="cm_1", number="CM-7", customer_id="cus_acme", invoice_id="inv_1",
        legal_entity="US01", currency="USD", amount=2_500,
    ),
    "JournalEntry": v1.JournalEntry(
        id="je_1", legal_entity="DE01", currency="EUR", date=date(2026, 11, 30),
        lines=[
            v1.JournalLine(account="4000", credit=10_000),
            v1.JournalLine(account="1200", debit=10_000),
        ],
    ),
    "ApprovalTask": v1.ApprovalTask(
        id="apr_1", kind="credit_memo", subject="Credit 25.00 USD to Acme", amount=2_500,
        currency="USD", requested_at=_AT, legal_entity="US01",
    ),
    "CustomerPatch": v1.CustomerPatch(phone="+1 555 0100", risk_level="high"),
    "EventEnvelope": v1.EventEnvelope(
        specversion="1.0", id="evt_1", source="/process/v1/flows", type="invoice.paid",
        time=_AT, correlationid="c0ffee", data={"invoice_id": "inv_1"},
    ),
    "Problem": v1.Problem(
        type="https://erp-gateway.dev/problems/validation", title="Invalid request",
        status=422, errors=[v1.ProblemFieldError(pointer="/email", detail="not an email")],
        correlation_id="c0ffee",
    ),
}
