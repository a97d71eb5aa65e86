"""GET /v1/audit: the agents' actions oldest first, by keyset pages (time, site, id), or all of them as
CSV or NDJSON."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, select, tuple_
from starlette.requests import Request
from starlette.responses import Response

from service.admin.registry import site_names
from service.contract.queries import AuditQuery
from service.http.audit import note_rows
from service.http.responses import JSONResponse
from service.projection.statements import SiteIds, of_sites
from service.reports.params import Params, time_range
from service.reports.records import ACTION_FIELDS, action_record
from service.reports.serving import export, in_thread, keyset_page, reader, site_filter
from service.storage.schema import actions


async def audit_trail(request: Request) -> Response:
    state = await reader(request)
    params = Params(request.query_params)
    start, end = time_range(params, required_default_days=None)
    resolve_site = site_filter(request, params)
    query = params.read(AuditQuery)
    params.done()
    agent, action, limit, fmt = query.agent, query.action, query.limit, query.format
    after = None if query.cursor is None else (query.cursor[0], query.cursor[1], query.cursor[2])

    def where() -> AuditFilter:
        return AuditFilter(start, end, resolve_site(), agent, action)

    if fmt != "json":
        filters = await in_thread(where)

        def records() -> Iterator[dict[str, Any]]:
            with state.read_engine.connect() as conn:
                for record, _ in audit_page(conn, filters, after=after, limit=None):
                    yield record

        return export(records, ACTION_FIELDS, fmt, "audit")

    def page() -> dict[str, Any]:
        filters = where()
        with state.read_engine.connect() as conn:
            return keyset_page(audit_page(conn, filters, after=after, limit=limit + 1), limit, "actions")

    found = await in_thread(page)
    note_rows(request, len(found["actions"]))
    return JSONResponse(found)


@dataclass(frozen=True)
class AuditFilter:
    start_ms: int | None = None
    end_ms: int | None = None
    site_id: SiteIds = None
    agent: str | None = None
    action: str | None = None


def audit_page(
    conn: Connection, where: AuditFilter, *, after: tuple[int, int, str] | None, limit: int | None
) -> Iterator[tuple[dict[str, Any], tuple[int, int, str]]]:
    """Agent actions oldest first, each with its cursor (time, site, id)."""
    names = site_names(conn)
    query = select(actions)
    conditions: list[ColumnElement[bool]] = []
    if where.start_ms is not None:
        conditions.append(actions.c.at >= where.start_ms)
    if where.end_ms is not None:
        conditions.append(actions.c.at < where.end_ms)
    conditions.extend(of_sites(actions.c.site_id, where.site_id))
    if where.agent is not None:
        conditions.append(actions.c.agent_email == where.agent)
    if where.action is not None:
        conditions.append(actions.c.action == where.action)
    if after is not None:
        conditions.append(tuple_(actions.c.at, actions.c.site_id, actions.c.id) > tuple_(*after))
    query = query.where(*conditions).order_by(actions.c.at, actions.c.site_id, actions.c.id)
    if limit is not None:
        query = query.limit(limit)
    for row in conn.execution_options(yield_per=1000).execute(query).mappings():
        yield action_record(row, names.get(row["site_id"], "")), (row["at"], row["site_id"], row["id"])
