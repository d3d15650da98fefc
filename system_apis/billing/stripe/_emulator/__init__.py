"""The Stripe sandbox internals: state, endpoints and the machinery in front of them."""
