"""Call records with the customer's side protected by the PII policy (domain/pii.py), as the page's data is.

Kept apart from the records themselves: the policy is a deployment's choice, applied to a record on its way
out or into storage, and it needs the number normalisation (numbers.py): a CCC number and a page's number
in the national form then give one token.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.domain.call_records import CallRecord, RecordingRef
from service.domain.numbers import normalise_number
from service.domain.pii import PiiPolicy


def protect_record(record: CallRecord, policy: PiiPolicy) -> CallRecord:
    """The record with the customer's number or id protected as the page's are (domain/pii.py).

    A number is normalised first, as the page's numbers are (domain/pii.py), so that a CCC number and the
    page's give one token in ``hmac`` mode. The customer's side is protected: ``customer``, the inbound
    Caller or the outbound Callee (both when the direction is unknown), and the recordings' EndpointUser
    when it is not an email. Agent emails and the company's own numbers are kept.
    ``raw`` changes nothing."""
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


def protect_raw_record(document: dict[str, Any], policy: PiiPolicy) -> dict[str, Any]:
    """A raw CCC record (a push body or a pulled record) with the customer's side protected, for the raw log.

    Read by its fields, whatever its action, so that pushes, pulls and actions CCC may add are treated alike:
    the customer's number in ``Caller`` (inbound, ``Direction`` 0) or ``Callee`` (outbound, 1; both when the
    direction is not given), ``TelLocation.TelNumber``, a recording's ``EndpointUser`` when it is not an
    email, and a chat's ``UserId`` / ``ClientUserId`` at the top level (an agent's ``UserId`` sits inside
    ``SeatUser`` and is kept, as the page's agent fields are). Numbers are normalised first, as in
    ``protect_record``. ``raw`` returns the document itself."""
    if policy.mode == "raw":
        return document
    protected = dict(document)

    def number(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            return value
        return policy.protect(normalise_number(str(value)))

    direction = document.get("Direction")
    for name, customer_side in (("Caller", 0), ("Callee", 1)):
        if name in document and direction in (customer_side, None):
            protected[name] = number(document[name])
    location = document.get("TelLocation")
    if isinstance(location, dict) and "TelNumber" in location:
        protected["TelLocation"] = {**location, "TelNumber": number(location["TelNumber"])}
    endpoint = document.get("EndpointUser")
    if endpoint is not None and not (isinstance(endpoint, str) and "@" in endpoint):
        protected["EndpointUser"] = number(endpoint)
    for name in ("UserId", "ClientUserId"):
        if isinstance(document.get(name), str) and document[name]:
            protected[name] = policy.protect(document[name])
    return protected
