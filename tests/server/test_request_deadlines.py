"""A real `calltrail serve` closes connections whose request headers or body do not arrive in time
(slowloris), and only those: a keep-alive client is untouched."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import Server

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cwd = tmp_path_factory.mktemp("deadlines")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRAIL_")}
    env |= {
        "CALLTRAIL_DATABASE_URL": f"sqlite:///{cwd / 'calltrail.db'}",
        "CALLTRAIL_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "CALLTRAIL_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    }
    running = Server([], env, cwd)
    yield running
    running.kill()


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=15)


def _closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes the connection (recv returns b'' or the socket resets)."""
    started = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with _connect(server) as sock:
        waited = _closed_after(sock)
    assert HEADER_TIMEOUT_S - 0.5 <= waited < HEADER_TIMEOUT_S + 5


def test_headers_trickled_a_byte_at_a_time_are_cut_off(server: Server) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    with _connect(server) as sock:
        started = time.monotonic()
        closed = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)  # every byte well inside uvicorn's own idle timer, which it resets
            if time.monotonic() - started > HEADER_TIMEOUT_S + 5:
                break
        if not closed:
            sock.settimeout(5)
            closed = _closed_after(sock) < 5
    assert closed
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 5


def test_a_half_sent_body_is_cut_off(server: Server) -> None:
    head = (
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        b'Content-Length: 1000\r\n\r\n{"v":1,'
    )
    with _connect(server) as sock:
        sock.sendall(head)
        waited = _closed_after(sock)
    assert BODY_TIMEOUT_S - 0.5 <= waited < BODY_TIMEOUT_S + 5


def test_many_half_sent_requests_do_not_starve_real_ones(server: Server) -> None:
    stalled = [_connect(server) for _ in range(100)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
        time.sleep(HEADER_TIMEOUT_S + 2)
        still_open = 0
        for sock in stalled:
            sock.settimeout(0.5)
            try:
                if sock.recv(1) != b"":
                    still_open += 1
            except TimeoutError:
                still_open += 1
            except ConnectionResetError:
                pass
        assert still_open == 0
    finally:
        for sock in stalled:
            sock.close()
    metrics = httpx.get(f"{server.base}/metrics", timeout=5).text
    assert 'calltrail_http_request_timeouts_total{phase="headers"}' in metrics


def test_keep_alive_requests_are_not_cut_by_the_deadlines(server: Server) -> None:
    # One socket for every request: a client library would quietly reconnect if the server cut it.
    with _connect(server) as sock:
        for _ in range(4):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                assert chunk, "the server closed a keep-alive connection between requests"
                head += chunk
            status_line, _, rest = head.partition(b"\r\n")
            assert status_line.split()[1] == b"200"
            length = int(
                next(
                    line.split(b":")[1]
                    for line in rest.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += sock.recv(4096)
            # Past the header deadline of the first request by the last one, within uvicorn's 5 s keep-alive.
            time.sleep(HEADER_TIMEOUT_S / 2)
