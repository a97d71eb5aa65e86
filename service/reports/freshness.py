"""Read-your-acknowledged-writes for the query API.

Events are projected (into sessions, actions and rollups) shortly after they are stored, not in the same
transaction (projection/queue.py). Before a query reads, it waits until every event stored before it
arrived is projected, so a figure never misses an event whose POST was already answered 2xx. The wait is
bounded (``CALLTRAIL_READ_WAIT_MS``); past it the query answers anyway, and the answer says how many
acknowledged events it could not include yet, in the ``CallTrail-Unprojected-Events`` header.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.state import AppState
from service.projection.queue import wait_until_projected

HEADER = "CallTrail-Unprojected-Events"
_SCOPE_KEY = "calltrail.unprojected"


async def wait_for_projection(request: Request, state: AppState) -> None:
    timeout_s = state.settings.read_wait_ms / 1000
    left = await run_in_threadpool(wait_until_projected, state.read_engine, timeout_s)
    if left:
        request.scope[_SCOPE_KEY] = left


class FreshnessHeaderMiddleware:
    """Adds the header to answers that were given before everything acknowledged could be projected."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            left = scope.get(_SCOPE_KEY)
            if message["type"] == "http.response.start" and left:
                headers = [*message.get("headers", []), (HEADER.lower().encode(), str(left).encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)
