"""Usage-based billing: usage intake, pushes to billing, and usage per period."""
