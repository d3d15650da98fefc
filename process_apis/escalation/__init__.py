"""Support escalations: escalation credits and service-credit approvals."""
