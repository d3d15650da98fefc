"""Reconciliation: deals, invoices, payments, credits and customers compared across the CRM,
billing and the ERP (a durable flow, scheduled and on demand), each mismatch an owned
exception, and repairs where a machine can fix the books."""
