"""GET /metrics, and the middleware that counts every request by route template and status."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import telemetry


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The route template, not the path, keeps the label set small whatever clients request.
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            telemetry.observe_http(template, scope["method"], status, time.perf_counter() - started)


async def get_metrics(_request: Request) -> Response:
    body, content_type = telemetry.render()
    return Response(body, media_type=content_type)


routes = [Route("/metrics", get_metrics, methods=["GET"])]
