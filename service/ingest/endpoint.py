"""POST /v1/events: the shim's batches in, one verdict per event out.

The endpoint is a plain ASGI application (``IngestEndpoint``) that the app calls before Starlette's own
(service/app.py), because every request of every browser of a contact center comes here: Starlette's
middleware layers, its request and response objects and its exception handling cost more per request than
all of the ingestion's own work (measured in bench/hotpath.py; docs/design.md, "The ingestion hot path").
It does for itself what those layers do for the other routes: answers every error in the one JSON error
shape, adds the CORS headers (errors and crashes included), logs crashes and counts each answered request in
the HTTP telemetry.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from service import telemetry
from service.admin.registry import Site
from service.domain.clock import correct_time
from service.domain.instants import now_ms
from service.http.errors import ApiError, error_body, internal_error_body
from service.http.state import AppState, state_from_scope
from service.ingest.cors import (
    PREFLIGHT_HEADERS,
    RawHeaders,
    cors_headers,
    origin_allowed,
    origin_allowed_by_cache,
)
from service.ingest.protocol import (
    Envelope,
    InvalidBody,
    InvalidEnvelope,
    RejectedEvent,
    RepeatedEvent,
    TooDeep,
    ValidEvent,
    parse_body,
)
from service.storage.events import EventKey, EventRow
from service.storage.failures import Overloaded, StorageUnavailable, WriterClosed

log = logging.getLogger("calltrail.http")

INGEST_PATH = "/v1/events"
ACCEPTED_MEDIA_TYPES = ("text/plain", "application/json")
OVERLOADED_RETRY_AFTER_S = 1
UNAVAILABLE_RETRY_AFTER_S = 5
_JSON = (b"content-type", b"application/json")
# The default headers of every other answer (http/headers.py), set here for ingestion, which Starlette's
# layers never see.
_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]


class ClientGone(Exception):
    """The client closed the connection before its body had arrived: nothing to store, nobody to answer."""


class IngestEndpoint:
    """Every HTTP request to ``INGEST_PATH``, whatever its method. ``scope["app"]`` is the application."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        origin: str | None = None
        allowed = False
        extra: RawHeaders = []
        payload: Any = None
        try:
            state = state_from_scope(scope)
            sites = state.sites
            headers = _request_headers(scope)
            origin = headers.get(b"origin")
            # Most requests find their answer in the cache: not awaiting a coroutine for it saves a little.
            allowed = origin_allowed_by_cache(sites, origin) or await origin_allowed(sites, origin)
            if method == "POST":
                status, payload = 200, await _post_events(scope, receive, state, headers, origin)
            elif method == "OPTIONS":
                if not allowed:
                    message = f"origin {origin!r} is not registered for any site"
                    raise ApiError(403, "origin_not_allowed", message)
                assert origin is not None
                status, extra = 204, list(PREFLIGHT_HEADERS)
            else:
                message = f"{method} is not allowed here; send the batch with POST"
                raise ApiError(405, "method_not_allowed", message, headers={"Allow": "POST, OPTIONS"})
        except ApiError as exc:
            status, payload = exc.status, error_body(exc.code, exc.message, exc.details)
            extra = [(name.lower().encode(), value.encode()) for name, value in exc.headers.items()]
        except ClientGone:
            return  # nobody to answer, so not counted among the answered requests either
        except Exception:
            log.exception("unhandled error on %s %s", method, INGEST_PATH)
            status, payload = 500, internal_error_body()
        if allowed:
            assert origin is not None
            extra += cors_headers(origin)
        await _answer(send, status, payload, extra)
        telemetry.observe_http(INGEST_PATH, method, status, time.perf_counter() - started)


async def _answer(send: Send, status: int, payload: Any, headers: RawHeaders) -> None:
    body = b"" if payload is None else orjson.dumps(payload)
    if payload is not None:
        headers = [_JSON, (b"content-length", str(len(body)).encode()), *_ALWAYS, *headers]
    else:
        headers = [*_ALWAYS, *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_headers(scope: Scope) -> dict[bytes, str]:
    """The request headers this endpoint reads (ASGI servers give names in lower case)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in (b"origin", b"content-type", b"content-length", b"content-encoding"):
            found[name] = value.decode("latin-1")
    return found


async def _post_events(
    scope: Scope, receive: Receive, state: AppState, headers: dict[bytes, str], origin: str | None
) -> dict[str, Any]:
    client = scope.get("client")
    state.rate_limits.check_ip(client[0] if client else "unknown")
    _check_media_type(headers.get(b"content-type"), headers.get(b"content-encoding"))
    body = await _read_body(receive, headers.get(b"content-length"), state.settings.max_body_bytes)
    received_at = now_ms()
    try:
        envelope = parse_body(
            body, max_events=state.settings.max_events_per_batch, transform=state.pii.protect_event
        )
    except TooDeep as exc:
        raise ApiError(400, "too_deep", str(exc)) from None
    except InvalidBody as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    except InvalidEnvelope as exc:
        raise ApiError(
            400,
            "invalid_envelope",
            f"the request is not a v1 event batch ({len(exc.problems)} problems)",
            [p.as_dict() for p in exc.problems],
        ) from None

    site = state.sites.cached_site(envelope.site_key) if state.sites.is_fresh() else None
    if site is None:
        site = await _load_site(state, envelope.site_key)
    if origin is None or origin not in site.origins:
        raise ApiError(
            403,
            "origin_not_allowed",
            f"origin {origin!r} may not write to this site; add it with `calltrail sites` if it should",
        )
    # Charged only now: a request from a foreign origin must not spend the site's budget (anyone can read
    # the public site key off the page).
    state.rate_limits.check_site(site.site_key)

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
    results, counts = _results(envelope, site, stored)
    for status, count in counts.items():
        if count:
            telemetry.count_events(status, count)
    return {"results": results}


def _check_media_type(content_type: str | None, content_encoding: str | None) -> None:
    # A compressed body is refused rather than guessed at: the shim never compresses (a batch is small),
    # and decompressing would let a few kilobytes on the wire expand past the body limit.
    if content_encoding is not None and content_encoding.strip().lower() not in ("", "identity"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the batch uncompressed, without Content-Encoding {content_encoding.strip()!r}",
        )
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the batch as text/plain or application/json, not {media_type or 'an empty type'}",
        )


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _load_site(state: AppState, site_key: str) -> Site:
    """The site, reloading the site list if need be; 401 when no site has the key."""
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


def _results(
    envelope: Envelope, site: Site, stored: set[EventKey]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The verdict of each event, and how many events got each status."""
    results: list[dict[str, Any]] = []
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for event in envelope.events:
        if isinstance(event, RejectedEvent):
            results.append({"id": event.event_id, "status": "rejected", "error": event.error})
            counts["rejected"] += 1
        elif isinstance(event, RepeatedEvent):
            results.append({"id": event.event_id, "status": "duplicate"})
            counts["duplicate"] += 1
        else:
            status = "accepted" if (site.id, event.event_id) in stored else "duplicate"
            results.append({"id": event.event_id, "status": status})
            counts[status] += 1
    return results, counts


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body is over the limit of {limit} bytes")


def _unavailable(message: str, retry_after_s: int) -> ApiError:
    return ApiError(503, "unavailable", message, headers={"Retry-After": str(retry_after_s)})
