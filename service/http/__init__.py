"""HTTP endpoints. The only layer that knows status codes."""
