"""The call-session state machine: a stream's call events in, its sessions out. Pure and order-free.

A *stream* is the set of events whose sessions depend on each other: on a voice channel (phone, om) the
agent has one line, so all of an agent's voice calls form one stream and a new call can supersede the open
one; on a chat channel (im, oim) each customer is a stream of its own, so an agent holds many chats at once.
``fold`` sorts its input first, so the sessions depend only on the *set* of events: any arrival order, any
batching and any redelivery give the same result. The rules are written out in docs/sessions.md.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from service.domain.ccc import VOICE_CHANNELS, CccHash, Status

Outcome = Literal["answered", "not_answered", "ongoing", "unknown"]
EndSource = Literal["explicit", "superseded", "timeout"]

_SESSION_NAMESPACE = uuid.UUID("5b3f0c36-8d4e-4f0e-9a55-6c1b2f3e4d70")


@dataclass(frozen=True)
class Timeouts:
    """How long a session may go unheard before the next event treats it as over (milliseconds)."""

    ringing_ms: int
    connected_ms: int

    def for_status(self, status: Status) -> int:
        return self.ringing_ms if status == 100 else self.connected_ms


@dataclass(frozen=True)
class CallEvent:
    """A hash event that carries a status, with what the session needs of it."""

    event_id: str
    at: int  # event_at, milliseconds
    status: Status
    hash: CccHash


@dataclass
class Session:
    id: str
    stream: str
    customer: str
    hash: CccHash  # the descriptive fields (agent, customer, channel) of the session's first event
    first_event_at: int
    last_event_at: int
    observed_from: Status
    status: Status
    offered_at: int | None = None
    connected_at: int | None = None
    ended_at: int | None = None
    end_source: EndSource | None = None
    event_count: int = 1
    duplicate_count: int = 0
    event_ids: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def outcome(self) -> Outcome:
        # Final only once the session is over: a connected call still in progress is "ongoing".
        if self.is_open:
            return "ongoing"
        if self.connected_at is not None:
            return "answered"
        if self.observed_from == 100 and self.end_source in ("explicit", "superseded"):
            return "not_answered"
        return "unknown"

    @property
    def ring_s(self) -> float | None:
        if self.offered_at is None or self.connected_at is None:
            return None
        return (self.connected_at - self.offered_at) / 1000

    @property
    def talk_s(self) -> float | None:
        # Only a measured duration: after a supersession or a timeout the real end is unknown.
        if self.connected_at is None or self.ended_at is None or self.end_source != "explicit":
            return None
        return (self.ended_at - self.connected_at) / 1000


def stream_of(site_id: int, call: CccHash) -> str:
    channel = call.channel or ""
    parts = [str(site_id), call.sdk_app_id or "", call.agent]
    parts += ["voice"] if channel in VOICE_CHANNELS else [channel, call.customer]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def session_id(stream: str, first_event_id: str) -> str:
    return str(uuid.uuid5(_SESSION_NAMESPACE, f"{stream}:{first_event_id}"))


def event_order(event: CallEvent) -> tuple[int, int, str]:
    # Same millisecond: an offer before a connect before an end; then the id, so the order is total.
    return (event.at, event.status, event.event_id)


def fold(stream: str, events: Iterable[CallEvent], timeouts: Timeouts) -> list[Session]:
    """Every session of a stream, from all of its events."""
    folder = _Folder(stream, timeouts)
    for event in sorted(events, key=event_order):
        folder.feed(event)
    return folder.sessions


def resume(
    stream: str,
    open_session: Session | None,
    closed: Iterable[Session],
    events: Iterable[CallEvent],
    timeouts: Timeouts,
) -> list[Session]:
    """Continue a fold from its stored state with events later than everything it has seen.

    The state is the open session and, per customer, the latest closed session: all the fold consults.
    Returns those sessions (changed or not) and the new ones, in the order a full fold would list them.
    """
    folder = _Folder(stream, timeouts)
    known = sorted([*closed, *([open_session] if open_session else [])], key=lambda s: s.first_event_at)
    for session in known:
        folder.sessions.append(session)
        if session.is_open:
            folder.current = session
        else:
            folder.recently_closed[session.customer] = session
    for event in sorted(events, key=event_order):
        folder.feed(event)
    return folder.sessions


class _Folder:
    def __init__(self, stream: str, timeouts: Timeouts) -> None:
        self.stream = stream
        self.timeouts = timeouts
        self.sessions: list[Session] = []
        self.current: Session | None = None
        self.recently_closed: dict[str, Session] = {}

    def _close(self, session: Session, source: EndSource, at: int) -> None:
        session.ended_at = at
        session.end_source = source
        self.recently_closed[session.customer] = session

    def feed(self, event: CallEvent) -> None:
        timeouts = self.timeouts
        customer = event.hash.customer
        current = self.current
        if current is not None and event.at - current.last_event_at > timeouts.for_status(current.status):
            self._close(current, "timeout", current.last_event_at)
            current = self.current = None

        if current is not None and customer != current.customer:
            # Only a voice stream mixes customers. A late end of a call the line already left is that
            # call's repeat, not a new call; anything else means the line moved on to another customer.
            earlier = self.recently_closed.get(customer)
            if event.status == 400 and earlier is not None and _within(earlier, event, timeouts):
                _repeat(earlier, event)
                return
            self._close(current, "superseded", event.at)
            current = self.current = None

        if current is not None:
            _advance(current, event)
            if not current.is_open:
                self.recently_closed[customer] = current
                self.current = None
            return

        earlier = self.recently_closed.get(customer)
        if event.status != 100 and earlier is not None and _within(earlier, event, timeouts):
            # The end (or a connect) shown again after the session ended: a reload, or a second tab.
            _repeat(earlier, event)
            return

        session = _open(self.stream, event)
        self.sessions.append(session)
        if session.is_open:
            self.current = session
        else:
            self.recently_closed[customer] = session


def _within(session: Session, event: CallEvent, timeouts: Timeouts) -> bool:
    """Whether an event comes soon enough after a closed session's end to be a repeat of it.

    Measured from when the session was last heard of or ended, whichever is later: a call superseded at the
    next call's offer can still send its own late end after that.
    """
    return event.at - last_touch(session) <= timeouts.ringing_ms


def last_touch(session: Session) -> int:
    return max(session.last_event_at, session.ended_at or session.last_event_at)


def _repeat(session: Session, event: CallEvent) -> None:
    session.event_count += 1
    session.duplicate_count += 1
    session.last_event_at = max(session.last_event_at, event.at)
    session.event_ids.append(event.event_id)


def _open(stream: str, event: CallEvent) -> Session:
    session = Session(
        id=session_id(stream, event.event_id),
        stream=stream,
        customer=event.hash.customer,
        hash=event.hash,
        first_event_at=event.at,
        last_event_at=event.at,
        observed_from=event.status,
        status=event.status,
        event_ids=[event.event_id],
    )
    _mark(session, event)
    return session


def _advance(session: Session, event: CallEvent) -> None:
    session.event_count += 1
    session.last_event_at = event.at
    session.event_ids.append(event.event_id)
    session.hash = _fill_missing(session.hash, event.hash)
    if event.status <= session.status:
        # Statuses never go backwards: a repeated or older status is a duplicate (a reload, a second tab).
        session.duplicate_count += 1
        return
    session.status = event.status
    _mark(session, event)


def _mark(session: Session, event: CallEvent) -> None:
    """What a status says of the session: 100 offered it, 200 connected it, 400 ended it."""
    if event.status == 100:
        session.offered_at = event.at
    elif event.status == 200:
        session.connected_at = event.at
    else:
        session.ended_at = event.at
        session.end_source = "explicit"


def _fill_missing(known: CccHash, newer: CccHash) -> CccHash:
    """Descriptive fields the first event lacked, taken from later ones (the first value wins)."""
    updates = {
        name: getattr(newer, name)
        for name in (
            "sdk_app_id",
            "agent_mobile",
            "agent_nickname",
            "agent_role_id",
            "customer_nickname",
            "customer_avatar",
            "customer_user_id",
            "customer_mobile",
        )
        if getattr(known, name) is None and getattr(newer, name) is not None
    }
    return replace(known, **updates) if updates else known


def stale(session: Session, now_ms: int, timeouts: Timeouts) -> bool:
    """An open session unheard for longer than its timeout: shown as ended by timeout at its last event."""
    return session.is_open and timed_out(
        session.connected_at is not None, session.last_event_at, now_ms, timeouts
    )


def timed_out(connected: bool, last_event_at: int, now_ms: int, timeouts: Timeouts) -> bool:
    """Whether an open session, last heard at ``last_event_at``, is over by ``now_ms``.

    Stored sessions depend on events alone (so a rebuild reproduces them); this read-time view is how an
    open session that will never hear another event still ends, deterministically, for every reader.
    """
    return now_ms - last_event_at > timeouts.for_status(200 if connected else 100)
