"""POST /v1/events: the shim's batches in, one verdict per event out."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import metrics
from service.domain.clock import correct_time
from service.http.errors import ApiError
from service.http.responses import JSONResponse
from service.http.state import AppState, app_state
from service.protocol import (
    Envelope,
    InvalidBody,
    InvalidEnvelope,
    RejectedEvent,
    RepeatedEvent,
    ValidEvent,
    parse_body,
)
from service.storage.events import EventKey, EventRow
from service.storage.registry import Site
from service.storage.writer import Overloaded, StorageUnavailable, WriterClosed

ACCEPTED_MEDIA_TYPES = ("text/plain", "application/json")
OVERLOADED_RETRY_AFTER_S = 1
UNAVAILABLE_RETRY_AFTER_S = 5


async def post_events(request: Request) -> Response:
    state = app_state(request)
    await state.rate_limits.check_ip(request.client.host if request.client else "unknown")
    _check_media_type(request)
    body = await _read_body(request, state.settings.max_body_bytes)
    received_at = time.time_ns() // 1_000_000
    try:
        envelope = parse_body(
            body, max_events=state.settings.max_events_per_batch, transform=state.pii.protect_event
        )
    except InvalidBody as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    except InvalidEnvelope as exc:
        raise ApiError(
            400,
            "invalid_envelope",
            f"the request is not a v1 event batch ({len(exc.problems)} problems)",
            [p.as_dict() for p in exc.problems],
        ) from None

    site = await _find_site(state, envelope.site_key)
    await state.rate_limits.check_site(site.site_key)
    origin = request.headers.get("origin")
    if origin is None or origin not in site.origins:
        raise ApiError(
            403,
            "origin_not_allowed",
            f"origin {origin!r} may not write to this site; add it with `calltrail sites` if it should",
        )

    rows = _rows(envelope, site, received_at, state.settings.max_event_age_s * 1000)
    stored: set[EventKey] = set()
    if rows:
        try:
            stored = await state.writer.write(rows)
        except Overloaded as exc:
            raise _unavailable(str(exc), OVERLOADED_RETRY_AFTER_S) from None
        except WriterClosed:
            raise _unavailable("the server is shutting down", UNAVAILABLE_RETRY_AFTER_S) from None
        except StorageUnavailable:
            # The cause is in the log; it may name other sites' data, so the client gets none of it.
            message = f"the database cannot take writes now; retry after {UNAVAILABLE_RETRY_AFTER_S} s"
            raise _unavailable(message, UNAVAILABLE_RETRY_AFTER_S) from None
    results = _results(envelope, site, stored)
    for status, count in Counter(r["status"] for r in results).items():
        metrics.count_events(status, count)
    return JSONResponse({"results": results})


def _check_media_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the batch as text/plain or application/json, not {media_type or 'an empty type'}",
        )


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = ApiError(413, "body_too_large", f"the body is over the limit of {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _find_site(state: AppState, site_key: str) -> Site:
    site = state.sites.cached_site(site_key) if state.sites.is_fresh() else None
    if site is None:
        try:
            site = await run_in_threadpool(state.sites.site, site_key)
        except Exception as exc:
            raise _unavailable("the site list cannot be read now", UNAVAILABLE_RETRY_AFTER_S) from exc
    if site is None:
        raise ApiError(
            401, "unknown_site", "no site has this site key; check data-site in the page's script tag"
        )
    return site


def _rows(envelope: Envelope, site: Site, received_at: int, max_age_ms: int) -> list[EventRow]:
    rows: list[EventRow] = []
    for event in envelope.events:
        if not isinstance(event, ValidEvent):
            continue
        corrected = correct_time(event.ts, envelope.sent_at, received_at, max_age_ms)
        rows.append(
            {
                "site_id": site.id,
                "event_id": event.event_id,
                "page_id": envelope.page_id,
                "page_url": envelope.page_url,
                "seq": event.seq,
                "type": event.type,
                "client_ts": event.ts,
                "sent_at": envelope.sent_at,
                "received_at": received_at,
                "event_at": corrected.event_at,
                "skew_ms": corrected.skew_ms,
                "ts_flag": corrected.flag,
                "raw": event.raw,
            }
        )
    return rows


def _results(envelope: Envelope, site: Site, stored: set[EventKey]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for event in envelope.events:
        if isinstance(event, RejectedEvent):
            results.append({"id": event.event_id, "status": "rejected", "error": event.error})
        elif isinstance(event, RepeatedEvent):
            results.append({"id": event.event_id, "status": "duplicate"})
        else:
            status = "accepted" if (site.id, event.event_id) in stored else "duplicate"
            results.append({"id": event.event_id, "status": status})
    return results


def _unavailable(message: str, retry_after_s: int) -> ApiError:
    return ApiError(503, "unavailable", message, headers={"Retry-After": str(retry_after_s)})


routes = [Route("/v1/events", post_events, methods=["POST"])]
