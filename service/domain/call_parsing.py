"""CCC's raw records parsed into call records, one parser per raw source. Pure: no I/O.

Four kinds of raw record describe a contact-center session (docs/call-records.md has the field tables):

- a phone CDR: the Data Push body of ``action=cdr``, or a ``TelCdrInfo`` of DescribeTelCdr;
- a chat record: the push body of ``action=imcdr``, or an ``IMCdrInfo`` of DescribeIMCdrs;
- an audio/video record: the push body of ``action=videoCdr``;
- a recording: the push body of ``action=record`` (one per recorded party) or ``action=voicemail``.

The first three parse into a ``CallRecord``, the last into a ``RecordingRef`` (call_records.py); ``merge``
(call_merge.py) makes one ``CallRecord`` per session out of any number of them, in any order. Each field is
read through ``RawFields`` (raw_fields.py: what is tolerated, what raises ``CallRecordError``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from service.domain.call_records import (
    PULL_IM_CDRS,
    PULL_TEL_CDR,
    PUSH_CDR,
    PUSH_IMCDR,
    PUSH_RECORD,
    PUSH_VIDEO_CDR,
    PUSH_VOICEMAIL,
    CallLeg,
    CallRecord,
    CallRecordError,
    Channel,
    Direction,
    HungUpBy,
    RecordingKind,
    RecordingRef,
    SatisfactionKey,
    phone_customer,
    sorted_present,
    with_derived_fields,
)
from service.domain.end_status import complete_end_status
from service.domain.raw_fields import RawFields, json_kind

_HUNG_UP: dict[str, HungUpBy] = {"user": "user", "seat": "seat", "system": "system"}
# Chats and audio/video sessions carry no Direction: the customer opens them (the web, WeChat or app channel
# reaching the center), so they are inbound contacts, and count in the calls report with calls.
_SESSION_DIRECTION: Direction = "inbound"


def parse_cdr_push(body: Mapping[str, object]) -> CallRecord:
    """The body of an ``action=cdr`` push."""
    return _phone(RawFields(body), sdk_app_id=None, source=PUSH_CDR)


def parse_tel_cdr(info: Mapping[str, object], sdk_app_id: int) -> CallRecord:
    """A ``TelCdrInfo`` of DescribeTelCdr (the JSON object as the API answers it, or as the SDK's
    ``to_json_string`` writes it, nulls and all). It carries no SdkAppId: the pull's app is ``sdk_app_id``."""
    return _phone(RawFields(info), sdk_app_id=sdk_app_id, source=PULL_TEL_CDR)


def parse_imcdr_push(body: Mapping[str, object]) -> CallRecord:
    """The body of an ``action=imcdr`` push (an online chat session, sent at its end)."""
    return _session_push(RawFields(body), channel="chat", source=PUSH_IMCDR)


def parse_video_cdr_push(body: Mapping[str, object]) -> CallRecord:
    """The body of an ``action=videoCdr`` push (an audio/video session)."""
    return _session_push(RawFields(body), channel="video", source=PUSH_VIDEO_CDR)


def parse_im_cdr(info: Mapping[str, object], sdk_app_id: int) -> CallRecord:
    """An ``IMCdrInfo`` of DescribeIMCdrs. Its ``Timestamp`` ("service time") is kept as ``time_ms`` only:
    which moment of the session it is, the API does not say."""
    fields = RawFields(info)
    end_status, code = _end_status(fields, "chat")
    satisfaction = fields.obj("Satisfaction")
    return with_derived_fields(
        CallRecord(
            sdk_app_id=_required_app(fields, sdk_app_id),
            session_id=_required_session(fields),
            channel="chat",
            direction=_SESSION_DIRECTION,
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
    fields = RawFields(body)
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


# --- a stored raw record, by its source and action ------------------------------------------------------

MAX_SESSION_ID_CHARS = 128  # the stored columns' width; CCC's ids are a few dozen characters


def read_raw(sdk_app_id: int, source: str, action: str | None, body: str) -> CallRecord | RecordingRef | None:
    """A raw record as a call record or a recording; None for an action that describes no session (CCC
    may add data types: they are kept raw). A record that cannot be read raises ``CallRecordError``."""
    try:
        document = json.loads(body)
    except ValueError:
        raise CallRecordError("body", "not JSON") from None
    if not isinstance(document, dict):
        raise CallRecordError("body", "not a JSON object")
    if source == "pull":
        if action == PULL_TEL_CDR:
            return parse_tel_cdr(document, sdk_app_id)
        if action == PULL_IM_CDRS:
            return parse_im_cdr(document, sdk_app_id)
        return None
    if action is None:
        return None
    try:
        item = parse_push(action, document)
    except CallRecordError as exc:
        if exc.field == "action":
            return None
        raise
    if item.sdk_app_id != sdk_app_id:
        raise CallRecordError("SdkAppId", f"is {item.sdk_app_id}, stored for the app {sdk_app_id}")
    return item


def session_of(sdk_app_id: int, source: str, action: str | None, body: str) -> tuple[str | None, str | None]:
    """(SessionId, problem) of a raw record: the session it describes, or why it cannot be read; (None,
    None) for an action that describes no session."""
    try:
        item = read_raw(sdk_app_id, source, action, body)
    except CallRecordError as exc:
        return None, str(exc)[:1000]
    if item is None:
        return None, None
    if len(item.session_id) > MAX_SESSION_ID_CHARS:
        return None, f"SessionId: longer than {MAX_SESSION_ID_CHARS} characters"
    return item.session_id, None


def _phone(fields: RawFields, *, sdk_app_id: int | None, source: str) -> CallRecord:
    direction = _direction(fields)
    caller, callee = fields.text("Caller"), fields.text("Callee")
    seat = fields.obj("SeatUser")
    end_status, code = _end_status(fields, "phone")
    queued_group = fields.integer("QueuedSkillGroupId")
    queued_group_name = fields.text("QueuedSkillGroupName")
    if queued_group is None and queued_group_name is None:
        queued_group, queued_group_name = fields.integer("SkillGroupId"), fields.text("SkillGroup")
    satisfaction = _satisfaction(fields, "PostIVRKeyPressed") or _satisfaction(fields, "PostIVRKeyPressedEx")
    return with_derived_fields(
        CallRecord(
            sdk_app_id=_required_app(fields, sdk_app_id),
            session_id=_required_session(fields),
            channel="phone",
            direction=direction,
            caller=caller,
            callee=callee,
            customer=phone_customer(direction, caller, callee),
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
            record_ids=sorted_present(fields.text("RecordId")),
            record_urls=sorted_present(fields.text("RecordURL"), fields.text("CustomRecordURL")),
            uui=fields.text("Uui", "UUI"),
            legs=tuple(_leg(RawFields(item, path)) for path, item in fields.items("ServeParticipants")),
            sources=(source,),
        )
    )


def _session_push(fields: RawFields, *, channel: Channel, source: str) -> CallRecord:
    """imcdr and videoCdr pushes: a session with a user id instead of numbers."""
    seat = fields.obj("SeatUser")
    end_status, code = _end_status(fields, channel)
    satisfaction = fields.obj("Satisfaction")
    return with_derived_fields(
        CallRecord(
            sdk_app_id=_required_app(fields, None),
            session_id=_required_session(fields),
            channel=channel,
            direction=_SESSION_DIRECTION,
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


def _leg(fields: RawFields) -> CallLeg:
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


def _direction(fields: RawFields) -> Direction | None:
    """``Direction`` (0 inbound, 1 outbound); without it, ``CallType``. Another value is None."""
    direction = fields.integer("Direction")
    if direction is not None:
        return _DIRECTIONS.get(direction)
    call_type = fields.integer("CallType")
    return None if call_type is None else _CALL_TYPE_DIRECTIONS.get(call_type)


def _end_status(fields: RawFields, channel: Channel) -> tuple[str | None, int | None]:
    """(EndStatusString, EndStatus), each filled from the other where the channel's table knows it."""
    return complete_end_status(fields.text("EndStatusString"), fields.integer("EndStatus"), channel)


def _hung_up(fields: RawFields) -> HungUpBy | None:
    side = fields.text("HungUpSide")
    return None if side is None else _HUNG_UP.get(side)


def _keys(fields: RawFields, key: str) -> tuple[str, ...]:
    keys = []
    for path, item in fields.items(key):
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise CallRecordError(path, f"expected a key, got {json_kind(item)}")
        keys.append(str(item))
    return tuple(keys)


def _satisfaction(fields: RawFields, key: str) -> tuple[SatisfactionKey, ...]:
    """PostIVRKeyPressed: ``[{"Key": "1", "Label": "..."}]``, or with ``key``/``label`` (the documented
    sample)."""
    result = []
    for path, item in fields.items(key):
        if isinstance(item, str | int) and not isinstance(item, bool):
            result.append(SatisfactionKey(str(item)))
            continue
        element = RawFields(item, path)
        pressed = element.text("Key", "key")
        if pressed is None:
            raise CallRecordError(element.name("Key"), "missing")
        result.append(SatisfactionKey(pressed, element.text("Label", "label")))
    return tuple(result)


def _satisfaction_object(element: RawFields | None) -> tuple[SatisfactionKey, ...]:
    """A chat's rating: ``{"Id": 1, "Label": "..."}`` (IMCdrInfo) or ``{"id": "104", "content": "..."}``."""
    if element is None:
        return ()
    rating = element.text("Id", "id", "Key", "key")
    if rating is None:
        return ()
    return (SatisfactionKey(rating, element.text("Label", "label", "Content", "content")),)


def _required_app(fields: RawFields, sdk_app_id: int | None) -> int:
    """The record's SdkAppId; a pulled record has none of its own, and belongs to the app that was asked."""
    given = fields.integer("SdkAppId")
    if given is not None:
        return given
    if sdk_app_id is None:
        raise CallRecordError(fields.name("SdkAppId"), "missing")
    return sdk_app_id


def _required_session(fields: RawFields) -> str:
    session_id = fields.text("SessionId")
    if session_id is None:
        raise CallRecordError(fields.name("SessionId"), "missing")
    return session_id
