"""Every error the service answers has one shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import httpx
import pytest

from service.admin.registry import Site
from tests.batches import batch, body, hash_event
from tests.conftest import ORIGIN
from tests.ingest.test_endpoint import assert_error

pytestmark = pytest.mark.anyio


async def test_starlette_errors_use_our_shape(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/no/such/route"), 404, "not_found")
    assert_error(await api.get("/v1/events"), 405, "method_not_allowed")
    assert_error(await api.post("/healthz"), 405, "method_not_allowed")


async def test_ingest_errors_use_our_shape(api: httpx.AsyncClient, site: Site) -> None:
    headers = {"origin": ORIGIN, "content-type": "text/plain"}
    cases = [
        (b"{", headers, 400, "invalid_json"),
        (b"{}", headers, 400, "invalid_envelope"),
        (body(batch("cts_unknown", [hash_event(1, "#")])), headers, 401, "unknown_site"),
        (
            body(batch(site.site_key, [hash_event(1, "#")])),
            {"content-type": "text/plain"},
            403,
            "origin_not_allowed",
        ),
        (b"x" * 70_000, headers, 413, "body_too_large"),
        (b"{}", {"origin": ORIGIN, "content-type": "image/png"}, 415, "unsupported_media_type"),
    ]
    for content, hdrs, status, code in cases:
        response = await api.post("/v1/events", content=content, headers=hdrs)
        assert_error(response, status, code)
        assert response.headers["content-type"] == "application/json"


async def test_envelope_details_are_field_and_message(api: httpx.AsyncClient, site: Site) -> None:
    response = await api.post("/v1/events", content=b"{}", headers={"origin": ORIGIN})
    error = assert_error(response, 400, "invalid_envelope")
    assert error["details"]
    for detail in error["details"]:
        assert set(detail) == {"field", "message"}


async def test_a_crash_answers_500_in_our_shape_with_cors(
    api: httpx.AsyncClient, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("service.ingest.endpoint._rows", explode)
    response = await api.post(
        "/v1/events",
        content=body(batch(site.site_key, [hash_event(1, "#")])),
        headers={"origin": ORIGIN, "content-type": "text/plain"},
    )
    error = assert_error(response, 500, "internal_error")
    assert "simulated" not in error["message"]  # internals stay in the log
    assert response.headers["access-control-allow-origin"] == ORIGIN
