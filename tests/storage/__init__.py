"""Migrations and the schema."""
