"""Liveness and readiness."""

from __future__ import annotations

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.http.errors import ApiError
from service.http.responses import JSONResponse
from service.http.state import app_state
from service.storage.migrations import SchemaOutdated, check_current, head_revision


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    engine = app_state(request).read_engine

    def check() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        check_current(engine)

    try:
        await run_in_threadpool(check)
    except SchemaOutdated as exc:
        raise ApiError(503, "schema_outdated", str(exc)) from None
    except Exception as exc:
        raise ApiError(
            503, "database_unreachable", f"the database does not answer: {type(exc).__name__}"
        ) from None
    return JSONResponse({"status": "ready", "schema": head_revision()})


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
