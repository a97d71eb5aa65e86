"""Projection: stored events turned into sessions, actions and rollups, after their commit."""
