"""CCC's end statuses: the code <-> string tables of phone and chat records, and the lookups between them.

A raw record gives its end status as a string (``EndStatusString``), a code (``EndStatus``) or both;
``complete_end_status`` fills the missing one from the channel's table. The phone's and the chat's codes
differ (108 is "restricted callee" on the phone, "user reply timeout" in a chat); audio/video records have
strings only. docs/call-records.md ("End status") has the tables' sources. Pure: no I/O.
"""

from __future__ import annotations

from service.domain.call_records import Channel

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


def complete_end_status(
    string: str | None, code: int | None, channel: Channel
) -> tuple[str | None, int | None]:
    """(EndStatusString, EndStatus), each filled from the other where the channel's table knows it; a
    string or code the table does not know is kept as given, with its partner None."""
    by_code, by_string = _TABLES[channel]
    if string is None and code is not None:
        string = by_code.get(code)
    if code is None and string is not None:
        code = by_string.get(string)
    return string, code


def end_status_string(code: int, channel: Channel = "phone") -> str | None:
    return _TABLES[channel][0].get(code)


def end_status_code(string: str, channel: Channel = "phone") -> int | None:
    return _TABLES[channel][1].get(string)
