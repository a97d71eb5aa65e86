"""Records as NDJSON or CSV lines, one at a time, so an export of any size runs in constant memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import orjson

Format = Literal["ndjson", "csv"]
FORMATS: tuple[Format, ...] = ("ndjson", "csv")


def ndjson_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield orjson.dumps(record).decode() + "\n"


def csv_lines(records: Iterable[dict[str, Any]], fields: Sequence[str]) -> Iterator[str]:
    """A header, then a row per record; nested values (details, raw) as JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    yield _drain(buffer)
    for record in records:
        writer.writerow([_cell(record.get(name)) for name in fields])
        yield _drain(buffer)


def lines(records: Iterable[dict[str, Any]], fields: Sequence[str], fmt: Format) -> Iterator[str]:
    return ndjson_lines(records) if fmt == "ndjson" else csv_lines(records, fields)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if value is None:
        return ""
    return value


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
