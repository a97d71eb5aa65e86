"""The API contract: /openapi.json against the routes, the answers recorded byte for byte, and the fields
of every answer held to the schemas and the docs."""
