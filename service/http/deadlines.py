"""Request deadlines against slow clients (slowloris): uvicorn's HTTP protocol with two timers.

uvicorn bounds only the idle time between requests, and any byte received resets it; a connection that sends
nothing, or a request trickled a byte at a time, stays open for ever, and a few hundred of them take every
connection a worker has. Here the request line and headers must arrive within ``header_timeout_s`` of the
connection (or of a keep-alive request's first byte), and the body within ``body_timeout_s`` of the headers;
otherwise the connection is closed (an app awaiting the body gets ``http.disconnect``). The response phase is
never timed: a long export streams as long as it needs.

uvicorn builds the protocol itself, so each worker reads the timeouts from its settings (the environment)
once; the class is passed by reference, so it works with ``--workers``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service import telemetry
from service.config import Settings

log = logging.getLogger("calltrail.http")


@functools.cache
def _timeouts() -> tuple[float, float]:
    # The worker's settings, read once: uvicorn gives the protocol no way to be handed them.
    settings = Settings.from_env()
    return float(settings.header_timeout_s), float(settings.body_timeout_s)


class DeadlineProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._header_timeout_s, self._body_timeout_s = _timeouts()

    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, phase: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            telemetry.REQUEST_TIMEOUTS.labels(phase).inc()
            log.info("closed a connection from %s: its request %s did not arrive in time", self.client, phase)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._header_timeout_s, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # A keep-alive connection's next request: its first bytes start the header deadline.
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm(self._header_timeout_s, "headers")
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._arm(self._body_timeout_s, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
