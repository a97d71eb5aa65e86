"""Persistence: engines, tables, the event writer and the queries. Knows nothing of HTTP."""
