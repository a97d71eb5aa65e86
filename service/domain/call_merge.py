"""The merge of CCC's records: one call record per (SdkAppId, SessionId), whatever the order they came in.

A session is described by up to a pushed and a pulled record of each kind and a recording push per recorded
party, arriving in any order and sometimes more than once (call_parsing.py parses each). ``merge`` puts
them in a fixed order and folds them field by field, so the result depends neither on the arrival order nor
on redeliveries (docs/call-records.md, "Merge"). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import fields, replace

from service.domain.call_records import (
    PULL_IM_CDRS,
    PULL_TEL_CDR,
    PUSH_CDR,
    PUSH_IMCDR,
    PUSH_VIDEO_CDR,
    CallRecord,
    Channel,
    RecordingRef,
    phone_customer,
    sorted_present,
    with_derived_fields,
)

# merge's precedence: what the API answers when asked beats the push sent at the end of the session.
_SOURCE_RANK = {PULL_TEL_CDR: 0, PULL_IM_CDRS: 0, PUSH_CDR: 1, PUSH_IMCDR: 1, PUSH_VIDEO_CDR: 1}


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
        record_ids=sorted_present(*(i for r in ordered for i in r.record_ids)),
        record_urls=sorted_present(*(u for r in ordered for u in r.record_urls)),
        recordings=recordings,
        sources=tuple(sorted({s for r in ordered for s in r.sources} | {ref.kind for ref in recordings})),
    )
    if channel == "phone":
        record = replace(record, customer=phone_customer(record.direction, record.caller, record.callee))
    return with_derived_fields(record)


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
