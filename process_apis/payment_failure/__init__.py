"""Payment failure: a failed invoice payment flagged in the ERP and CRM, and cleared when paid."""
