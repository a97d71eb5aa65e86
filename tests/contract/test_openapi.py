"""/openapi.json describes exactly the routes the app serves; a live server keeps to it under schemathesis."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from starlette.routing import Route

from service.admin.registry import Site, create_key
from service.app import create_app
from service.config import Settings
from service.contract.openapi import document
from service.ingest.endpoint import INGEST_PATH
from tests.center import center_history
from tests.projection_helpers import T0, ingest
from tests.servers import Server


def test_document_lists_every_route_and_method() -> None:
    app = create_app(Settings())
    served = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    # Ingestion is answered in front of Starlette's routing (service/ingest/endpoint.py), not by a Route.
    served.add((INGEST_PATH, "post"))
    described = {(path, method) for path, item in document()["paths"].items() for method in item}
    assert described == served


def test_document_is_valid_openapi_31() -> None:
    # schemathesis refuses a document that is not OpenAPI; loading it is the check.
    import schemathesis

    schema = schemathesis.openapi.from_dict(document())
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == sum(len(item) for item in document()["paths"].values())


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_break(
    backend: str, db_url: str, settings: Settings, engine: Engine, site: Site, tmp_path: Path
) -> None:
    ingest(settings, [center_history(site.id, seed=3, start_ms=T0)])
    key = create_key(engine, "read").plaintext
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": db_url, "CALLTRAIL_RATE_LIMIT_PER_IP": "100000/second"}
    server = Server([], env, tmp_path)
    try:
        assert httpx.get(f"{server.base}/openapi.json").status_code == 200
        executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        assert executable is not None
        result = subprocess.run(
            [
                executable,
                "run",
                f"{server.base}/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
                "--header",
                f"Authorization: Bearer {key}",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
        # Every operation schemathesis found ran: a run that silently skipped endpoints would pass vacuously.
        selected = re.search(r"(\d+) selected / (\d+) total", result.stdout)
        tested = re.search(r"Tested: (\d+)", result.stdout)
        assert selected and tested, result.stdout[-3000:]
        assert selected[1] == selected[2] == tested[1], result.stdout[-3000:]
        # schemathesis leaves out the URL it loaded the document from (/openapi.json); nothing else.
        operations = sum(len(item) for item in document()["paths"].values())
        assert int(tested[1]) == operations - 1, result.stdout[-3000:]
    finally:
        # A single uvicorn process re-raises SIGTERM once it has shut down cleanly.
        server.terminate()
    assert "Application shutdown complete" in server.log()
    assert "Traceback" not in server.log(), server.log()[-4000:]
