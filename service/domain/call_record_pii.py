"""Call records with the customer's side protected by the PII policy (domain/pii.py), as the page's data is.

Kept apart from the records themselves: the policy is a deployment's choice, applied to a record on its way
out or into storage, and it needs the number normalisation (numbers.py) so that both sides give one token.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import replace

from service.domain.call_records import CallRecord, RecordingRef
from service.domain.numbers import normalise_number
from service.domain.pii import PiiPolicy


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
