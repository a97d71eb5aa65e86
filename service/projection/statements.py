"""The projection's shared SQL: transaction-scoped advisory locks, bounded IN lists, inserts that skip rows
already there, and a page condition both databases can answer from their indexes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Connection, and_, bindparam, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")


CHUNK = 500  # values per IN list / bulk statement


PageKey = tuple[int, str]

# Which sites a query covers: one, these (a site-scoped key's: docs/security.md), or every site (None).
SiteIds = int | tuple[int, ...] | None


def of_sites(column: Any, sites: SiteIds) -> list[Any]:
    """The condition that keeps ``column`` (a site id) to ``sites``: none for every site; an empty tuple
    keeps nothing."""
    if sites is None:
        return []
    if isinstance(sites, int):
        return [column == sites]
    if len(sites) == 1:
        return [column == sites[0]]
    return [column.in_(sites)]


def clip(value: str | None, column_type: Any) -> str | None:
    # Column widths bound what one hash may put in a row; a value past them is cut, not a failed write.
    length = getattr(column_type, "length", None)
    return value[:length] if value is not None and length is not None and len(value) > length else value


_EXCLUSIVE_LOCKS = "SELECT pg_advisory_xact_lock(k) FROM unnest(:keys) AS t(k)"


_SHARED_LOCKS = "SELECT pg_advisory_xact_lock_shared(k) FROM unnest(:keys) AS t(k)"


def lock(conn: Connection, names: list[str], *, shared: bool = False) -> None:
    """Transaction-scoped advisory locks, in the order given (callers sort), in one round trip."""
    if not names:
        return
    keys = [int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "big", signed=True) for n in names]
    statement = text(_SHARED_LOCKS if shared else _EXCLUSIVE_LOCKS).bindparams(
        bindparam("keys", type_=postgresql.ARRAY(BigInteger))
    )
    conn.execute(statement, {"keys": keys})


def insert_ignoring_existing(
    conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for chunk in chunks(rows):
        conn.execute(dialect_insert(table).on_conflict_do_nothing(index_elements=keys), chunk)


def on_pages(table: Any, pages: Sequence[PageKey]) -> Any:
    """Rows of these (site, page) pairs, written so both databases use the (site_id, page_id, ...) index:
    SQLite plans a row-value IN (``(a, b) IN (VALUES ...)``) on the first column only, reading every event
    of the site. Page ids are random UUIDs, so the two separate IN lists select no foreign pairs in practice,
    and the exact pair check below makes sure."""
    sites = sorted({site_id for site_id, _ in pages})
    page_ids = sorted({page_id for _, page_id in pages})
    condition = and_(table.c.site_id.in_(sites), table.c.page_id.in_(page_ids))
    if len(sites) > 1:
        condition = and_(condition, tuple_(table.c.site_id, table.c.page_id).in_(list(pages)))
    return condition


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
