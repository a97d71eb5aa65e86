"""A raw CCC record (a push body, or a record of a pull's answer) read field by field.

Tolerant where CCC's own documents disagree with each other (``Key``/``key``, ``null`` for an empty list,
a phone number sent as a JSON number, integers sent as digit strings) and strict about everything else: a
value of the wrong type raises ``CallRecordError``, which names the field (``ServeParticipants[1].Mail``).
CCC's times are Unix seconds, ``0`` meaning "did not happen"; ``RawFields.instant_ms`` gives epoch
milliseconds, or None. The parsers of each raw source (call_parsing.py) read through this. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from service.domain.call_records import CallRecordError
from service.domain.instants import ms_from_s

# Unix seconds past this are surely milliseconds sent by mistake (the year 5138).
_MAX_UNIX_S = 10**11


class RawFields:
    """A raw JSON object, read field by field with the field's path at hand for errors."""

    def __init__(self, data: object, path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise CallRecordError(path or "record", f"expected a JSON object, got {json_kind(data)}")
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
        raise CallRecordError(self.name(key), f"expected a string, got {json_kind(value)}")

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

    def obj(self, key: str) -> RawFields | None:
        value = self.data.get(key)
        return None if value is None else RawFields(value, self.name(key))

    def items(self, *keys: str) -> list[tuple[str, object]]:
        """A JSON array's elements with their paths; null (as in the documented ``IVRKeyPressed: null``) is
        an empty array."""
        key, value = self.raw(*keys)
        if value is None:
            return []
        if not isinstance(value, list):
            raise CallRecordError(self.name(key), f"expected an array, got {json_kind(value)}")
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
    raise CallRecordError(name, f"expected an integer, got {json_kind(value)} {value!r:.40}")


def json_kind(value: object) -> str:
    """What a JSON value is, for an error message ("a string", "an array", "null")."""
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
