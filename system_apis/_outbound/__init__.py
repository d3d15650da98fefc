"""The outbound HTTP policy's implementation modules; import from `system_apis.http` instead."""
