"""Webhook intake: signed vendor events, deduplicated by event id, versioned, dispatched."""
