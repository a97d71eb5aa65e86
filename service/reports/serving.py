"""How every report is served: the key checked, acknowledged events projected first, the site filter
and the window read, database work in the thread pool (a busy database is a 503), exports streamed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from service.admin.registry import site_id_of
from service.contract.queries import DEFAULT_REPORT_DAYS
from service.formats import Format, chunks
from service.http.auth import authenticated, busy, request_key
from service.http.errors import ApiError
from service.http.state import AppState, app_state
from service.projection.statements import SiteIds
from service.reports.freshness import wait_for_projection
from service.reports.params import Params, encode_cursor, time_range
from service.reports.records import PHONE_FIELDS

T = TypeVar("T")
log = logging.getLogger("calltrail.http")
LIST_FORMATS = ("json", "csv", "ndjson")
EXPORT_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking database work off the event loop; a database that is down or locked (a long `calltrail
    rebuild` holds SQLite's write lock; a report may need to write its rollups) is a 503, not a crash."""
    try:
        return await run_in_threadpool(function, *args)
    except OperationalError:
        log.warning("query failed: the database is unreachable or locked", exc_info=True)
        raise busy() from None


async def reader(request: Request) -> AppState:
    """The caller's key checked (http/auth.py); then, before anything is read, every event already
    acknowledged projected (reports/freshness.py)."""
    state = app_state(request)
    await authenticated(request, state)
    try:
        await wait_for_projection(request, state)
    except OperationalError:
        log.warning("waiting for the projection failed: the database is unreachable or locked", exc_info=True)
        raise busy() from None
    return state


def allowed_sites(request: Request) -> tuple[int, ...] | None:
    """The sites the request's key may see (sorted), or None for every site."""
    key = request_key(request)
    assert key is not None, "reader() checks the key first"
    return None if key.site_ids is None else tuple(sorted(key.site_ids))


def site_filter(request: Request, params: Params) -> Callable[[], SiteIds]:
    """The sites a report covers, resolved later (in a worker thread): the key's sites (every site for an
    unscoped key), narrowed by ``site``. An unknown name is a 400 for an unscoped key; for a scoped key any
    site not its own is a 403, whether it exists or not, so that it learns nothing of other sites."""
    state = app_state(request)
    name = params.text("site", 200)
    allowed = allowed_sites(request)

    def resolve() -> SiteIds:
        if name is None:
            return allowed
        with state.read_engine.connect() as conn:
            found = site_id_of(conn, name)
        if allowed is not None and found not in allowed:
            raise ApiError(
                403,
                "forbidden",
                f"this key cannot read the site {name!r}",
                [{"field": "site", "message": "not a site of this key"}],
            )
        if found is None:
            raise ApiError(
                400,
                "invalid_parameter",
                f"no site is named {name!r}",
                [{"field": "site", "message": "no such site"}],
            )
        return (found,)

    return resolve


async def report_request(request: Request) -> tuple[AppState, Params, int, int, Callable[[], SiteIds]]:
    """What every report reads first: the key, the window (the last 7 days unless given) and the site."""
    state = await reader(request)
    params = Params(request.query_params)
    start, end = time_range(params, required_default_days=DEFAULT_REPORT_DAYS)
    assert start is not None and end is not None
    return state, params, start, end, site_filter(request, params)


def list_format(params: Params) -> str:
    return params.choice("format", LIST_FORMATS, "json") or "json"


def export(
    records: Callable[[], Iterator[dict[str, Any]]],
    fields: tuple[str, ...],
    fmt: str,
    name: str,
    phone_fields: Collection[str] = PHONE_FIELDS,
) -> Response:
    """Streams every row in constant memory; the generator runs in Starlette's thread pool."""
    return StreamingResponse(
        chunks(records(), fields, cast(Format, fmt), phone_fields),
        media_type=EXPORT_MEDIA_TYPES[fmt],
        headers={"content-disposition": f'attachment; filename="{name}.{fmt}"'},
    )


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def keyset_page(
    rows: Iterable[tuple[dict[str, Any], Sequence[Any]]], limit: int, name: str
) -> dict[str, Any]:
    """A page's answer from a query asked for ``limit + 1`` rows: the first ``limit``, and the cursor after
    the last of them when there was one more."""
    found = list(rows)
    more = len(found) > limit
    found = found[:limit]
    return {
        name: [record for record, _ in found],
        "next_cursor": encode_cursor(found[-1][1]) if more else None,
    }
