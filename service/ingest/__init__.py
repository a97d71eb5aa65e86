"""Ingestion: POST /v1/events, its CORS and rate limits, the wire protocol, and the event writer."""
