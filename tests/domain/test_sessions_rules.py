"""Every inference rule of docs/sessions.md, one scenario each, with the exact sessions expected."""

from __future__ import annotations

import random

import pytest

from service.domain.ccc import parse_hash
from service.domain.sessions import CallEvent, Session, Timeouts, fold, stale, stream_of, timed_out

T0 = 1_764_000_000_000
S = 1000  # one second in ms
TIMEOUTS = Timeouts(ringing_ms=600 * S, connected_ms=4 * 3600 * S)
AGENT = "agentEmail=ann%40example.com&sdkAppId=1400"


def ev(n: int, at_s: float, status: int, customer: str = "18888888888", channel: str = "phone") -> CallEvent:
    call = parse_hash(f"#?mobile={customer}&status={status}&type={channel}&{AGENT}")
    return CallEvent(f"e{n:03d}", T0 + int(at_s * S), call.status, call)  # type: ignore[arg-type]


def run(*events: CallEvent) -> list[Session]:
    streams = {stream_of(1, e.hash) for e in events}
    assert len(streams) == 1, "a scenario is one stream"
    return fold(streams.pop(), events, TIMEOUTS)


def summary(session: Session) -> dict[str, object]:
    return {
        "customer": session.customer,
        "outcome": session.outcome,
        "end_source": session.end_source,
        "observed_from": session.observed_from,
        "offered": None if session.offered_at is None else (session.offered_at - T0) / S,
        "connected": None if session.connected_at is None else (session.connected_at - T0) / S,
        "ended": None if session.ended_at is None else (session.ended_at - T0) / S,
        "ring_s": session.ring_s,
        "talk_s": session.talk_s,
        "events": session.event_count,
        "duplicates": session.duplicate_count,
    }


def test_rule_offer_connect_end_is_an_answered_call() -> None:
    (call,) = run(ev(1, 0, 100), ev(2, 7, 200), ev(3, 127, 400))
    assert summary(call) == {
        "customer": "18888888888", "outcome": "answered", "end_source": "explicit", "observed_from": 100,
        "offered": 0, "connected": 7, "ended": 127, "ring_s": 7.0, "talk_s": 120.0, "events": 3, "duplicates": 0,
    }  # fmt: skip


def test_rule_offer_then_end_is_not_answered() -> None:
    (call,) = run(ev(1, 0, 100), ev(2, 20, 400))
    assert summary(call) == {
        "customer": "18888888888", "outcome": "not_answered", "end_source": "explicit", "observed_from": 100,
        "offered": 0, "connected": None, "ended": 20, "ring_s": None, "talk_s": None, "events": 2, "duplicates": 0,
    }  # fmt: skip


def test_rule_an_open_session_is_ongoing() -> None:
    (connected,) = run(ev(1, 0, 100), ev(2, 5, 200))
    assert summary(connected) == {
        "customer": "18888888888", "outcome": "ongoing", "end_source": None, "observed_from": 100,
        "offered": 0, "connected": 5, "ended": None, "ring_s": 5.0, "talk_s": None, "events": 2, "duplicates": 0,
    }  # fmt: skip
    (ringing,) = run(ev(1, 0, 100))
    assert ringing.outcome == "ongoing"
    assert ringing.ring_s is None


def test_rule_repeated_status_or_reload_is_a_duplicate() -> None:
    (call,) = run(ev(1, 0, 100), ev(2, 1, 100), ev(3, 5, 200), ev(4, 9, 200), ev(5, 60, 400))
    assert summary(call)["events"] == 5
    assert summary(call)["duplicates"] == 2
    assert summary(call)["connected"] == 5


def test_rule_statuses_never_go_backwards() -> None:
    # A 100 shown after the connect (a stale tab): a duplicate, the session stays connected.
    (call,) = run(ev(1, 0, 100), ev(2, 5, 200), ev(3, 6, 100), ev(4, 30, 400))
    assert call.event_count == 4
    assert call.duplicate_count == 1
    assert call.connected_at == T0 + 5 * S
    assert call.outcome == "answered"
    assert call.talk_s == 25.0


def test_rule_the_end_shown_again_is_a_duplicate_not_a_session() -> None:
    (call,) = run(ev(1, 0, 100), ev(2, 5, 200), ev(3, 30, 400), ev(4, 45, 400))
    assert call.event_count == 4
    assert call.duplicate_count == 1
    assert call.ended_at == T0 + 30 * S


def test_rule_offer_after_end_is_a_new_call() -> None:
    first, second = run(ev(1, 0, 100), ev(2, 10, 400), ev(3, 40, 100), ev(4, 45, 200), ev(5, 90, 400))
    assert summary(first)["outcome"] == "not_answered"
    assert summary(second) == {
        "customer": "18888888888", "outcome": "answered", "end_source": "explicit", "observed_from": 100,
        "offered": 40, "connected": 45, "ended": 90, "ring_s": 5.0, "talk_s": 45.0, "events": 3, "duplicates": 0,
    }  # fmt: skip
    assert first.id != second.id


def test_rule_joining_mid_session_at_connect() -> None:
    (call,) = run(ev(1, 50, 200), ev(2, 80, 400))
    assert summary(call) == {
        "customer": "18888888888", "outcome": "answered", "end_source": "explicit", "observed_from": 200,
        "offered": None, "connected": 50, "ended": 80, "ring_s": None, "talk_s": 30.0, "events": 2, "duplicates": 0,
    }  # fmt: skip


def test_rule_joining_at_the_end() -> None:
    (call,) = run(ev(1, 80, 400))
    assert summary(call) == {
        "customer": "18888888888", "outcome": "unknown", "end_source": "explicit", "observed_from": 400,
        "offered": None, "connected": None, "ended": 80, "ring_s": None, "talk_s": None, "events": 1, "duplicates": 0,
    }  # fmt: skip


def test_rule_voice_new_call_supersedes_the_open_one() -> None:
    a = "13900000001"
    b = "13900000002"
    first, second = run(
        ev(1, 0, 100, a), ev(2, 4, 200, a), ev(3, 300, 100, b), ev(4, 303, 200, b), ev(5, 400, 400, b)
    )
    assert summary(first) == {
        "customer": a, "outcome": "answered", "end_source": "superseded", "observed_from": 100,
        "offered": 0, "connected": 4, "ended": 300, "ring_s": 4.0, "talk_s": None, "events": 2, "duplicates": 0,
    }  # fmt: skip
    assert summary(second)["end_source"] == "explicit"
    assert summary(second)["talk_s"] == 97.0


def test_rule_voice_ringing_call_superseded_is_not_answered() -> None:
    first, _ = run(ev(1, 0, 100, "13900000001"), ev(2, 30, 100, "13900000002"))
    assert first.outcome == "not_answered"
    assert first.end_source == "superseded"


def test_rule_om_shares_the_agent_line_with_phone() -> None:
    assert stream_of(1, ev(1, 0, 100, channel="om").hash) == stream_of(
        1, ev(2, 0, 100, "1", channel="phone").hash
    )


def test_rule_late_end_of_a_long_superseded_call_is_measured_from_the_supersession() -> None:
    # A's call lasted 5 minutes before B's offer took the line; A's own 400 comes 400 s after that.
    a, b = "13900000001", "13900000002"
    first, second = run(ev(1, 0, 100, a), ev(2, 4, 200, a), ev(3, 300, 100, b), ev(4, 700, 400, a))
    assert first.end_source == "superseded"
    assert first.ended_at == T0 + 300 * S
    assert first.duplicate_count == 1
    assert second.is_open
    assert second.offered_at == T0 + 300 * S


def test_rule_late_end_of_a_superseded_call_does_not_supersede_the_next() -> None:
    a, b = "13900000001", "13900000002"
    first, second = run(ev(1, 0, 100, a), ev(2, 60, 100, b), ev(3, 61, 400, a), ev(4, 70, 200, b))
    assert first.end_source == "superseded"
    assert first.duplicate_count == 1
    assert second.is_open
    assert second.connected_at == T0 + 70 * S


@pytest.mark.parametrize("channel", ["im", "oim"])
def test_rule_chat_holds_several_sessions_at_once(channel: str) -> None:
    one = [ev(1, 0, 100, "u1", channel), ev(2, 5, 200, "u1", channel), ev(3, 500, 400, "u1", channel)]
    two = [ev(4, 10, 100, "u2", channel), ev(5, 12, 200, "u2", channel), ev(6, 400, 400, "u2", channel)]
    assert stream_of(1, one[0].hash) != stream_of(1, two[0].hash)
    (first,) = run(*one)
    (second,) = run(*two)
    assert first.end_source == second.end_source == "explicit"
    assert first.talk_s == 495.0
    assert second.talk_s == 388.0


def test_rule_unheard_ringing_times_out_at_the_next_event() -> None:
    first, second = run(ev(1, 0, 100), ev(2, 1000, 100))
    assert summary(first) == {
        "customer": "18888888888", "outcome": "unknown", "end_source": "timeout", "observed_from": 100,
        "offered": 0, "connected": None, "ended": 0, "ring_s": None, "talk_s": None, "events": 1, "duplicates": 0,
    }  # fmt: skip
    assert second.is_open


def test_rule_unheard_connected_call_times_out() -> None:
    first, second = run(ev(1, 0, 100), ev(2, 5, 200), ev(3, 5 * 3600, 200))
    assert first.end_source == "timeout"
    assert first.outcome == "answered"
    assert first.ended_at == T0 + 5 * S
    assert first.talk_s is None
    assert second.observed_from == 200


def test_rule_stale_open_sessions_read_as_timed_out() -> None:
    (ringing,) = run(ev(1, 0, 100))
    assert not stale(ringing, T0 + 599 * S, TIMEOUTS)
    assert stale(ringing, T0 + 601 * S, TIMEOUTS)
    (connected,) = run(ev(1, 0, 100), ev(2, 5, 200))
    assert not stale(connected, T0 + 3600 * S, TIMEOUTS)
    assert not timed_out(True, T0 + 5 * S, T0 + 4 * 3600 * S, TIMEOUTS)
    assert timed_out(True, T0 + 5 * S, T0 + 5 * S + 4 * 3600 * S + 1, TIMEOUTS)


def test_rule_session_key_separates_agents_apps_and_sites() -> None:
    base = parse_hash(f"#?mobile=1&status=100&type=im&{AGENT}")
    other_agent = parse_hash("#?mobile=1&status=100&type=im&agentEmail=bob%40example.com&sdkAppId=1400")
    other_app = parse_hash("#?mobile=1&status=100&type=im&agentEmail=ann%40example.com&sdkAppId=1500")
    keys = {stream_of(1, base), stream_of(1, other_agent), stream_of(1, other_app), stream_of(2, base)}
    assert len(keys) == 4


def test_rule_missing_fields_are_filled_from_later_events() -> None:
    first = CallEvent("a", T0, 100, parse_hash(f"#?mobile=1&status=100&type=phone&{AGENT}"))
    later = CallEvent("b", T0 + S, 200, parse_hash(f"#?mobile=1&status=200&type=phone&nickName=Liu&{AGENT}"))
    (call,) = fold("s", [first, later], TIMEOUTS)
    assert call.hash.customer_nickname == "Liu"


def test_rule_order_does_not_matter() -> None:
    history = [
        ev(1, 0, 100, "a"), ev(2, 3, 200, "a"), ev(3, 50, 400, "a"), ev(4, 51, 400, "a"),
        ev(5, 60, 100, "b"), ev(6, 90, 100, "c"), ev(7, 95, 200, "c"), ev(8, 20000, 100, "c"),
    ]  # fmt: skip
    # Redelivered events never reach the fold (the log stores each event once): only order varies here.
    # The database-level property tests cover redelivery and batching.
    expected = [summary(s) | {"id": s.id} for s in run(*history)]
    assert len(expected) == 4
    rng = random.Random(7)
    for _ in range(50):
        shuffled = rng.sample(history, len(history))
        assert [summary(s) | {"id": s.id} for s in run(*shuffled)] == expected
