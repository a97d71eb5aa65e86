"""The access log's HTTP side: a middleware on the routes that read customer data (sessions, calls, the
audit trail, live sessions, their exports) and on the admin API, writing one entry per request made with a
valid key (docs/security.md, "The access log").

The entry is written after the answer has been sent, in the thread pool, so a read is not kept waiting for
it; an export's entry is written once its last row has gone. A request without a valid key is not logged
(it read nothing, and anyone could fill the log with them). Admin changes are logged by the operations
themselves (admin/access.py), in the transaction of the change; this middleware logs their refusals.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.admin.access import Access, Actor, record_all
from service.domain.instants import now_ms
from service.http.auth import KEY_STATE, actor
from service.http.state import state_from_scope

log = logging.getLogger("calltrail.http")
ROWS_STATE = "calltrail_rows"
AUDITED_STATE = "calltrail_audited"
EXPORT_FORMATS = ("csv", "ndjson")


def note_rows(request: HTTPConnection, rows: int) -> None:
    """How many rows this answer holds, for its access-log entry."""
    request.scope.setdefault("state", {})[ROWS_STATE] = rows


def note_audited(request: HTTPConnection) -> None:
    """The operation logged itself (admin/access.py): the middleware adds nothing."""
    request.scope.setdefault("state", {})[AUDITED_STATE] = True


class AccessAudit:
    """Writes the request's access-log entry once it has been answered."""

    def __init__(self, app: ASGIApp, kind: str = "read", *, exports_only: bool = False) -> None:
        self.app = app
        self.kind = kind
        self.exports_only = exports_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            await self._record(scope, status)

    async def _record(self, scope: Scope, status: int) -> None:
        state: dict[str, Any] = scope.get("state", {})
        key = state.get(KEY_STATE)
        if key is None or state.get(AUDITED_STATE):
            return
        connection = HTTPConnection(scope)
        app_state = state_from_scope(scope)
        params = dict(connection.query_params)
        if "customer" in params:
            # Kept as the sessions keep numbers (CALLTRAIL_PII_MODE), no clearer.
            params["customer"] = app_state.pii.protect(params["customer"])
        kind = self.kind
        if kind == "read" and params.get("format") in EXPORT_FORMATS:
            kind = "export"
        if self.exports_only and kind != "export":
            return
        route = scope.get("route")
        template = getattr(route, "path", scope["path"])
        entry = Access(
            kind,
            f"{scope['method']} {template}",
            params,
            scope["method"],
            scope["path"],
            status or None,
            state.get(ROWS_STATE),
        )
        who: Actor = actor(connection, key)
        try:
            await run_in_threadpool(record_all, app_state.ccc_engine, [(who, entry, now_ms())])
        except Exception:
            log.exception("could not write the access log entry for %s %s", scope["method"], scope["path"])
