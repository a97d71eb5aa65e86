"""A `calltrail serve` on a benchmark database, with a fresh read key, for the read-side benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(database_url: str, key_name: str) -> Iterator[tuple[str, str]]:
    """(base URL, read key) of a 1-worker server without access log; stopped with SIGTERM on exit."""
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": database_url, "CALLTRAIL_LOG_LEVEL": "warning"}
    key = subprocess.run(
        [sys.executable, "-m", "service", "keys", "create", "--scope", "read", "--name", key_name],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1].split()[-1]  # fmt: skip
    port = free_port()
    log = Path(f"/tmp/calltrail-bench-{key_name}-{port}.log")
    server = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit(f"the server did not get ready; see {log}")
        yield base, key
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
