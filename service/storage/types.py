"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), never a BIGINT one.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
