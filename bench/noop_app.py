"""The ceiling of the stack for bench/ingest.py: a Starlette POST endpoint that reads the body and answers.

It does what every request to ``POST /v1/events`` must do at least (uvicorn's HTTP parsing, Starlette's
routing, reading the whole body, a small JSON answer) and nothing else: no parsing, no database.

    .venv/bin/python -m uvicorn bench.noop_app:app --host 127.0.0.1 --port 8001 --log-level warning
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def ingest(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"status": "ok", "bytes": len(body)})


app = Starlette(routes=[Route("/v1/events", ingest, methods=["POST"])])
