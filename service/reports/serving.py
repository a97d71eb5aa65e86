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

from service.admin.registry import authenticate_key, site_id_of
from service.contract.queries import DEFAULT_REPORT_DAYS
from service.formats import Format, chunks
from service.http.errors import ApiError
from service.http.state import AppState, app_state
from service.reports.freshness import wait_for_projection
from service.reports.params import Params, encode_cursor, time_range
from service.reports.records import PHONE_FIELDS

T = TypeVar("T")
RETRY_AFTER_S = 5
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


def busy() -> ApiError:
    return ApiError(
        503,
        "unavailable",
        f"the database is busy or unreachable; retry after {RETRY_AFTER_S} s",
        headers={"retry-after": str(RETRY_AFTER_S)},
    )


async def reader(request: Request) -> AppState:
    """The caller's key checked; then, before anything is read, every event already acknowledged projected
    (reports/freshness.py)."""
    state = app_state(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send a read or admin key as `Authorization: Bearer <key>` (see `calltrail keys create`)",
            headers={"www-authenticate": "Bearer"},
        )
    key = await in_thread(authenticate_key, state.read_engine, token.strip())
    if key is None:
        raise ApiError(
            401, "unauthorized", "this key is unknown or revoked", headers={"www-authenticate": "Bearer"}
        )
    try:
        await wait_for_projection(request, state)
    except OperationalError:
        log.warning("waiting for the projection failed: the database is unreachable or locked", exc_info=True)
        raise busy() from None
    return state


def site_filter(state: AppState, params: Params) -> Callable[[], int | None]:
    """The ``site`` filter, resolved later (in a worker thread) to an id; unknown names are a 400."""
    name = params.text("site", 200)

    def resolve() -> int | None:
        if name is None:
            return None
        with state.read_engine.connect() as conn:
            found = site_id_of(conn, name)
        if found is None:
            raise ApiError(
                400,
                "invalid_parameter",
                f"no site is named {name!r}",
                [{"field": "site", "message": "no such site"}],
            )
        return found

    return resolve


async def report_request(request: Request) -> tuple[AppState, Params, int, int, Callable[[], int | None]]:
    """What every report reads first: the key, the window (the last 7 days unless given) and the site."""
    state = await reader(request)
    params = Params(request.query_params)
    start, end = time_range(params, required_default_days=DEFAULT_REPORT_DAYS)
    assert start is not None and end is not None
    return state, params, start, end, site_filter(state, params)


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
