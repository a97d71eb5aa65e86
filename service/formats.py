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
import orjson

Format = Literal["ndjson", "csv"]
FORMATS: tuple[Format, ...] = ("ndjson", "csv")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PHONE_NUMBER = re.compile(r"\+[0-9][0-9 ]{0,31}")


class StoredJson:
    """JSON text as stored, embedded in an answer verbatim (``orjson.Fragment`` in ``dumps``, ``msgspec.Raw``
    in ``ndjson_chunks``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredJson) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"StoredJson({self.text!r})"


# An export is written in chunks of this many rows: one thread-pool hop and one ASGI send per row cost a week
# of the benchmark center (234,224 sessions as NDJSON) 38.9 s, chunks of 500 rows 7.0 s.
CHUNK_ROWS = 500


def _fragment(value: Any) -> Any:
    if isinstance(value, StoredJson):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _raw(value: Any) -> Any:
    if isinstance(value, StoredJson):
        return msgspec.Raw(value.text.encode())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Measured on the recorded answers (docs/design.md, "The contract, declared once"): orjson writes one dict
# faster than msgspec, msgspec a batch of rows as lines faster than orjson a row at a time.
_LINES = msgspec.json.Encoder(enc_hook=_raw)


def dumps(value: Any) -> bytes:
    """Compact JSON, stored JSON embedded as it is."""
    return orjson.dumps(value, default=_fragment)


def _batches(records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= CHUNK_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def ndjson_chunks(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A line of JSON per record, ``CHUNK_ROWS`` lines to a chunk."""
    for batch in _batches(records):
        yield _LINES.encode_lines(batch).decode()


def csv_chunks(
    records: Iterable[dict[str, Any]], fields: Sequence[str], phone_fields: Collection[str] = ()
) -> Iterator[str]:
    """A header, then a row per record, ``CHUNK_ROWS`` rows to a chunk; nested values (details, raw) as
    JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    yield _drain(buffer)
    phones = [name in phone_fields for name in fields]
    for batch in _batches(records):
        writer.writerows(
            [csv_cell(record.get(name), phone) for name, phone in zip(fields, phones, strict=True)]
            for record in batch
        )
        yield _drain(buffer)


def chunks(
    records: Iterable[dict[str, Any]],
    fields: Sequence[str],
    fmt: Format,
    phone_fields: Collection[str] = (),
) -> Iterator[str]:
    """An export's text, in chunks of rows (the CSV header a chunk of its own)."""
    return ndjson_chunks(records) if fmt == "ndjson" else csv_chunks(records, fields, phone_fields)


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
