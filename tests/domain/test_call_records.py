"""CCC's raw records (pushes and pulled records) into call records, and their merge."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from tencentcloud.ccc.v20200210 import models

from service.domain.call_merge import merge
from service.domain.call_parsing import (
    parse_cdr_push,
    parse_im_cdr,
    parse_imcdr_push,
    parse_push,
    parse_recording_push,
    parse_tel_cdr,
    parse_video_cdr_push,
)
from service.domain.call_record_pii import protect_record, protect_recording
from service.domain.call_records import (
    CallLeg,
    CallRecord,
    CallRecordError,
    RecordingRef,
    SatisfactionKey,
)
from service.domain.end_status import CHAT_END_STATUS, PHONE_END_STATUS, end_status_code, end_status_string
from service.domain.instants import ms_from_s, s_ceil, s_floor
from service.domain.numbers import normalise_number
from service.domain.pii import PiiPolicy

APP = 1400000000
SESSION = "e97be0ab-1ef6-4ad2-a8c4-2b2bbfb18e55"

# The CDR push sample as the document publishes it: "Duration" twice, lower-case key/label inside
# PostIVRKeyPressed, IVRKeyPressed null (reference §2.5; SdkAppId and the agent's email anonymised).
DOCUMENTED_CDR_PUSH = """{
  "SdkAppId": 1400000000,
  "SessionId": "e97be0ab-1ef6-4ad2-a8c4-2b2bbfb18e55",
  "QueuedSkillGroupId": 1072,
  "Direction": 1,
  "StartTimestamp": 1608130636,
  "RingTimestamp": 1608130639,
  "AcceptTimestamp": 0,
  "EndedTimestamp": 1608130651,
  "Duration": 0,
  "EndStatusString": "error",
  "HungUpSide": "seat",
  "Caller": "008602066247698",
  "Callee": "008618621520280",
  "Duration": 0,
  "IVRKeyPressed": null,
  "PostIVRKeyPressed": [{"key": "1", "label": "非常满意"}],
  "SeatUser": {
    "Mail": "agent@example.com", "Name": "agent", "Nick": "Agent",
    "Phone": "", "UserId": "agent@example.com", "StaffNumber": "007",
    "SkillGroupNameList": ["groupA"]
  },
  "ServeParticipants": [{
    "Mail": "agent@example.com", "Phone": "", "RecordId": "1608130636",
    "StartTimestamp": 1608130636, "RingTimestamp": 1608130639,
    "AcceptTimestamp": 0, "EndedTimestamp": 1608130651, "Type": "staffSeat"
  }]
}"""
DOCUMENTED_RECORD_PUSH = {
    "SdkAppId": 1400264214,
    "RecordId": "1608130650",
    "SessionId": SESSION,
    "Timestamp": 1608130650,
    "EndpointUser": "agent@example.com",
    "RecordURL": "http://recorder-1.cos.ap-shanghai.myqcloud.com/1608130650.mp3",
}
# The voicemail sample sends EndpointUser as a JSON number, without a country code.
DOCUMENTED_VOICEMAIL_PUSH = {
    "SdkAppId": 1400000000,
    "SessionId": SESSION,
    "Timestamp": 1608130700,
    "RecordURL": "https://example.com/voicemail.mp3",
    "EndpointUser": 13123456789,
}


def inbound_tel_cdr(**overrides: Any) -> dict[str, Any]:
    """A TelCdrInfo of an answered inbound call, as the SDK's to_json_string writes it (all fields, nulls)."""
    info: dict[str, Any] = {
        "Caller": "008613012345678",
        "Callee": "0086075586013388",
        "Time": 1700000000,
        "Direction": 0,
        "CallType": 2,
        "Duration": 95,
        "RecordURL": "https://rec.example.com/customer.mp3",
        "RecordId": "rec-customer",
        "SeatUser": {"Mail": "alice@example.com", "UserId": "alice@example.com", "Name": "Alice"},
        "EndStatus": 1,
        "EndStatusString": "ok",
        "SkillGroup": "sales",
        "CallerLocation": "广东深圳",
        "IVRDuration": 12,
        "StartTimestamp": 1700000000,
        "QueuedTimestamp": 1700000012,
        "RingTimestamp": 1700000020,
        "AcceptTimestamp": 1700000025,
        "EndedTimestamp": 1700000120,
        "IVRKeyPressed": ["1", "2"],
        "IVRKeyPressedEx": [{"Key": "1", "Label": "sales"}, {"Key": "2", "Label": "new"}],
        "HungUpSide": "user",
        "ServeParticipants": [
            {
                "Mail": "alice@example.com",
                "Sequence": 0,
                "Type": "staffSeat",
                "StartTimestamp": 1700000020,
                "RingTimestamp": 1700000020,
                "AcceptTimestamp": 1700000025,
                "EndedTimestamp": 1700000120,
                "EndStatusString": "ok",
                "SkillGroupId": 7,
                "SkillGroupName": "sales",
                "RecordId": "rec-alice",
                "RecordURL": "https://rec.example.com/alice.mp3",
            }
        ],
        "SkillGroupId": 7,
        "PostIVRKeyPressed": [{"Key": "1", "Label": "非常满意"}],
        "PostIVRKeyPressedEx": [{"Key": "1", "Label": "非常满意", "Timestamp": 1700000121000}],
        "QueuedSkillGroupId": 7,
        "QueuedSkillGroupName": "sales",
        "SessionId": "7cb26a84-83b2-42d8-a19b-7dae78e9b78e",
        "Uui": "order-42",
        "CustomRecordURL": "https://cos.example.com/customer.mp3",
    }
    info.update(overrides)
    model = models.TelCdrInfo()
    model.from_json_string(json.dumps(info))
    result: dict[str, Any] = json.loads(model.to_json_string())
    return result


# --- the documented samples -----------------------------------------------------------------------------


def test_the_documented_cdr_push_sample() -> None:
    body = json.loads(DOCUMENTED_CDR_PUSH)  # the duplicate key: the last one counts, as in every JSON parser
    record = parse_cdr_push(body)
    assert record == CallRecord(
        sdk_app_id=APP,
        session_id=SESSION,
        channel="phone",
        direction="outbound",
        caller="008602066247698",
        callee="008618621520280",
        customer="18621520280",  # outbound: the callee, normalised
        agent_email="agent@example.com",
        start_ms=1608130636000,
        ring_ms=1608130639000,
        accept_ms=None,  # 0: never answered
        end_ms=1608130651000,
        duration_s=0,
        end_status="error",
        end_status_code=0,  # the older list's 0 "error"
        hung_up_by="seat",
        queued_skill_group_id=1072,
        satisfaction=(SatisfactionKey("1", "非常满意"),),
        record_ids=("1608130636",),
        legs=(
            CallLeg(
                agent_email="agent@example.com",
                type="staffSeat",
                start_ms=1608130636000,
                ring_ms=1608130639000,
                end_ms=1608130651000,
                record_id="1608130636",
            ),
        ),
        sources=("cdr",),
    )
    assert parse_push("cdr", body) == record


def test_the_documented_recording_and_voicemail_pushes() -> None:
    record = parse_recording_push(DOCUMENTED_RECORD_PUSH)
    assert record == RecordingRef(
        kind="record",
        sdk_app_id=1400264214,
        session_id=SESSION,
        record_id="1608130650",
        endpoint_user="agent@example.com",
        url="http://recorder-1.cos.ap-shanghai.myqcloud.com/1608130650.mp3",
        timestamp_ms=1608130650000,
    )
    voicemail = parse_push("voicemail", DOCUMENTED_VOICEMAIL_PUSH)
    assert voicemail == RecordingRef(
        kind="voicemail",
        sdk_app_id=APP,
        session_id=SESSION,
        endpoint_user="13123456789",  # a JSON number, read as its digits
        url="https://example.com/voicemail.mp3",
        timestamp_ms=1608130700000,
    )
    assert parse_push("record", {**DOCUMENTED_RECORD_PUSH, "CustomRecordURL": "https://cos/x"}) == (
        RecordingRef(**{**record.__dict__, "custom_url": "https://cos/x"})
    )


def test_a_pulled_tel_cdr_every_field() -> None:
    record = parse_tel_cdr(inbound_tel_cdr(), APP)
    assert record.key == (APP, "7cb26a84-83b2-42d8-a19b-7dae78e9b78e")
    assert record.channel == "phone"
    assert record.direction == "inbound"
    assert (record.caller, record.callee, record.customer) == (
        "008613012345678",
        "0086075586013388",
        "13012345678",  # inbound: the caller
    )
    assert record.agent_email == "alice@example.com"
    assert (record.start_ms, record.queued_ms, record.ring_ms, record.accept_ms, record.end_ms) == (
        1700000000000,
        1700000012000,
        1700000020000,
        1700000025000,
        1700000120000,
    )
    assert record.time_ms == 1700000000000
    assert record.ivr_s == 12  # IVRDuration as sent
    assert record.queue_s == 13  # AcceptTimestamp - QueuedTimestamp
    assert record.duration_s == 95
    assert (record.end_status, record.end_status_code) == ("ok", 1)
    assert record.hung_up_by == "user"
    assert (record.queued_skill_group_id, record.queued_skill_group_name) == (7, "sales")
    assert record.ivr_keys == ("1", "2")
    assert record.satisfaction == (SatisfactionKey("1", "非常满意"),)
    assert record.uui == "order-42"
    assert record.transfers == 0
    assert record.record_ids == ("rec-alice", "rec-customer")
    assert record.record_urls == (
        "https://cos.example.com/customer.mp3",
        "https://rec.example.com/alice.mp3",
        "https://rec.example.com/customer.mp3",
    )
    assert record.legs == (
        CallLeg(
            sequence=0,
            agent_email="alice@example.com",
            type="staffSeat",
            start_ms=1700000020000,
            ring_ms=1700000020000,
            accept_ms=1700000025000,
            end_ms=1700000120000,
            end_status="ok",
            skill_group_id=7,
            skill_group_name="sales",
            record_id="rec-alice",
            record_url="https://rec.example.com/alice.mp3",
        ),
    )
    assert record.sources == ("DescribeTelCdr",)


def test_a_tel_cdr_as_the_api_answers_it_without_the_sdk_nulls() -> None:
    info = {key: value for key, value in inbound_tel_cdr().items() if value is not None}
    assert parse_tel_cdr(info, APP) == parse_tel_cdr(inbound_tel_cdr(), APP)


def test_an_empty_tel_cdr_model_needs_its_session_id() -> None:
    empty = json.loads(models.TelCdrInfo().to_json_string())
    with pytest.raises(CallRecordError, match="SessionId: missing") as raised:
        parse_tel_cdr(empty, APP)
    assert raised.value.field == "SessionId"
    bare = parse_tel_cdr({**empty, "SessionId": "s"}, APP)
    assert bare == CallRecord(sdk_app_id=APP, session_id="s", channel="phone", sources=("DescribeTelCdr",))


def test_derived_durations_when_ccc_leaves_them_out() -> None:
    abandoned = parse_cdr_push(
        {
            "SdkAppId": APP,
            "SessionId": "s",
            "Direction": 0,
            "StartTimestamp": 1700000000,
            "QueuedTimestamp": 1700000010,
            "AcceptTimestamp": 0,
            "EndedTimestamp": 1700000070,
            "EndStatusString": "waitingGiveUp",
        }
    )
    assert abandoned.ivr_s == 10  # QueuedTimestamp - StartTimestamp
    assert abandoned.queue_s == 60  # EndedTimestamp - QueuedTimestamp: abandoned in the queue
    assert abandoned.duration_s == 0  # never accepted
    assert abandoned.end_status_code == 103
    answered = parse_cdr_push(
        {"SdkAppId": APP, "SessionId": "s", "AcceptTimestamp": 1700000030, "EndedTimestamp": 1700000090}
    )
    assert (answered.duration_s, answered.queue_s, answered.ivr_s) == (60, None, None)


def test_satisfaction_from_the_ex_field_and_tolerant_keys() -> None:
    ex_only = parse_tel_cdr(
        inbound_tel_cdr(PostIVRKeyPressed=None, PostIVRKeyPressedEx=[{"Key": "noInput", "Label": "none"}]),
        APP,
    )
    assert ex_only.satisfaction == (SatisfactionKey("noInput", "none"),)
    bare = parse_cdr_push({"SdkAppId": APP, "SessionId": "s", "PostIVRKeyPressed": ["3", {"Key": 2}]})
    assert bare.satisfaction == (SatisfactionKey("3"), SatisfactionKey("2"))
    assert parse_tel_cdr(inbound_tel_cdr(Uui=None, UUI="upper"), APP).uui == "upper"


def test_number_protection_leaves_no_customer_number() -> None:
    record = parse_tel_cdr(inbound_tel_cdr(Caller="", ProtectedCaller="p-1"), APP)
    assert (record.caller, record.customer) == (None, None)


def test_direction_from_call_type_when_direction_is_missing() -> None:
    def direction(**fields: Any) -> str | None:
        return parse_cdr_push({"SdkAppId": APP, "SessionId": "s", **fields}).direction

    assert direction(CallType=1) == "outbound"
    assert direction(CallType=5) == "outbound"
    assert direction(CallType=2) == "inbound"
    assert direction(CallType=3) == "inbound"
    assert direction(CallType=6) is None  # internal
    assert direction(Direction=7) is None
    assert direction(Direction=0, CallType=1) == "inbound"


def test_integers_and_numbers_as_strings_are_read() -> None:
    record = parse_cdr_push(
        {"SdkAppId": "1400000000", "SessionId": "s", "StartTimestamp": "1700000000", "Caller": 8613012345678}
    )
    assert (record.sdk_app_id, record.start_ms, record.caller) == (APP, 1700000000000, "8613012345678")
    assert parse_cdr_push({"SdkAppId": 1400000000.0, "SessionId": "s"}).sdk_app_id == APP


# --- chats and video ------------------------------------------------------------------------------------


def test_an_imcdr_push() -> None:
    record = parse_imcdr_push(
        {
            "SdkAppId": APP,
            "SessionId": "chat-1",
            "StartTimestamp": 1700000000,
            "QueuedTimestamp": 1700000005,
            "RingTimestamp": 1700000007,
            "AcceptTimestamp": 1700000009,
            "EndedTimestamp": 1700000309,
            "QueuedSkillGroupId": 3,
            "QueuedSkillGroupName": "online",
            "Duration": 300,
            "IVRDuration": 5,
            "EndStatusString": "autoFinished",
            "UserId": "wx-user-1",
            "UserNickName": "Bob",
            "IVRKeyPressed": [],
            "SeatUser": {"Mail": "alice@example.com"},
            "Satisfaction": {"id": "104", "content": "满意"},
        }
    )
    assert record == CallRecord(
        sdk_app_id=APP,
        session_id="chat-1",
        channel="chat",
        direction="inbound",
        customer="wx-user-1",
        agent_email="alice@example.com",
        start_ms=1700000000000,
        queued_ms=1700000005000,
        ring_ms=1700000007000,
        accept_ms=1700000009000,
        end_ms=1700000309000,
        ivr_s=5,
        queue_s=4,
        duration_s=300,
        end_status="autoFinished",
        end_status_code=108,  # the chat table: user reply timeout
        queued_skill_group_id=3,
        queued_skill_group_name="online",
        satisfaction=(SatisfactionKey("104", "满意"),),
        sources=("imcdr",),
    )


def test_a_pulled_im_cdr() -> None:
    model = models.IMCdrInfo()
    model.from_json_string(
        json.dumps(
            {
                "Id": "cdr-9",
                "Duration": 120,
                "EndStatus": 109,
                "Nickname": "Bob",
                "Type": 2,
                "StaffId": "alice@example.com",
                "Timestamp": 1700000000,
                "SessionId": "chat-1",
                "SkillGroupId": "3",  # a string in IMCdrInfo
                "SkillGroupName": "online",
                "Satisfaction": {"Id": 1, "Label": "good"},
                "ClientUserId": "wx-user-1",
            }
        )
    )
    record = parse_im_cdr(json.loads(model.to_json_string()), APP)
    assert record == CallRecord(
        sdk_app_id=APP,
        session_id="chat-1",
        channel="chat",
        direction="inbound",
        customer="wx-user-1",
        agent_email="alice@example.com",
        time_ms=1700000000000,
        duration_s=120,
        end_status=None,  # 109 "the user ended it" has no string in the push's list
        end_status_code=109,
        queued_skill_group_id=3,
        queued_skill_group_name="online",
        satisfaction=(SatisfactionKey("1", "good"),),
        sources=("DescribeIMCdrs",),
    )


def test_a_chat_merges_push_and_pull() -> None:
    push = parse_imcdr_push(
        {"SdkAppId": APP, "SessionId": "chat-1", "StartTimestamp": 1700000000, "EndStatusString": "ok"}
    )
    pull = parse_im_cdr({"SessionId": "chat-1", "EndStatus": 101, "ClientUserId": "wx-user-1"}, APP)
    (merged,) = merge(push, pull)
    assert merged.start_ms == 1700000000000  # only the push has it
    assert (merged.end_status, merged.end_status_code) == ("seatForward", 101)  # the pull wins
    assert merged.customer == "wx-user-1"
    assert merged.channel == "chat"
    assert merged.sources == ("DescribeIMCdrs", "imcdr")


def test_a_video_cdr_push_has_strings_only() -> None:
    record = parse_video_cdr_push(
        {
            "SdkAppId": APP,
            "SessionId": "v-1",
            "StartTimestamp": 1700000000,
            "AcceptTimestamp": 1700000004,
            "EndedTimestamp": 1700000064,
            "EndStatusString": "ok",
            "UserId": "visitor-3",
        }
    )
    assert (record.channel, record.customer, record.duration_s) == ("video", "visitor-3", 60)
    assert (record.end_status, record.end_status_code) == ("ok", None)
    assert parse_push("videoCdr", {"SdkAppId": APP, "SessionId": "v"}).sources == ("videoCdr",)  # type: ignore[union-attr]


def test_an_unknown_push_action() -> None:
    with pytest.raises(CallRecordError, match="unknown push action"):
        parse_push("staffStatus", {})


# --- end statuses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "string"), sorted(PHONE_END_STATUS.items()))
def test_phone_end_status_both_ways(code: int, string: str) -> None:
    assert end_status_string(code) == string
    assert end_status_code(string) == code
    by_code = parse_tel_cdr({"SessionId": "s", "EndStatus": code}, APP)
    by_string = parse_cdr_push({"SdkAppId": APP, "SessionId": "s", "EndStatusString": string})
    assert (by_code.end_status, by_code.end_status_code) == (string, code)
    assert (by_string.end_status, by_string.end_status_code) == (string, code)


def test_the_reference_tables_spot_checks() -> None:
    assert PHONE_END_STATUS[17] == "seatGiveUp"
    assert PHONE_END_STATUS[104] == "ringingGiveUp"
    assert PHONE_END_STATUS[222] == "voiceMailReached"
    assert PHONE_END_STATUS[231] == "callTerminatedByAPI"
    assert PHONE_END_STATUS[108] == "restrictedCallee"
    assert CHAT_END_STATUS[108] == "autoFinished"  # the same code means something else in a chat
    assert end_status_code("outboundForward") is None  # a push string with no code anywhere
    assert end_status_string(109, "chat") is None


def test_unknown_end_statuses_are_kept_as_given() -> None:
    code_only = parse_tel_cdr({"SessionId": "s", "EndStatus": 999}, APP)
    assert (code_only.end_status, code_only.end_status_code) == (None, 999)
    string_only = parse_cdr_push({"SdkAppId": APP, "SessionId": "s", "EndStatusString": "brandNew"})
    assert (string_only.end_status, string_only.end_status_code) == ("brandNew", None)
    both = parse_tel_cdr({"SessionId": "s", "EndStatus": 1, "EndStatusString": "busy"}, APP)
    assert (both.end_status, both.end_status_code) == ("busy", 1)  # disagreeing: both as sent
    assert parse_cdr_push({"SdkAppId": APP, "SessionId": "s", "HungUpSide": "robot"}).hung_up_by is None
    assert parse_tel_cdr({"SessionId": "s", "HungUpSide": "system"}, APP).hung_up_by == "system"


# --- bad types ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"SessionId": "s"}, "SdkAppId"),
        ({"SdkAppId": APP}, "SessionId"),
        ({"SdkAppId": True, "SessionId": "s"}, "SdkAppId"),
        ({"SdkAppId": APP, "SessionId": ["s"]}, "SessionId"),
        ({"SdkAppId": APP, "SessionId": "s", "Direction": "in"}, "Direction"),
        ({"SdkAppId": APP, "SessionId": "s", "StartTimestamp": 1.5}, "StartTimestamp"),
        ({"SdkAppId": APP, "SessionId": "s", "StartTimestamp": -1}, "StartTimestamp"),
        ({"SdkAppId": APP, "SessionId": "s", "EndedTimestamp": 1700000000000}, "EndedTimestamp"),
        ({"SdkAppId": APP, "SessionId": "s", "Duration": -3}, "Duration"),
        ({"SdkAppId": APP, "SessionId": "s", "Caller": {"n": 1}}, "Caller"),
        ({"SdkAppId": APP, "SessionId": "s", "Caller": False}, "Caller"),
        ({"SdkAppId": APP, "SessionId": "s", "SeatUser": "alice"}, "SeatUser"),
        ({"SdkAppId": APP, "SessionId": "s", "SeatUser": {"Mail": 3.5}}, "SeatUser.Mail"),
        ({"SdkAppId": APP, "SessionId": "s", "IVRKeyPressed": "123"}, "IVRKeyPressed"),
        ({"SdkAppId": APP, "SessionId": "s", "IVRKeyPressed": [None]}, "IVRKeyPressed[0]"),
        (
            {"SdkAppId": APP, "SessionId": "s", "PostIVRKeyPressed": [{"Label": "x"}]},
            "PostIVRKeyPressed[0].Key",
        ),
        ({"SdkAppId": APP, "SessionId": "s", "ServeParticipants": {}}, "ServeParticipants"),
        (
            {"SdkAppId": APP, "SessionId": "s", "ServeParticipants": [{}, {"AcceptTimestamp": "soon"}]},
            "ServeParticipants[1].AcceptTimestamp",
        ),
        ({"SdkAppId": APP, "SessionId": "s", "ServeParticipants": [7]}, "ServeParticipants[0]"),
    ],
)
def test_a_bad_value_names_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(CallRecordError) as raised:
        parse_cdr_push(body)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_a_record_that_is_not_an_object() -> None:
    with pytest.raises(CallRecordError, match="record: expected a JSON object, got an array"):
        parse_cdr_push([])  # type: ignore[arg-type]
    with pytest.raises(CallRecordError) as raised:
        parse_recording_push({"SdkAppId": APP, "SessionId": "s", "Timestamp": "later"}, "voicemail")
    assert raised.value.field == "Timestamp"


# --- numbers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "national"),
    [
        ("008618621520280", "18621520280"),  # the CDR sample's mobile
        ("008602066247698", "02066247698"),  # the CDR sample's landline, trunk 0 kept
        ("0086075512345678", "075512345678"),  # the API example's landline
        ("0086075586013388", "075586013388"),  # the Web SDK's callIn
        ("008613012345678", "13012345678"),  # the API's Phones filter example
        ("+8613012345678", "13012345678"),
        ("13123456789", "13123456789"),  # the voicemail sample: bare
        ("8613012345678", "13012345678"),  # a bare 86 before a mobile
        ("862066247698", "862066247698"),  # a bare 86 before anything else is not a country code
        ("+862066247698", "02066247698"),  # E.164 landline: the trunk 0 comes back
        ("+864001234567", "4001234567"),  # service numbers are dialled without it
        ("+86 130-1234-5678", "13012345678"),
        ("0086 20 6624 7698", "02066247698"),
        ("02066247698", "02066247698"),
        ("+14155550100", "+14155550100"),  # another country: left alone
        ("p-7f3a", "p-7f3a"),  # not a number
        ("", ""),
    ],
)
def test_normalise_number(raw: str, national: str) -> None:
    assert normalise_number(raw) == national


def test_every_form_of_one_number_is_one_number() -> None:
    forms = ["008613012345678", "+8613012345678", "8613012345678", "13012345678", "+86 130 1234 5678"]
    assert {normalise_number(form) for form in forms} == {"13012345678"}
    landline = ["008602066247698", "+862066247698", "+86 020-6624-7698", "02066247698"]
    assert {normalise_number(form) for form in landline} == {"02066247698"}


# --- transfers ------------------------------------------------------------------------------------------


def leg(sequence: int, mail: str, **fields: Any) -> dict[str, Any]:
    return {"Sequence": sequence, "Mail": mail, "Type": "staffSeat", **fields}


def test_a_transfer_between_two_agents() -> None:
    info = inbound_tel_cdr(
        SeatUser={"Mail": "bob@example.com"},
        ServeParticipants=[
            leg(0, "alice@example.com", EndStatusString="seatForward", TransferTo="bob@example.com"),
            leg(1, "bob@example.com", EndStatusString="ok", TransferFrom="alice@example.com"),
        ],
    )
    record = parse_tel_cdr(info, APP)
    assert record.transfers == 1
    assert record.agent_email == "bob@example.com"  # SeatUser: the last agent
    assert [leg.agent_email for leg in record.legs] == ["alice@example.com", "bob@example.com"]
    assert record.legs[0].transfer_to == "bob@example.com"
    assert record.legs[1].transfer_from == "alice@example.com"


def test_two_transfers_over_three_legs_and_a_reroute_that_is_not_one() -> None:
    info = inbound_tel_cdr(
        ServeParticipants=[
            leg(0, "a@example.com", EndStatusString="seatGiveUp"),  # did not answer: rerouted
            leg(1, "b@example.com", EndStatusString="seatForward", TransferTo="c@example.com"),
            leg(2, "c@example.com", TransferFrom="b@example.com", TransferTo="d@example.com"),
            leg(3, "d@example.com", TransferFrom="c@example.com", TransferFromType="staffSeat"),
        ]
    )
    record = parse_tel_cdr(info, APP)
    assert record.transfers == 2
    assert len(record.legs) == 4
    assert record.legs[3].transfer_from_type == "staffSeat"
    external = parse_tel_cdr(
        inbound_tel_cdr(ServeParticipants=[leg(0, "a@example.com", EndStatusString="outboundForward")]), APP
    )
    assert external.transfers == 1  # to an external number: no leg of its own follows


# --- merge ----------------------------------------------------------------------------------------------


def test_a_recording_before_its_cdr() -> None:
    cdr = parse_cdr_push(json.loads(DOCUMENTED_CDR_PUSH))
    agent_side = parse_recording_push({**DOCUMENTED_RECORD_PUSH, "SdkAppId": APP, "RecordId": "1608130636"})
    customer_side = parse_recording_push(
        {
            "SdkAppId": APP,
            "SessionId": SESSION,
            "RecordId": "1608130637",
            "EndpointUser": "008618621520280",
            "RecordURL": "https://rec.example.com/customer.mp3",
        }
    )
    (alone,) = merge(agent_side)
    assert alone == CallRecord(
        sdk_app_id=APP,
        session_id=SESSION,
        channel="phone",
        duration_s=None,
        record_ids=("1608130636",),
        record_urls=(agent_side.url,),  # type: ignore[arg-type]
        recordings=(agent_side,),
        sources=("record",),
    )
    (merged,) = merge(agent_side, customer_side, cdr)
    assert merge(cdr, customer_side, agent_side) == (merged,)
    assert merged.legs[0].record_url == agent_side.url  # the agent's leg gets its recording's URL
    assert merged.recordings == tuple(sorted((agent_side, customer_side), key=repr))
    assert merged.record_ids == ("1608130636", "1608130637")
    assert merged.sources == ("cdr", "record")
    assert merged.end_status == "error"
    assert merged.customer == "18621520280"


def test_a_pulled_record_beats_the_push_and_a_present_field_beats_an_absent_one() -> None:
    pull = parse_tel_cdr(inbound_tel_cdr(HungUpSide=None, Duration=94), APP)
    push = parse_cdr_push(
        {
            "SdkAppId": APP,
            "SessionId": pull.session_id,
            "Direction": 0,
            "Caller": "008613012345678",
            "Duration": 95,
            "HungUpSide": "seat",
            "EndStatusString": "ok",
        }
    )
    (merged,) = merge(push, pull)
    assert merged.duration_s == 94  # both have it: the pull's
    assert merged.hung_up_by == "seat"  # only the push has it
    assert merged.legs == pull.legs
    assert merged.sources == ("DescribeTelCdr", "cdr")


def test_sessions_stay_apart_and_redelivery_changes_nothing() -> None:
    first = parse_cdr_push({"SdkAppId": APP, "SessionId": "a", "Duration": 1})
    other_app = parse_cdr_push({"SdkAppId": APP + 1, "SessionId": "a", "Duration": 2})
    second = parse_cdr_push({"SdkAppId": APP, "SessionId": "b", "Duration": 3})
    merged = merge(second, first, other_app, first)
    assert [record.key for record in merged] == [(APP, "a"), (APP, "b"), (APP + 1, "a")]
    assert merged == merge(first, second, other_app)
    assert merge() == ()


def test_two_conflicting_pushes_resolve_the_same_way_in_either_order() -> None:
    base = {"SdkAppId": APP, "SessionId": "s", "Direction": 0, "Caller": "008613012345678"}
    one = parse_cdr_push({**base, "EndStatusString": "ok", "Duration": 10})
    two = parse_cdr_push({**base, "EndStatusString": "error", "Duration": 11})
    assert merge(one, two) == merge(two, one)
    fuller = parse_cdr_push({**base, "EndStatusString": "busy", "Duration": 12, "HungUpSide": "user"})
    assert merge(one, fuller)[0].end_status == "busy"  # more fields present first


NUMBERS = ["008613012345678", "+8613012345678", "0086075512345678", "", None]
TIMES = [0, 1700000000, 1700000010, 1700000030, None]
LEGS = [
    None,
    [leg(0, "a@example.com", RecordId="r1", AcceptTimestamp=1700000010)],
    [
        leg(0, "a@example.com", TransferTo="b@example.com", RecordId="r1"),
        leg(1, "b@example.com", TransferFrom="a@example.com", RecordId="r2"),
    ],
]


def optional(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


@st.composite
def raw_items(draw: st.DrawFn) -> CallRecord | RecordingRef:
    session = draw(st.sampled_from(["s1", "s2"]))
    kind = draw(st.sampled_from(["cdr", "pull", "record", "voicemail"]))
    if kind in ("record", "voicemail"):
        return parse_recording_push(
            {
                "SdkAppId": APP,
                "SessionId": session,
                "RecordId": draw(optional(["r1", "r2", None])),
                "EndpointUser": draw(optional(["a@example.com", 13012345678, None])),
                "RecordURL": draw(optional(["https://r/1.mp3", "https://r/2.mp3", None])),
                "Timestamp": draw(optional(TIMES)),
            },
            kind,  # type: ignore[arg-type]
        )
    body: dict[str, Any] = {
        "SessionId": session,
        "Direction": draw(optional([0, 1, None])),
        "Caller": draw(optional(NUMBERS)),
        "Callee": draw(optional(NUMBERS)),
        "StartTimestamp": draw(optional(TIMES)),
        "QueuedTimestamp": draw(optional(TIMES)),
        "AcceptTimestamp": draw(optional(TIMES)),
        "EndedTimestamp": draw(optional(TIMES)),
        "Duration": draw(optional([0, 20, None])),
        "EndStatusString": draw(optional(["ok", "error", "mystery", None])),
        "EndStatus": draw(optional([1, 0, 999, None])),
        "HungUpSide": draw(optional(["user", "seat", None])),
        "PostIVRKeyPressed": draw(optional([None, [{"key": "1", "label": "good"}], [{"Key": "2"}]])),
        "ServeParticipants": draw(optional(LEGS)),
        "RecordId": draw(optional(["r0", None])),
    }
    if kind == "pull":
        return parse_tel_cdr(body, APP)
    return parse_cdr_push({**body, "SdkAppId": APP})


Items = list[CallRecord | RecordingRef]


def with_a_permutation(items: Items) -> st.SearchStrategy[tuple[Items, Items]]:
    return st.tuples(st.just(items), st.permutations(items))


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(raw_items(), min_size=1, max_size=7).flatmap(with_a_permutation))
def test_merge_does_not_depend_on_the_order(case: tuple[Items, Items]) -> None:
    items, shuffled = case
    merged = merge(*items)
    assert merge(*shuffled) == merged
    assert merge(*items, *shuffled) == merged  # each delivered twice
    assert {record.key for record in merged} == {(APP, item.session_id) for item in items}


# --- personal data --------------------------------------------------------------------------------------


def test_a_protected_number_matches_the_page_side_token() -> None:
    policy = PiiPolicy("hmac", b"k" * 32)
    record = protect_record(parse_tel_cdr(inbound_tel_cdr(), APP), policy)
    page_side = policy.protect("13012345678")  # what the page's mobile=13012345678 becomes
    assert record.customer == page_side
    assert record.caller == page_side  # inbound: the caller is the customer
    assert record.callee == "0086075586013388"  # the company's own number is kept
    outbound = protect_record(parse_cdr_push(json.loads(DOCUMENTED_CDR_PUSH)), PiiPolicy("mask"))
    assert (outbound.caller, outbound.callee, outbound.customer) == (
        "008602066247698",
        "186****0280",
        "186****0280",
    )
    unknown = protect_record(parse_cdr_push({"SdkAppId": APP, "SessionId": "s", "Caller": "1"}), policy)
    assert unknown.caller is not None and unknown.caller.startswith("h:")  # no direction: both sides
    raw = parse_tel_cdr(inbound_tel_cdr(), APP)
    assert protect_record(raw, PiiPolicy()) is raw


def test_recordings_protect_the_customer_side_only() -> None:
    policy = PiiPolicy("mask")
    customer = parse_push("voicemail", DOCUMENTED_VOICEMAIL_PUSH)
    assert isinstance(customer, RecordingRef)
    assert protect_recording(customer, policy).endpoint_user == "131****6789"
    agent = parse_recording_push(DOCUMENTED_RECORD_PUSH)
    assert protect_recording(agent, policy) == agent
    (merged,) = merge(customer)
    assert protect_record(merged, policy).recordings[0].endpoint_user == "131****6789"


def test_instants_between_seconds_and_milliseconds() -> None:
    assert ms_from_s(1700000000) == 1700000000000
    assert ms_from_s(None) is None
    assert (s_floor(1700000000999), s_ceil(1700000000001), s_ceil(1700000000000)) == (
        1700000000,
        1700000001,
        1700000000,
    )
