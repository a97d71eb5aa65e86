"""Records as JSON, NDJSON or CSV, one at a time, so an export of any size runs in constant memory.

Stored JSON (a raw event, an action's details) travels as ``StoredJson``: its text is embedded in answers as
it is, never parsed and serialised again, so nothing the ingest stored (any depth it allowed, any integer)
can make a read fail, and numbers read back exactly as they were sent.

CSV cells are neutralised against formula injection (OWASP, "CSV Injection"): a text cell that a spreadsheet
would run as a formula (starting with ``= + - @``, a tab or a carriage return) gets a leading ``'``. Numbers
are numbers and stay as they are (a negative skew reads -120); a phone column's genuine international number
(``+8613800000000``: a plus, then digits and spaces) cannot call anything, and stays readable as it is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, Literal

import msgspec

Format = Literal["ndjson", "csv"]
FORMATS: tuple[Format, ...] = ("ndjson", "csv")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PHONE_NUMBER = re.compile(r"\+[0-9][0-9 ]{0,31}")


class StoredJson:
    """JSON text as stored, to be embedded in an answer verbatim (as ``msgspec.Raw``, by ``_embed``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredJson) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"StoredJson({self.text!r})"


def _embed(value: Any) -> Any:
    if isinstance(value, StoredJson):
        return msgspec.Raw(value.text.encode())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = msgspec.json.Encoder(enc_hook=_embed)


def dumps(value: Any) -> bytes:
    """Compact JSON with stored JSON embedded as it is (msgspec: see docs/design.md)."""
    return _ENCODER.encode(value)


def ndjson_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield _ENCODER.encode(record).decode() + "\n"


def csv_lines(
    records: Iterable[dict[str, Any]], fields: Sequence[str], phone_fields: Collection[str] = ()
) -> Iterator[str]:
    """A header, then a row per record; nested values (details, raw) as JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    yield _drain(buffer)
    phones = [name in phone_fields for name in fields]
    for record in records:
        writer.writerow(
            [csv_cell(record.get(name), phone) for name, phone in zip(fields, phones, strict=True)]
        )
        yield _drain(buffer)


def lines(
    records: Iterable[dict[str, Any]],
    fields: Sequence[str],
    fmt: Format,
    phone_fields: Collection[str] = (),
) -> Iterator[str]:
    return ndjson_lines(records) if fmt == "ndjson" else csv_lines(records, fields, phone_fields)


def csv_cell(value: Any, phone: bool = False) -> Any:
    """One value as a CSV cell: numbers as they are, text neutralised, nested values as JSON text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, StoredJson):
        text = value.text
    elif isinstance(value, dict | list):
        text = dumps(value).decode()
    else:
        text = str(value)
    if text.startswith(FORMULA_STARTS) and not (phone and _PHONE_NUMBER.fullmatch(text)):
        return "'" + text
    return text


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
