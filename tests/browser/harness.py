"""What the browser tests drive: headless Chromium, two loopback origins serving test pages, and a scriptable
events endpoint that records every request the shim makes.

Pages are served on two ports. ``http://127.0.0.1:<a>`` and ``http://localhost:<a>`` are two sites (a parent
on one embedding a pop-up on the other is what the Contact Center does, and blocks the pop-up's storage);
``http://127.0.0.1:<b>`` is another origin of the same site as ``127.0.0.1:<a>``, where storage works.
"""

from __future__ import annotations

import html
import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

SHIM_FILE = Path(__file__).resolve().parents[2] / "service" / "static" / "shim.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SITE_KEY = "cts_browser_test"


def chromium_path() -> str:
    """Debian's chromium; never a downloaded browser. Missing, the tests skip, and under CI=true fail."""
    path = shutil.which("chromium")
    if path is None:
        message = "chromium is not installed (scripts/ensure-chromium installs it)"
        if IN_CI:
            pytest.fail(message + " (CI=true: browser tests must run)")
        pytest.skip(message)
    return path


def wait_until(predicate: Callable[[], Any], timeout_s: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Recorded:
    """One request to the events endpoint as the server saw it."""

    at: float
    method: str
    origin: str | None
    content_type: str | None
    fetch_mode: str | None  # Sec-Fetch-Mode: "cors" for fetch, "no-cors" for a text/plain beacon
    body: bytes

    @property
    def document(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def page_id(self) -> str:
        return str(self.document["page"]["id"])

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.document["events"])

    @property
    def is_beacon(self) -> bool:
        return self.fetch_mode == "no-cors"


# What the endpoint answers: a status, headers, and a body; or None to drop the connection unanswered.
Answer = tuple[int, dict[str, str], bytes] | None
Responder = Callable[[Recorded], Answer]


def accept_all(request: Recorded) -> Answer:
    results = [{"id": event["id"], "status": "accepted"} for event in request.events]
    return 200, {}, json.dumps({"results": results}).encode()


def refuse(status: int, retry_after: int | None = None) -> Responder:
    def respond(_request: Recorded) -> Answer:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return status, headers, json.dumps({"error": {"code": "test", "message": "", "details": []}}).encode()

    return respond


@dataclass
class PageServer:
    """Test pages and a scripted events endpoint (POST /v1/events), on two loopback ports."""

    pages: dict[str, str] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    preflights: list[str] = field(default_factory=list)
    responder: Responder = accept_all
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def start(self) -> None:
        handler = _handler(self)
        for _ in range(2):
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @property
    def port_a(self) -> int:
        return int(self._servers[0].server_address[1])

    @property
    def port_b(self) -> int:
        return int(self._servers[1].server_address[1])

    def url(self, host: str, path: str, port: int | None = None) -> str:
        return f"http://{host}:{port or self.port_a}{path}"

    @property
    def endpoint(self) -> str:
        return self.url("127.0.0.1", "")

    # What the endpoint was sent.
    def fetches(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if not r.is_beacon]

    def beacons(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.is_beacon]

    def events(self, page_id: str | None = None) -> list[dict[str, Any]]:
        """Every event received, in arrival order, each once per time it was sent."""
        with self.lock:
            found = list(self.requests)
        return [e for r in found if page_id in (None, r.page_id) for e in r.events]

    def page_ids(self) -> list[str]:
        with self.lock:
            return list(dict.fromkeys(r.page_id for r in self.requests))

    def wait_for_events(self, count: int, timeout_s: float = 15, page_id: str | None = None) -> None:
        wait_until(lambda: len(self.events(page_id)) >= count, timeout_s, f"{count} events at the endpoint")


def _handler(state: PageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/shim.js":
                self._send(200, {"content-type": "application/javascript"}, SHIM_FILE.read_bytes())
            elif path in state.pages:
                self._send(200, {"content-type": "text/html; charset=utf-8"}, state.pages[path].encode())
            else:
                self._send(404, {"content-type": "text/plain"}, b"not found")

        def do_OPTIONS(self) -> None:
            with state.lock:
                state.preflights.append(self.path)
            self._send(204, self._cors(), b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            request = Recorded(
                at=time.monotonic(),
                method="POST",
                origin=self.headers.get("origin"),
                content_type=self.headers.get("content-type"),
                fetch_mode=self.headers.get("sec-fetch-mode"),
                body=body,
            )
            with state.lock:
                state.requests.append(request)
                state.in_flight += 1
                state.most_in_flight = max(state.most_in_flight, state.in_flight)
            try:
                # A moment in flight, so that overlapping requests would be seen overlapping.
                time.sleep(0.02)
                answer = state.responder(request)
            finally:
                with state.lock:
                    state.in_flight -= 1
            if answer is None:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            status, headers, payload = answer
            self._send(status, {"content-type": "application/json", **self._cors(), **headers}, payload)

        def _cors(self) -> dict[str, str]:
            origin = self.headers.get("origin")
            if origin is None:
                return {}
            return {
                "access-control-allow-origin": origin,
                "access-control-expose-headers": "Retry-After",
                "access-control-allow-headers": "content-type",
                "vary": "Origin",
            }

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


# Test pages. A probe script before the shim records what the host page would see go wrong.
PROBE = """<script>
  window.__test = { errors: [], replies: [] };
  addEventListener("error", (e) => __test.errors.push(String(e.message)));
  addEventListener("unhandledrejection", (e) => __test.errors.push("unhandled: " + String(e.reason)));
</script>"""


def shim_tag(src: str, site: str | None = SITE_KEY, **data: str) -> str:
    attributes = [f'src="{html.escape(src)}"']
    if site is not None:
        attributes.append(f'data-site="{html.escape(site)}"')
    attributes += [f'data-{name}="{html.escape(value)}"' for name, value in data.items()]
    return f"<script {' '.join(attributes)}></script>"


def child_page(tags: str, body: str = "", before: str = "") -> str:
    """A pop-up page: the probe, whatever must run before the shim, the shim tag(s), then the body."""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        f"<title>child</title>{PROBE}{before}{tags}</head><body>{body}</body></html>"
    )


def parent_page(child_url: str) -> str:
    """A workstation: embeds the pop-up, keeps every message it gets, and acknowledges each to its sender."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>parent</title></head><body>
<iframe id="child" src="{html.escape(child_url)}" style="width:400px;height:200px"></iframe>
<script>
  window.received = [];
  const child = document.getElementById("child");
  addEventListener("message", (e) => {{
    if (e.source !== child.contentWindow) return;
    received.push(e.data);
    e.source.postMessage({{ ack: received.length }}, "*");
  }});
  // The Contact Center's way of announcing a call: a fragment navigation of the pop-up.
  window.announce = (hash) => {{ child.src = {json.dumps(child_url)} + hash; }};
</script></body></html>"""
