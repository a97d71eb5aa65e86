"""Ingestion: the endpoint, the wire protocol, the writers, backpressure and rate limits."""
