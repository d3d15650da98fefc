"""Renewals: contracts that renew with their context, and the flows that book them."""
