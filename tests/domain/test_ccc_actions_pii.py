"""CCC hash parsing, agent actions, and the PII policy: pure domain."""

from __future__ import annotations

import pytest

from service.domain.actions import PageHash, PageMessage, actions_for_page, describe
from service.domain.ccc import parse_hash
from service.domain.pii import PiiPolicy, mask


def test_parses_the_vendor_example_and_our_names() -> None:
    call = parse_hash(
        "#?mobile=18888888888&type=phone&status=100&agentEmail=a%40x.com&agentMobile=139&agentNickName=%E5%B0%8F%E6%9D%8E"
        "&agentRoleId=admin&sdkAppId=1400000000&userId=u1&nickName=Liu&avatar=https%3A%2F%2Fimg%2Fa.png"
    )
    assert call.status == 100
    assert call.channel == "phone"
    assert call.agent_email == "a@x.com"
    assert call.agent_nickname == "小李"
    assert call.agent_role_id == "admin"
    assert call.sdk_app_id == "1400000000"
    assert call.customer_mobile == "18888888888"
    assert call.customer_user_id == "u1"
    assert call.customer_avatar == "https://img/a.png"


def test_hash_router_form_and_unknown_parameters() -> None:
    call = parse_hash("#/tickets/list?status=200&type=im&userId=o_abc&ticket=42&flag")
    assert call.route == "/tickets/list"
    assert call.status == 200
    assert call.customer == "o_abc"
    assert call.extra == {"ticket": "42", "flag": ""}


@pytest.mark.parametrize("raw", ["", "#", "#/", "#?", "#?status=300", "#?status=abc", "#/crm"])
def test_no_status_is_not_a_call_event(raw: str) -> None:
    assert not parse_hash(raw).is_call_event


def test_plus_stays_plus_and_missing_fields_are_none() -> None:
    call = parse_hash("#?mobile=+8618888888888&status=400")
    assert call.customer_mobile == "+8618888888888"
    assert call.agent_email is None
    assert call.channel is None
    assert call.agent == ""


def test_agent_falls_back_to_mobile() -> None:
    assert parse_hash("#?agentMobile=139&status=100").agent == "139"


def page_message(seq: int, event: str, message: object, event_id: str | None = None) -> PageMessage:
    data = {"source": "ccc-sdk", "payload": {"event": event, "message": message}}
    return PageMessage(event_id or f"m{seq}", seq, 1000 + seq, data)


def test_actions_link_to_the_latest_hash_by_seq() -> None:
    hashes = [
        PageHash(1, "h1", "s1", "ann@x.com"),
        PageHash(4, "h4", "s2", "ann@x.com"),
        PageHash(6, "h6", None, "ann@x.com"),
    ]
    messages = [
        page_message(2, "callOut", {"phoneNumber": "158", "desc": "Mr. Liu"}),
        page_message(5, "sendCard", {"header": "H", "desc": "D", "pic": "P", "url": "U", "extra": 1}),
        page_message(7, "sendTextMessage", "hello"),
    ]
    found = actions_for_page("page", hashes, messages)
    assert [(a.action, a.session_id, a.agent_email) for a in found] == [
        ("call_out", "s1", "ann@x.com"),
        ("send_card", "s2", "ann@x.com"),
        ("sendTextMessage", None, "ann@x.com"),
    ]
    assert found[0].details == {"phone_number": "158", "label": "Mr. Liu"}
    assert found[1].details == {"header": "H", "desc": "D", "pic": "P", "url": "U"}
    assert found[2].details == {"message": "hello"}


def test_action_before_any_hash_has_no_session_or_agent() -> None:
    (action,) = actions_for_page(
        "page", [PageHash(2, "h2", "s1", "a")], [page_message(1, "callOut", {"phoneNumber": "1"})]
    )
    assert action.session_id is None
    assert action.agent_email is None


def test_only_ccc_sdk_messages_are_actions() -> None:
    assert describe({"source": "other", "payload": {"event": "sendCard"}}) is None
    assert describe("text") is None
    assert describe({"source": "ccc-sdk", "payload": "odd"}) == ("unknown", {"payload": "odd"})


def test_mask_keeps_first_three_and_last_four() -> None:
    assert mask("18888888888") == "188****8888"
    assert mask("12345") == "*2345"
    assert mask("123") == "***"


def test_hmac_is_stable_keyed_and_leaves_the_rest_of_the_hash() -> None:
    policy = PiiPolicy("hmac", b"0123456789abcdef")
    raw = "#/t?mobile=18888888888&status=100&type=phone&userId=u%201&agentEmail=a%40x.com"
    protected = policy.protect_hash(raw)
    assert "18888888888" not in protected
    assert protected.startswith("#/t?mobile=h%3A")
    assert protected.endswith(
        "&status=100&type=phone&userId="
        + protected.split("userId=")[1].split("&")[0]
        + "&agentEmail=a%40x.com"
    )
    assert policy.protect_hash(raw) == protected
    assert PiiPolicy("hmac", b"another key 1234").protect_hash(raw) != protected
    call = parse_hash(protected)
    assert call.customer_mobile is not None
    assert call.customer_mobile.startswith("h:")


def test_callout_number_is_protected_in_the_event() -> None:
    event = {
        "type": "message",
        "data": {
            "source": "ccc-sdk",
            "payload": {"event": "callOut", "message": {"phoneNumber": "15889000000", "desc": "x"}},
        },
    }
    protected = PiiPolicy("mask").protect_event(event)
    assert protected["data"]["payload"]["message"] == {"phoneNumber": "158****0000", "desc": "x"}
    assert event["data"]["payload"]["message"]["phoneNumber"] == "15889000000"  # type: ignore[index]


def test_hmac_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        PiiPolicy("hmac", b"short")


def test_a_number_is_put_in_its_national_form_before_it_is_protected() -> None:
    # The page's number and CCC's (0086 form) must give one token, for the join (docs/call-records.md).
    policy = PiiPolicy("hmac", b"0123456789abcdef")
    forms = ["13012345678", "%2B86%20130%201234%205678", "008613012345678", "8613012345678"]
    tokens = {
        parse_hash(policy.protect_hash(f"#?mobile={form}&status=100")).customer_mobile for form in forms
    }
    assert tokens == {policy.protect("13012345678")}
    callout = {
        "type": "message",
        "data": {
            "source": "ccc-sdk",
            "payload": {"event": "callOut", "message": {"phoneNumber": "+8613012345678"}},
        },
    }
    protected = policy.protect_event(callout)
    assert protected["data"]["payload"]["message"]["phoneNumber"] == policy.protect("13012345678")
    # A user id is not a number: kept as it is before protection.
    assert parse_hash(policy.protect_hash("#?userId=0086abc")).customer_user_id == policy.protect("0086abc")
    # raw stores the page's number as sent.
    assert PiiPolicy().protect_hash("#?mobile=%2B8613012345678") == "#?mobile=%2B8613012345678"
