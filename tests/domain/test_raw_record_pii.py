"""The raw log's copy of a CCC record keeps the customer protected as the page's raw events are."""

from __future__ import annotations

from service.domain.call_record_pii import protect_raw_record
from service.domain.pii import PiiPolicy

MASK = PiiPolicy("mask")
HMAC = PiiPolicy("hmac", b"k" * 32)


def test_raw_mode_returns_the_record_untouched() -> None:
    record = {"Caller": "008613800000003", "Direction": 0}
    assert protect_raw_record(record, PiiPolicy("raw")) is record


def test_the_customer_side_follows_the_direction_and_both_sides_without_one() -> None:
    record = {"Caller": "008613800000003", "Callee": "+8613900000004", "SeatUser": {"UserId": "ann@x.com"}}
    both = protect_raw_record(record, HMAC)
    assert both["Caller"] == HMAC.protect("13800000003")
    assert both["Callee"] == HMAC.protect("13900000004")
    assert both["SeatUser"] == {"UserId": "ann@x.com"}
    assert record["Caller"] == "008613800000003"  # the input is not changed
    inbound = protect_raw_record({**record, "Direction": 0}, MASK)
    assert inbound["Callee"] == "+8613900000004" and inbound["Caller"] != record["Caller"]


def test_locations_recordings_and_chat_users_are_protected_and_odd_values_kept() -> None:
    record = {
        "Direction": 1,
        "Callee": "",
        "TelLocation": {"TelNumber": "13800000003", "City": "Shenzhen"},
        "EndpointUser": 13800000003,
        "UserId": "wx-user-1",
        "ClientUserId": None,
    }
    protected = protect_raw_record(record, HMAC)
    assert protected["Callee"] == ""
    assert protected["TelLocation"] == {"TelNumber": HMAC.protect("13800000003"), "City": "Shenzhen"}
    assert protected["EndpointUser"] == HMAC.protect("13800000003")
    assert protected["UserId"] == HMAC.protect("wx-user-1")
    assert protected["ClientUserId"] is None
    assert protect_raw_record({"EndpointUser": True, "Caller": ["x"]}, HMAC) == {
        "EndpointUser": True,
        "Caller": ["x"],
    }
