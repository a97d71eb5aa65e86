"""CCC's own records of calls and chats, as typed records, and the fields those records imply. Pure: no I/O.

A ``CallRecord`` is one contact-center session as CCC recorded it (a phone call, a chat, an audio/video
session), with its agents' legs (``CallLeg``) and its recordings (``RecordingRef``). The raw records that
make them, and their parsers, are in call_parsing.py; ``merge`` (call_merge.py) makes one ``CallRecord`` per
(SdkAppId, SessionId) out of any number of them; call_record_pii.py protects the customer's side.

Some fields CCC does not send but its other fields imply (the time in the queue, the number of transfers,
a leg's recording URL from the recording push): ``with_derived_fields`` computes them, for the parsers and
again for the merge. Times are epoch milliseconds, or None; durations whole seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from service.domain.numbers import normalise_number

Channel = Literal["phone", "chat", "video"]
Direction = Literal["inbound", "outbound"]
HungUpBy = Literal["user", "seat", "system"]
RecordingKind = Literal["record", "voicemail"]

# Where a record came from: the push action, or the pull's API action.
PUSH_CDR, PUSH_IMCDR, PUSH_VIDEO_CDR = "cdr", "imcdr", "videoCdr"
PULL_TEL_CDR: Final = "DescribeTelCdr"
PULL_IM_CDRS: Final = "DescribeIMCdrs"
PUSH_RECORD, PUSH_VOICEMAIL = "record", "voicemail"
# A leg that ended by handing the call on: the push's statuses for an agent's and an external transfer.
_TRANSFER_STATUSES = frozenset({"seatForward", "outboundForward"})


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


# --- derived fields -------------------------------------------------------------------------------------


def with_derived_fields(record: CallRecord) -> CallRecord:
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
        record_ids=sorted_present(
            *record.record_ids,
            *(leg.record_id for leg in legs),
            *(ref.record_id for ref in record.recordings),
        ),
        record_urls=sorted_present(
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


def decimal_id(text: str | None, max_digits: int = 18) -> int | None:
    """A non-negative integer written in ASCII digits only (``str.isdigit`` also admits ``"²"``, which
    ``int`` refuses), or None."""
    if text is None or not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def sorted_present(*values: str | None) -> tuple[str, ...]:
    """The values that are present (not None, not empty), once each, sorted: a record's canonical set."""
    return tuple(sorted({value for value in values if value}))


def phone_customer(direction: Direction | None, caller: str | None, callee: str | None) -> str | None:
    """The customer's number, normalised: the Caller of an inbound call, the Callee of an outbound one."""
    number = caller if direction == "inbound" else callee if direction == "outbound" else None
    return None if number is None else normalise_number(number) or None
