"""Real `calltrail serve` processes and a load client that remembers what was acknowledged."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.batches import batch, body, hash_event
from tests.conftest import ORIGIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def calltrail(*args: str, env: dict[str, str], cwd: Path) -> str:
    """Run a calltrail command to completion; its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "service", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class Server:
    """`calltrail serve` in its own process group. It logs to a file, never to a pipe nobody reads."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"server-{self.port}-{time.monotonic_ns()}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--port", str(self.port), *args],
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()

    def log(self) -> str:
        return self.log_path.read_text()

    def _wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"server did not become ready:\n{self.log()}")
            time.sleep(0.1)

    def terminate(self, timeout_s: float = 30) -> int:
        """SIGTERM and wait for a graceful exit; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server did not stop within {timeout_s} s of SIGTERM") from None

    def kill(self) -> None:
        """SIGKILL the whole process group (the supervisor and every worker) at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@dataclass
class LoadClient:
    """Threads that post unique batches until stopped, recording which were acknowledged with 200."""

    base: str
    site_key: str
    threads: int = 4
    events_per_batch: int = 10
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # every batch, by page id
    acknowledged: set[str] = field(default_factory=set)  # event ids answered accepted or duplicate
    unanswered: list[str] = field(default_factory=list)  # page ids of batches not acknowledged
    statuses: dict[int | str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self._stop.is_set():
                document = batch(self.site_key, self._page_events())
                with self._lock:
                    self.sent[document["page"]["id"]] = document
                self.post(client, document)

    def _page_events(self) -> list[dict[str, Any]]:
        """A page's worth of realistic call events: one agent per page, customers calling in turn."""
        agent = f"agent-{uuid.uuid4().hex[:12]}%40example.com"
        events = []
        for i in range(1, self.events_per_batch + 1):
            customer = f"1390000{(i - 1) // 3:04d}"
            status = (100, 200, 400)[(i - 1) % 3]
            events.append(hash_event(i, f"#?mobile={customer}&status={status}&type=phone&agentEmail={agent}"))
        return events

    def post(self, client: httpx.Client, document: dict[str, Any]) -> bool:
        """Post one batch; True when it was acknowledged."""
        page_id = document["page"]["id"]
        try:
            response = client.post(
                "/v1/events", content=body(document), headers={"origin": ORIGIN, "content-type": "text/plain"}
            )
        except httpx.TransportError as exc:
            with self._lock:
                self.statuses[type(exc).__name__] = self.statuses.get(type(exc).__name__, 0) + 1
                self.unanswered.append(page_id)
            return False
        with self._lock:
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code != 200:
                self.unanswered.append(page_id)
                return False
            results = response.json()["results"]
            assert {r["status"] for r in results} <= {"accepted", "duplicate"}, results
            self.acknowledged.update(r["id"] for r in results)
        return True

    def replay_unanswered(self, base: str, attempts: int = 50) -> None:
        """Send every batch that was not acknowledged again, as a client's retry queue would."""
        pending = list(dict.fromkeys(self.unanswered))
        self.unanswered.clear()
        with httpx.Client(base_url=base, timeout=10) as client:
            for page_id in pending:
                for _ in range(attempts):
                    if self.post(client, self.sent[page_id]):
                        break
                    self.unanswered.pop()
                    time.sleep(0.1)
                else:
                    raise AssertionError(f"batch {page_id} was never acknowledged")

    def all_event_ids(self) -> set[str]:
        return {event["id"] for document in self.sent.values() for event in document["events"]}
