"""Projection: sessions and actions derived from stored events, the queue, rollups."""
