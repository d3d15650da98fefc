"""Subscription amendments: a changed subscription reaches billing, the ERP and the CRM."""
