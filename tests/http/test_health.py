"""Liveness and readiness."""

from __future__ import annotations

import httpx
import pytest

from service.storage.migrations import downgrade, head_revision
from tests.ingest.test_endpoint import assert_error

pytestmark = pytest.mark.anyio


async def test_healthz(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_ready(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "schema": head_revision()}


async def test_readyz_when_the_schema_is_behind(api: httpx.AsyncClient, db_url: str) -> None:
    downgrade(db_url, "base")
    response = await api.get("/readyz")
    error = assert_error(response, 503, "schema_outdated")
    assert "calltrail migrate" in error["message"]
