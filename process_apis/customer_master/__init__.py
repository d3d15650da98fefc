"""Customer master: one customer per CRM account in billing, the ERP and support."""
