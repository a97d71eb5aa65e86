"""CCC's own records of calls and chats, as typed records. Pure: no I/O, no database.

Four kinds of raw record describe a contact-center session (docs/call-records.md has the field tables):

- a phone CDR: the Data Push body of ``action=cdr``, or a ``TelCdrInfo`` of DescribeTelCdr;
- a chat record: the push body of ``action=imcdr``, or an ``IMCdrInfo`` of DescribeIMCdrs;
- an audio/video record: the push body of ``action=videoCdr``;
- a recording: the push body of ``action=record`` (one per recorded party) or ``action=voicemail``.

The first three parse into a ``CallRecord``, the last into a ``RecordingRef``; ``merge`` makes one
``CallRecord`` per (SdkAppId, SessionId) out of any number of them, in any order.

Parsing is tolerant where CCC's own documents disagree with each other (``Key``/``key``, ``null`` for an empty
list, a phone number sent as a JSON number, integers sent as digit strings) and strict about everything else:
a value of the wrong type raises ``CallRecordError``, which names the field (``ServeParticipants[1].Mail``).
CCC's times are Unix seconds, ``0`` meaning "did not happen"; records hold epoch milliseconds, or None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal

from service.domain.instants import ms_from_s
from service.domain.pii import PiiPolicy

Channel = Literal["phone", "chat", "video"]
Direction = Literal["inbound", "outbound"]
HungUpBy = Literal["user", "seat", "system"]
RecordingKind = Literal["record", "voicemail"]

# Where a record came from: the push action, or the pull's API action.
PUSH_CDR, PUSH_IMCDR, PUSH_VIDEO_CDR = "cdr", "imcdr", "videoCdr"
PULL_TEL_CDR, PULL_IM_CDRS = "DescribeTelCdr", "DescribeIMCdrs"
PUSH_RECORD, PUSH_VOICEMAIL = "record", "voicemail"
# merge's precedence: what the API answers when asked beats the push sent at the end of the session.
_SOURCE_RANK = {PULL_TEL_CDR: 0, PULL_IM_CDRS: 0, PUSH_CDR: 1, PUSH_IMCDR: 1, PUSH_VIDEO_CDR: 1}

# Phone end statuses, code <-> EndStatusString: the current table (TelCdrInfo.EndStatus and the status-code
# page), then the codes of the older list that the current one no longer names (0, 2, 101, 201).
PHONE_END_STATUS: dict[int, str] = {
    1: "ok",
    211: "clientError",
    17: "seatGiveUp",
    100: "blackList",
    102: "ivrGiveUp",
    103: "waitingGiveUp",
    104: "ringingGiveUp",
    105: "noSeatOnline",
    106: "notWorkTime",
    107: "ivrEnd",
    232: "userHangupDuringAiCall",
    233: "aiAgentEndCall",
    501: "callConflict",
    502: "clientTimeout",
    503: "voipClientError",
    108: "restrictedCallee",
    109: "tooManyRequest",
    110: "restrictedArea",
    111: "restrictedTime",
    202: "notAnswer",
    203: "userReject",
    204: "powerOff",
    205: "numberNotExist",
    206: "busy",
    207: "outOfCredit",
    208: "operatorError",
    209: "callerCancel",
    210: "notInService",
    212: "carrierBlocked",
    213: "callReminder",
    215: "numberInvalid",
    216: "callRestricted",
    217: "calleeRestricted",
    218: "areaRestricted",
    219: "promptCallForwarding",
    220: "callerCancelWhileRing",
    221: "callerCancelWithoutRing",
    222: "voiceMailReached",
    225: "asrError",
    226: "llmasrError",
    227: "ttsError",
    228: "functionCallHangup",
    229: "maxCallDurationReached",
    230: "userInactivity",
    231: "callTerminatedByAPI",
    # The older list (same field, earlier SDK): error, not connected, agent transferred, unknown.
    0: "error",
    2: "unconnected",
    101: "seatForward",
    201: "unknown",
}
# Chat end statuses (IMCdrInfo.EndStatus) with the imcdr push's EndStatusString where one means the same.
# The codes are not the phone's: 108 is "user reply timeout" here, "restricted callee" on the phone.
# 109 (the user ended the session) has no string in the push's list, so it stays a bare code.
CHAT_END_STATUS: dict[int, str] = {
    0: "error",
    1: "ok",
    3: "noSeatOnline",
    17: "seatGiveUp",
    100: "blackList",
    101: "seatForward",
    102: "ivrGiveUp",
    108: "autoFinished",
}
_PHONE_CODES = {string: code for code, string in PHONE_END_STATUS.items()}
_CHAT_CODES = {string: code for code, string in CHAT_END_STATUS.items()}
_TABLES: dict[Channel, tuple[dict[int, str], dict[str, int]]] = {
    "phone": (PHONE_END_STATUS, _PHONE_CODES),
    "chat": (CHAT_END_STATUS, _CHAT_CODES),
    "video": ({}, {}),  # no code table is documented for audio/video records: strings only
}
_HUNG_UP: dict[str, HungUpBy] = {"user": "user", "seat": "seat", "system": "system"}
# A leg that ended by handing the call on: the push's statuses for an agent's and an external transfer.
_TRANSFER_STATUSES = frozenset({"seatForward", "outboundForward"})
# Unix seconds past this are surely milliseconds sent by mistake (the year 5138).
_MAX_UNIX_S = 10**11


class CallRecordError(ValueError):
    """A raw CCC record that cannot be read; ``field`` is the path of the offending value."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class SatisfactionKey:
    """A post-call (satisfaction) IVR key, or a chat's satisfaction rating: the key or id and its label."""

    key: str
    label: str | None = None


@dataclass(frozen=True)
class CallLeg:
    """One element of ServeParticipants: one agent's part of the session (a transfer adds a leg)."""

    sequence: int | None = None
    agent_email: str | None = None
    type: str | None = None  # staffSeat, outboundSeat, staffPhoneSeat
    start_ms: int | None = None
    ring_ms: int | None = None
    accept_ms: int | None = None
    end_ms: int | None = None
    end_status: str | None = None
    skill_group_id: int | None = None
    skill_group_name: str | None = None
    transfer_from: str | None = None
    transfer_from_type: str | None = None
    transfer_to: str | None = None
    transfer_to_type: str | None = None
    record_id: str | None = None
    record_url: str | None = None
    custom_record_url: str | None = None


@dataclass(frozen=True)
class RecordingRef:
    """A recording push (``record``: one per recorded party) or a voicemail push."""

    kind: RecordingKind
    sdk_app_id: int
    session_id: str
    record_id: str | None = None
    endpoint_user: str | None = None  # the customer's number, or the agent's email
    url: str | None = None
    custom_url: str | None = None
    timestamp_ms: int | None = None

    @property
    def key(self) -> tuple[int, str]:
        return (self.sdk_app_id, self.session_id)


@dataclass(frozen=True)
class CallRecord:
    """One contact-center session as CCC recorded it. Times are epoch ms; durations whole seconds."""

    sdk_app_id: int
    session_id: str
    channel: Channel
    direction: Direction | None = None
    caller: str | None = None  # as CCC wrote it (0086 form)
    callee: str | None = None
    customer: str | None = None  # phone: normalise_number(inbound Caller / outbound Callee); chat: user id
    agent_email: str | None = None  # SeatUser.Mail: the last agent when the call was transferred
    start_ms: int | None = None
    queued_ms: int | None = None
    ring_ms: int | None = None
    accept_ms: int | None = None
    end_ms: int | None = None
    time_ms: int | None = None  # the record's own time: TelCdrInfo.Time, IMCdrInfo.Timestamp
    ivr_s: int | None = None
    queue_s: int | None = None
    duration_s: int | None = None
    end_status: str | None = None
    end_status_code: int | None = None
    hung_up_by: HungUpBy | None = None
    queued_skill_group_id: int | None = None
    queued_skill_group_name: str | None = None
    ivr_keys: tuple[str, ...] = ()
    satisfaction: tuple[SatisfactionKey, ...] = ()
    transfers: int = 0
    record_ids: tuple[str, ...] = ()
    record_urls: tuple[str, ...] = ()
    uui: str | None = None
    legs: tuple[CallLeg, ...] = ()
    recordings: tuple[RecordingRef, ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[int, str]:
        return (self.sdk_app_id, self.session_id)


# --- reading raw values ---------------------------------------------------------------------------------


class _Fields:
    """A raw JSON object, read field by field with the field's path at hand for errors."""

    def __init__(self, data: object, path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise CallRecordError(path or "record", f"expected a JSON object, got {_kind(data)}")
        self.data: Mapping[str, object] = data
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, *keys: str) -> tuple[str, object]:
        """The first of ``keys`` present with a non-null value, and that value; else (the first key, None)."""
        for key in keys:
            value = self.data.get(key)
            if value is not None:
                return key, value
        return keys[0], None

    def integer(self, *keys: str) -> int | None:
        key, value = self.raw(*keys)
        return _integer(value, self.name(key))

    def text(self, *keys: str) -> str | None:
        """A string; a JSON number is taken as its digits (a phone number sent as a number); "" is absent."""
        key, value = self.raw(*keys)
        if value is None:
            return None
        if isinstance(value, str):
            return value or None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise CallRecordError(self.name(key), f"expected a string, got {_kind(value)}")

    def instant_ms(self, *keys: str) -> int | None:
        """A Unix-seconds time as epoch ms; 0 (CCC's "never") is None."""
        key, value = self.raw(*keys)
        seconds = _integer(value, self.name(key))
        if seconds is None or seconds == 0:
            return None
        if seconds < 0 or seconds >= _MAX_UNIX_S:
            raise CallRecordError(self.name(key), f"expected Unix seconds, got {seconds}")
        return ms_from_s(seconds)

    def seconds(self, *keys: str) -> int | None:
        key, value = self.raw(*keys)
        result = _integer(value, self.name(key))
        if result is not None and result < 0:
            raise CallRecordError(self.name(key), f"expected a duration in seconds, got {result}")
        return result

    def obj(self, key: str) -> _Fields | None:
        value = self.data.get(key)
        return None if value is None else _Fields(value, self.name(key))

    def items(self, *keys: str) -> list[tuple[str, object]]:
        """A JSON array's elements with their paths; null (as in the documented ``IVRKeyPressed: null``) is
        an empty array."""
        key, value = self.raw(*keys)
        if value is None:
            return []
        if not isinstance(value, list):
            raise CallRecordError(self.name(key), f"expected an array, got {_kind(value)}")
        return [(f"{self.name(key)}[{index}]", item) for index, item in enumerate(value)]


def _integer(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise CallRecordError(name, "expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value.strip()):
        return int(value)
    if isinstance(value, str) and value.strip() == "":
        return None
    raise CallRecordError(name, f"expected an integer, got {_kind(value)} {value!r:.40}")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _required_app(fields: _Fields, sdk_app_id: int | None) -> int:
    """The record's SdkAppId; a pulled record has none of its own, and belongs to the app that was asked."""
    given = fields.integer("SdkAppId")
    if given is not None:
        return given
    if sdk_app_id is None:
        raise CallRecordError(fields.name("SdkAppId"), "missing")
    return sdk_app_id


def _required_session(fields: _Fields) -> str:
    session_id = fields.text("SessionId")
    if session_id is None:
        raise CallRecordError(fields.name("SessionId"), "missing")
    return session_id


# --- numbers --------------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-]+")
_DIGITS = re.compile(r"\+?[0-9]+")


def normalise_number(value: str) -> str:
    """A Chinese number in one national form, so that CCC's and the page's numbers compare equal.

    Spaces and dashes go. Then the country code: ``+86`` or ``0086`` always; a bare ``86`` only when an
    11-digit mobile number (starting with 1) follows, since ``86`` may also begin a local landline number
    (``862066247698`` stays as it is). A landline keeps its trunk ``0`` (CCC writes ``008602066247698``, so
    ``02066247698``), and one written without it after the country code (``+862066247698``, E.164 style)
    gets it back; 400/800 service numbers, dialled without a 0, do not. Other countries' numbers keep
    their prefix (separators removed); anything that is not digits with an optional leading ``+`` once the
    separators are gone (a number-protection id, a SIP address) is returned exactly as given.

    ``008618621520280`` -> ``18621520280``; ``008602066247698`` -> ``02066247698``;
    ``0086075512345678`` -> ``075512345678``; ``+8613012345678`` -> ``13012345678``.
    """
    text = _SEPARATORS.sub("", value)
    if not _DIGITS.fullmatch(text):
        return value
    if text.startswith("+86"):
        national = text[3:]
    elif text.startswith("0086"):
        national = text[4:]
    elif len(text) == 13 and text.startswith("861"):
        return text[2:]
    else:
        return text
    if not national or national.startswith("0") or _is_mobile(national) or _is_service(national):
        return national
    return "0" + national


def _is_mobile(national: str) -> bool:
    return len(national) == 11 and national.startswith("1")


def _is_service(national: str) -> bool:
    return len(national) == 10 and national[:3] in ("400", "800")


# --- parsing --------------------------------------------------------------------------------------------


def parse_cdr_push(body: Mapping[str, object]) -> CallRecord:
    """The body of an ``action=cdr`` push."""
    return _phone(_Fields(body), sdk_app_id=None, source=PUSH_CDR)


def parse_tel_cdr(info: Mapping[str, object], sdk_app_id: int) -> CallRecord:
    """A ``TelCdrInfo`` of DescribeTelCdr (the JSON object as the API answers it, or as the SDK's
    ``to_json_string`` writes it, nulls and all). It carries no SdkAppId: the pull's app is ``sdk_app_id``."""
    return _phone(_Fields(info), sdk_app_id=sdk_app_id, source=PULL_TEL_CDR)


def parse_imcdr_push(body: Mapping[str, object]) -> CallRecord:
    """The body of an ``action=imcdr`` push (an online chat session, sent at its end)."""
    return _session_push(_Fields(body), channel="chat", source=PUSH_IMCDR)


def parse_video_cdr_push(body: Mapping[str, object]) -> CallRecord:
    """The body of an ``action=videoCdr`` push (an audio/video session)."""
    return _session_push(_Fields(body), channel="video", source=PUSH_VIDEO_CDR)


def parse_im_cdr(info: Mapping[str, object], sdk_app_id: int) -> CallRecord:
    """An ``IMCdrInfo`` of DescribeIMCdrs. Its ``Timestamp`` ("service time") is kept as ``time_ms`` only:
    which moment of the session it is, the API does not say."""
    fields = _Fields(info)
    end_status, code = _end_status(fields, "chat")
    satisfaction = fields.obj("Satisfaction")
    return _finish(
        CallRecord(
            sdk_app_id=_required_app(fields, sdk_app_id),
            session_id=_required_session(fields),
            channel="chat",
            customer=fields.text("ClientUserId"),
            agent_email=fields.text("StaffId"),
            time_ms=fields.instant_ms("Timestamp"),
            duration_s=fields.seconds("Duration"),
            end_status=end_status,
            end_status_code=code,
            queued_skill_group_id=fields.integer("SkillGroupId"),
            queued_skill_group_name=fields.text("SkillGroupName"),
            satisfaction=_satisfaction_object(satisfaction),
            sources=(PULL_IM_CDRS,),
        )
    )


def parse_recording_push(body: Mapping[str, object], kind: RecordingKind = "record") -> RecordingRef:
    """The body of an ``action=record`` push, or of ``action=voicemail`` with ``kind="voicemail"``."""
    fields = _Fields(body)
    return RecordingRef(
        kind=kind,
        sdk_app_id=_required_app(fields, None),
        session_id=_required_session(fields),
        record_id=fields.text("RecordId"),
        endpoint_user=fields.text("EndpointUser"),
        url=fields.text("RecordURL"),
        custom_url=fields.text("CustomRecordURL"),
        timestamp_ms=fields.instant_ms("Timestamp"),
    )


def parse_push(action: str, body: Mapping[str, object]) -> CallRecord | RecordingRef:
    """Any Data Push body by its URL's ``action``; an unknown action is a ``CallRecordError``."""
    if action == PUSH_CDR:
        return parse_cdr_push(body)
    if action == PUSH_IMCDR:
        return parse_imcdr_push(body)
    if action == PUSH_VIDEO_CDR:
        return parse_video_cdr_push(body)
    if action in (PUSH_RECORD, PUSH_VOICEMAIL):
        return parse_recording_push(body, "record" if action == PUSH_RECORD else "voicemail")
    raise CallRecordError("action", f"unknown push action {action!r:.40}")


def _phone(fields: _Fields, *, sdk_app_id: int | None, source: str) -> CallRecord:
    direction = _direction(fields)
    caller, callee = fields.text("Caller"), fields.text("Callee")
    seat = fields.obj("SeatUser")
    end_status, code = _end_status(fields, "phone")
    queued_group = fields.integer("QueuedSkillGroupId")
    queued_group_name = fields.text("QueuedSkillGroupName")
    if queued_group is None and queued_group_name is None:
        queued_group, queued_group_name = fields.integer("SkillGroupId"), fields.text("SkillGroup")
    satisfaction = _satisfaction(fields, "PostIVRKeyPressed") or _satisfaction(fields, "PostIVRKeyPressedEx")
    return _finish(
        CallRecord(
            sdk_app_id=_required_app(fields, sdk_app_id),
            session_id=_required_session(fields),
            channel="phone",
            direction=direction,
            caller=caller,
            callee=callee,
            customer=_phone_customer(direction, caller, callee),
            agent_email=seat.text("Mail", "UserId") if seat else None,
            start_ms=fields.instant_ms("StartTimestamp"),
            queued_ms=fields.instant_ms("QueuedTimestamp"),
            ring_ms=fields.instant_ms("RingTimestamp"),
            accept_ms=fields.instant_ms("AcceptTimestamp"),
            end_ms=fields.instant_ms("EndedTimestamp"),
            time_ms=fields.instant_ms("Time"),
            ivr_s=fields.seconds("IVRDuration"),
            duration_s=fields.seconds("Duration"),
            end_status=end_status,
            end_status_code=code,
            hung_up_by=_hung_up(fields),
            queued_skill_group_id=queued_group,
            queued_skill_group_name=queued_group_name,
            ivr_keys=_keys(fields, "IVRKeyPressed"),
            satisfaction=satisfaction,
            record_ids=_present(fields.text("RecordId")),
            record_urls=_present(fields.text("RecordURL"), fields.text("CustomRecordURL")),
            uui=fields.text("Uui", "UUI"),
            legs=tuple(_leg(_Fields(item, path)) for path, item in fields.items("ServeParticipants")),
            sources=(source,),
        )
    )


def _session_push(fields: _Fields, *, channel: Channel, source: str) -> CallRecord:
    """imcdr and videoCdr pushes: a session with a user id instead of numbers."""
    seat = fields.obj("SeatUser")
    end_status, code = _end_status(fields, channel)
    satisfaction = fields.obj("Satisfaction")
    return _finish(
        CallRecord(
            sdk_app_id=_required_app(fields, None),
            session_id=_required_session(fields),
            channel=channel,
            customer=fields.text("UserId"),
            agent_email=seat.text("Mail", "UserId") if seat else None,
            start_ms=fields.instant_ms("StartTimestamp"),
            queued_ms=fields.instant_ms("QueuedTimestamp"),
            ring_ms=fields.instant_ms("RingTimestamp"),
            accept_ms=fields.instant_ms("AcceptTimestamp"),
            end_ms=fields.instant_ms("EndedTimestamp"),
            ivr_s=fields.seconds("IVRDuration"),
            duration_s=fields.seconds("Duration"),
            end_status=end_status,
            end_status_code=code,
            queued_skill_group_id=fields.integer("QueuedSkillGroupId"),
            queued_skill_group_name=fields.text("QueuedSkillGroupName"),
            ivr_keys=_keys(fields, "IVRKeyPressed"),
            satisfaction=_satisfaction_object(satisfaction),
            sources=(source,),
        )
    )


def _leg(fields: _Fields) -> CallLeg:
    return CallLeg(
        sequence=fields.integer("Sequence"),
        agent_email=fields.text("Mail"),
        type=fields.text("Type"),
        start_ms=fields.instant_ms("StartTimestamp"),
        ring_ms=fields.instant_ms("RingTimestamp"),
        accept_ms=fields.instant_ms("AcceptTimestamp"),
        end_ms=fields.instant_ms("EndedTimestamp"),
        end_status=fields.text("EndStatusString"),
        skill_group_id=fields.integer("SkillGroupId"),
        skill_group_name=fields.text("SkillGroupName"),
        transfer_from=fields.text("TransferFrom"),
        transfer_from_type=fields.text("TransferFromType"),
        transfer_to=fields.text("TransferTo"),
        transfer_to_type=fields.text("TransferToType"),
        record_id=fields.text("RecordId"),
        record_url=fields.text("RecordURL"),
        custom_record_url=fields.text("CustomRecordURL"),
    )


_DIRECTIONS: dict[int, Direction] = {0: "inbound", 1: "outbound"}
# CallType: 1 phone outbound, 2 phone inbound, 3 audio (VoIP) inbound, 5 predictive dialling, 6 internal.
_CALL_TYPE_DIRECTIONS: dict[int, Direction] = {1: "outbound", 2: "inbound", 3: "inbound", 5: "outbound"}


def _direction(fields: _Fields) -> Direction | None:
    """``Direction`` (0 inbound, 1 outbound); without it, ``CallType``. Another value is None."""
    direction = fields.integer("Direction")
    if direction is not None:
        return _DIRECTIONS.get(direction)
    call_type = fields.integer("CallType")
    return None if call_type is None else _CALL_TYPE_DIRECTIONS.get(call_type)


def _phone_customer(direction: Direction | None, caller: str | None, callee: str | None) -> str | None:
    number = caller if direction == "inbound" else callee if direction == "outbound" else None
    return None if number is None else normalise_number(number) or None


def _end_status(fields: _Fields, channel: Channel) -> tuple[str | None, int | None]:
    """(EndStatusString, EndStatus), each filled from the other where the channel's table knows it; a
    string or code the table does not know is kept as given, with its partner None."""
    by_code, by_string = _TABLES[channel]
    string, code = fields.text("EndStatusString"), fields.integer("EndStatus")
    if string is None and code is not None:
        string = by_code.get(code)
    if code is None and string is not None:
        code = by_string.get(string)
    return string, code


def end_status_string(code: int, channel: Channel = "phone") -> str | None:
    return _TABLES[channel][0].get(code)


def end_status_code(string: str, channel: Channel = "phone") -> int | None:
    return _TABLES[channel][1].get(string)


def _hung_up(fields: _Fields) -> HungUpBy | None:
    side = fields.text("HungUpSide")
    return None if side is None else _HUNG_UP.get(side)


def _keys(fields: _Fields, key: str) -> tuple[str, ...]:
    keys = []
    for path, item in fields.items(key):
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise CallRecordError(path, f"expected a key, got {_kind(item)}")
        keys.append(str(item))
    return tuple(keys)


def _satisfaction(fields: _Fields, key: str) -> tuple[SatisfactionKey, ...]:
    """PostIVRKeyPressed: ``[{"Key": "1", "Label": "..."}]``, or with ``key``/``label`` (the documented
    sample)."""
    result = []
    for path, item in fields.items(key):
        if isinstance(item, str | int) and not isinstance(item, bool):
            result.append(SatisfactionKey(str(item)))
            continue
        element = _Fields(item, path)
        pressed = element.text("Key", "key")
        if pressed is None:
            raise CallRecordError(element.name("Key"), "missing")
        result.append(SatisfactionKey(pressed, element.text("Label", "label")))
    return tuple(result)


def _satisfaction_object(element: _Fields | None) -> tuple[SatisfactionKey, ...]:
    """A chat's rating: ``{"Id": 1, "Label": "..."}`` (IMCdrInfo) or ``{"id": "104", "content": "..."}``."""
    if element is None:
        return ()
    rating = element.text("Id", "id", "Key", "key")
    if rating is None:
        return ()
    return (SatisfactionKey(rating, element.text("Label", "label", "Content", "content")),)


def _present(*values: str | None) -> tuple[str, ...]:
    return tuple(sorted({value for value in values if value}))


# --- derived fields -------------------------------------------------------------------------------------


def _finish(record: CallRecord) -> CallRecord:
    """The fields CCC does not send but its fields imply, and the record's sets in their canonical order."""
    ivr_s = record.ivr_s
    if ivr_s is None and record.queued_ms is not None and record.start_ms is not None:
        ivr_s = _non_negative_s(record.queued_ms - record.start_ms)
    duration_s = record.duration_s
    if duration_s is None and record.end_ms is not None:
        # Duration = EndedTimestamp - AcceptTimestamp; a session never accepted served for 0 s.
        duration_s = 0 if record.accept_ms is None else _non_negative_s(record.end_ms - record.accept_ms)
    legs = _legs_with_recordings(record.legs, record.recordings)
    return replace(
        record,
        ivr_s=ivr_s,
        queue_s=_queue_s(record),
        duration_s=duration_s,
        transfers=_transfers(legs),
        legs=legs,
        record_ids=_present(
            *record.record_ids,
            *(leg.record_id for leg in legs),
            *(ref.record_id for ref in record.recordings),
        ),
        record_urls=_present(
            *record.record_urls,
            *(url for leg in legs for url in (leg.record_url, leg.custom_record_url)),
            *(url for ref in record.recordings for url in (ref.url, ref.custom_url)),
        ),
    )


def _queue_s(record: CallRecord) -> int | None:
    """Time in the queue: answered, AcceptTimestamp - QueuedTimestamp; abandoned, EndedTimestamp -
    QueuedTimestamp (the reference's §4.4). Accept is the agent's answer, so it includes the agent's ring."""
    if record.queued_ms is None:
        return None
    until = record.accept_ms if record.accept_ms is not None else record.end_ms
    return None if until is None else _non_negative_s(until - record.queued_ms)


def _non_negative_s(ms: int) -> int | None:
    return ms // 1000 if ms >= 0 else None


def _transfers(legs: Sequence[CallLeg]) -> int:
    """How many times the session was handed on: the legs that ended by a transfer (TransferTo set, or
    ended ``seatForward``/``outboundForward``), or the legs that began as one (TransferFrom set), whichever
    is more. An unanswered leg rerouted to the next agent (``seatGiveUp``) is not a transfer."""
    handed_on = sum(1 for leg in legs if leg.transfer_to or leg.end_status in _TRANSFER_STATUSES)
    taken_over = sum(1 for leg in legs if leg.transfer_from)
    return max(handed_on, taken_over)


def _legs_with_recordings(
    legs: tuple[CallLeg, ...], recordings: tuple[RecordingRef, ...]
) -> tuple[CallLeg, ...]:
    """Each leg's missing recording URL from the recording push with its RecordId."""
    by_id: dict[str, RecordingRef] = {}
    for ref in recordings:  # sorted, so the first with an id is always the same one
        if ref.record_id and ref.url and ref.record_id not in by_id:
            by_id[ref.record_id] = ref
    if not by_id:
        return legs
    result = []
    for leg in legs:
        found = by_id.get(leg.record_id) if leg.record_id else None
        if found is not None and leg.record_url is None:
            custom = leg.custom_record_url or found.custom_url
            leg = replace(leg, record_url=found.url, custom_record_url=custom)
        result.append(leg)
    return tuple(result)


# --- merging --------------------------------------------------------------------------------------------


def merge(*items: CallRecord | RecordingRef) -> tuple[CallRecord, ...]:
    """One record per (SdkAppId, SessionId), whatever the order the items came in.

    The rule, per session: its call records are put in a fixed order, and each field takes its value from
    the first record that has one (a value present beats an absent one; an empty tuple is absent). The order:
    pulled records (DescribeTelCdr, DescribeIMCdrs) before pushed ones (what the API answers when asked is
    CCC's current record; a push is sent once, at the end), then the record with more fields present, then,
    to break any remaining tie, the record's text (``repr``), so that even two conflicting pushes always
    resolve the same way. A few fields are taken as a unit from the first record that has any: the end
    status with its code, the legs, the IVR and satisfaction keys. Recording pushes never conflict: every
    distinct one is kept (``recordings``, sorted), and fills the recording URL of the leg with its RecordId.
    ``record_ids``, ``record_urls`` and ``sources`` are the union over all the items. The derived fields
    (customer, queue_s, transfers; ivr_s and duration_s when no record has them) are computed again from the
    merged fields.

    A session known only from recording pushes gives a phone record with only its recordings. Merge from the
    raw records each time: a merged record fed back in counts as one record of its best source.
    """
    records: dict[tuple[int, str], list[CallRecord]] = {}
    recordings: dict[tuple[int, str], set[RecordingRef]] = {}
    for item in items:
        if isinstance(item, RecordingRef):
            recordings.setdefault(item.key, set()).add(item)
            records.setdefault(item.key, [])
        else:
            records.setdefault(item.key, []).append(item)
            recordings.setdefault(item.key, set()).update(item.recordings)
    return tuple(_merge_session(key, records[key], recordings[key]) for key in sorted(records))


def _merge_session(key: tuple[int, str], records: list[CallRecord], refs: set[RecordingRef]) -> CallRecord:
    ordered = sorted(records, key=_precedence)
    recordings = tuple(sorted(refs, key=repr))

    def first(name: str) -> object:
        for record in ordered:
            value = getattr(record, name)
            if value is not None and value != ():
                return value
        return None

    merged: dict[str, object] = {}
    for spec in fields(CallRecord):
        if spec.name not in _NOT_FIELD_BY_FIELD:
            value = first(spec.name)
            if value is not None:
                merged[spec.name] = value
    status = next((r for r in ordered if r.end_status is not None or r.end_status_code is not None), None)
    channel: Channel = ordered[0].channel if ordered else "phone"
    record = CallRecord(
        sdk_app_id=key[0],
        session_id=key[1],
        channel=channel,
        **merged,  # type: ignore[arg-type]
        end_status=status.end_status if status else None,
        end_status_code=status.end_status_code if status else None,
        record_ids=_present(*(i for r in ordered for i in r.record_ids)),
        record_urls=_present(*(u for r in ordered for u in r.record_urls)),
        recordings=recordings,
        sources=tuple(sorted({s for r in ordered for s in r.sources} | {ref.kind for ref in recordings})),
    )
    if channel == "phone":
        record = replace(record, customer=_phone_customer(record.direction, record.caller, record.callee))
    return _finish(record)


# Fields merge does not take from the first record that has them: the key, and what it sets itself.
_NOT_FIELD_BY_FIELD = frozenset(
    {
        "sdk_app_id",
        "session_id",
        "channel",
        "end_status",
        "end_status_code",
        "queue_s",
        "record_ids",
        "record_urls",
        "transfers",
        "recordings",
        "sources",
    }
)


def _precedence(record: CallRecord) -> tuple[int, int, str]:
    rank = min((_SOURCE_RANK.get(source, 2) for source in record.sources), default=2)
    present = sum(1 for spec in fields(record) if getattr(record, spec.name) not in (None, ()))
    return (rank, -present, repr(record))


# --- personal data --------------------------------------------------------------------------------------


def protect_record(record: CallRecord, policy: PiiPolicy) -> CallRecord:
    """The record with the customer's number or id protected as the page's are (domain/pii.py).

    A number is normalised first, so that a CCC number and the page's number give the same token in
    ``hmac`` mode. The customer's side is protected: ``customer``, the inbound Caller or the outbound
    Callee (both when the direction is unknown), and the recordings' EndpointUser when it is not an email.
    Agent emails and the company's own numbers are kept. ``raw`` changes nothing."""
    if policy.mode == "raw":
        return record

    def number(value: str | None) -> str | None:
        return None if value is None else policy.protect(normalise_number(value))

    customer = record.customer
    if customer is not None:
        customer = policy.protect(customer)  # already normalised (phone) or an id (chat, video)
    return replace(
        record,
        customer=customer,
        caller=number(record.caller) if record.direction != "outbound" else record.caller,
        callee=number(record.callee) if record.direction != "inbound" else record.callee,
        recordings=tuple(protect_recording(ref, policy) for ref in record.recordings),
    )


def protect_recording(ref: RecordingRef, policy: PiiPolicy) -> RecordingRef:
    """The recording with its EndpointUser protected when it is the customer's number (not an email)."""
    if policy.mode == "raw" or ref.endpoint_user is None or "@" in ref.endpoint_user:
        return ref
    return replace(ref, endpoint_user=policy.protect(normalise_number(ref.endpoint_user)))
