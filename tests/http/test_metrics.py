"""GET /metrics reports requests, events and the writer in Prometheus text format."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.admin.registry import Site
from tests.batches import batch, body, hash_event
from tests.conftest import ORIGIN

pytestmark = pytest.mark.anyio


async def scrape(api: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_events_requests_and_batches(api: httpx.AsyncClient, site: Site) -> None:
    before = await scrape(api)
    event = hash_event(1, "#?status=100")
    bad = {"id": "x", "seq": 1}
    headers = {"origin": ORIGIN, "content-type": "text/plain"}
    await api.post("/v1/events", content=body(batch(site.site_key, [event, bad])), headers=headers)
    await api.post("/v1/events", content=body(batch(site.site_key, [event])), headers=headers)
    await api.get("/no/such/path/123")
    await api.request("BREW", "/v1/events", headers=headers)  # any token is a method; labels stay few
    await api.request("BREW", "/healthz")
    await api.options("/v1/events", headers=headers)
    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("calltrail_events_total", status="accepted") == 1
    assert delta("calltrail_events_total", status="duplicate") == 1
    assert delta("calltrail_events_total", status="rejected") == 1
    assert delta("calltrail_http_requests_total", route="/v1/events", method="POST", status="200") == 2
    assert delta("calltrail_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert delta("calltrail_http_requests_total", route="/v1/events", method="other", status="405") == 1
    assert delta("calltrail_http_requests_total", route="/healthz", method="other", status="405") == 1
    assert delta("calltrail_http_requests_total", route="/v1/events", method="OPTIONS", status="204") == 1
    assert delta("calltrail_writer_batch_events_count") == 2
    assert delta("calltrail_writer_commit_seconds_count") == 2
    assert ("calltrail_writer_queue_events", ()) in after
