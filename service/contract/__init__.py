"""The API contract as served: /openapi.json, its paths and its schemas (docs/api.md describes the same)."""
