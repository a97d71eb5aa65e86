"""Query-string parameters of the read API: parsed all at once, every problem reported in one 400."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import orjson
from starlette.datastructures import QueryParams

from service.contract.queries import (
    MAX_RANGE_DAYS,
    Cursor,
    CursorPart,
    Query,
)
from service.domain.instants import now_ms, parse_iso
from service.http.errors import ApiError

T = TypeVar("T")
Q = TypeVar("Q", bound=Query)

DAY_MS = 86_400_000
# Instants a query may name: from 2000 to 2100, UTC, both years included.
EARLIEST_MS = parse_iso("2000-01-01")
LATEST_MS = parse_iso("2101-01-01")
MAX_BUCKETS = 10_000


class Params:
    """Reads parameters one by one; ``done()`` raises one 400 naming every bad parameter."""

    def __init__(self, query: QueryParams) -> None:
        self.query = query
        self.problems: list[dict[str, str]] = []

    def problem(self, name: str, message: str) -> None:
        self.problems.append({"field": name, "message": message})

    def _read(self, name: str, parse: Callable[[str], T], expected: str) -> T | None:
        values = self.query.getlist(name)
        if not values:
            return None
        if len(values) > 1:
            self.problem(name, "given more than once")
            return None
        try:
            return parse(values[0])
        except (ValueError, OverflowError):
            self.problem(name, expected)
            return None

    def text(self, name: str, max_length: int = 320) -> str | None:
        value = self._read(name, str, "must be text")
        if value is None:
            return None
        if not 0 < len(value) <= max_length:
            self.problem(name, f"must be 1 to {max_length} characters")
            return None
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
            # No stored value holds one, and PostgreSQL refuses a NUL outright.
            self.problem(name, "must not contain control characters")
            return None
        return value

    def choice(self, name: str, choices: Sequence[str], default: str | None = None) -> str | None:
        value = self._read(name, str, "must be text")
        if value is None:
            return default
        if value not in choices:
            self.problem(name, f"must be one of {', '.join(choices)}")
            return default
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        value = self._read(name, _strict_int, "must be an integer")
        if value is None:
            return default
        if not minimum <= value <= maximum:
            self.problem(name, f"must be from {minimum} to {maximum}")
            return default
        return value

    def instant(self, name: str) -> int | None:
        return self._read(name, _instant_ms, "must be an ISO 8601 time (without an offset it is UTC)")

    def zone(self, name: str = "tz") -> ZoneInfo:
        value = self._read(name, _zone, "must be an IANA time zone name, like Asia/Shanghai or UTC")
        return value or ZoneInfo("UTC")

    def cursor(self, kinds: Sequence[CursorPart], name: str = "cursor") -> tuple[Any, ...] | None:
        """A cursor made by ``encode_cursor`` of a key with these parts; anything else is a 400."""
        decoded = self._read(name, _decode_cursor, "is not a cursor this endpoint returned")
        if decoded is None:
            return None
        if len(decoded) != len(kinds) or not all(
            _CURSOR_PARTS[k](v) for k, v in zip(kinds, decoded, strict=False)
        ):
            self.problem(name, "is not a cursor this endpoint returned")
            return None
        return tuple(decoded)

    def read(self, model: type[Q]) -> Q:
        """Every parameter of ``model``, in its field order, each read as its declared type says."""
        return model(**{field.name: field.read(self) for field in _declared_fields(model)})

    def done(self) -> None:
        if self.problems:
            names = ", ".join(p["field"] for p in self.problems)
            raise ApiError(400, "invalid_parameter", f"bad query parameters: {names}", self.problems)


def _strict_int(raw: str) -> int:
    if not raw.lstrip("-").isdigit() or len(raw) > 18:
        raise ValueError(raw)
    return int(raw)


def _instant_ms(raw: str) -> int:
    ms = parse_iso(raw)
    if not EARLIEST_MS <= ms < LATEST_MS:
        raise ValueError(raw)
    return ms


def _zone(raw: str) -> ZoneInfo:
    # ZoneInfo would read any file path it is given; a name is letters, digits and _+-/ only.
    if not raw or len(raw) > 64 or not all(c.isalnum() or c in "_+-/" for c in raw) or ".." in raw:
        raise ValueError(raw)
    if raw.startswith("/"):
        raise ValueError(raw)
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(raw) from None


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def _decode_cursor(raw: str) -> list[Any]:
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, orjson.JSONDecodeError):
        raise ValueError(raw) from None
    if not isinstance(decoded, list):
        raise ValueError(raw)
    return decoded


@dataclass(frozen=True)
class _DeclaredField:
    """How one field of a query model is read: worked out once per model, not per request."""

    name: str
    parameter: str
    kind: Any
    meta: dict[str, Any]
    default: Any
    default_factory: Callable[[], Any] | None

    def read(self, params: Params) -> Any:
        kind, name = self.kind, self.parameter
        default = self.default_factory() if self.default_factory is not None else self.default
        if get_origin(kind) is Literal:
            return params.choice(name, get_args(kind), default)
        if kind is str:
            return params.text(name, self.meta.get("max_length", 320))
        if kind is bool:
            flag = params.choice(name, ("true", "false"))
            return default if flag is None else flag == "true"
        if kind is int:
            return params.integer(name, default, self.meta["ge"], self.meta["le"])
        if kind is ZoneInfo:
            return params.zone(name)
        found = params.cursor(kind.parts, name)
        return None if found is None else kind(found)


@functools.cache
def _declared_fields(model: type[Query]) -> tuple[_DeclaredField, ...]:
    hints = get_type_hints(model, include_extras=True)
    declared = []
    for field in msgspec.structs.fields(model):
        kind, meta = _declared_type(hints[field.name])
        readable = get_origin(kind) is Literal or kind in (str, int, bool, ZoneInfo)
        if not readable and not (isinstance(kind, type) and issubclass(kind, Cursor)):
            raise TypeError(f"{model.__name__}.{field.name}: no reader for {kind!r}")
        factory = None if field.default_factory is msgspec.NODEFAULT else field.default_factory
        declared.append(_DeclaredField(field.name, field.encode_name, kind, meta, field.default, factory))
    return tuple(declared)


def _declared_type(hint: Any) -> tuple[Any, dict[str, Any]]:
    """The type under ``Annotated`` and ``| None``, and the constraints of its ``Meta``s."""
    meta: dict[str, Any] = {}
    while True:
        origin = get_origin(hint)
        if origin is Annotated:
            for extra in hint.__metadata__:
                if isinstance(extra, msgspec.Meta):
                    bounds = {k: getattr(extra, k) for k in ("max_length", "ge", "le")}
                    meta |= {k: v for k, v in bounds.items() if v is not None}
            hint = get_args(hint)[0]
        elif origin is Union or origin is UnionType:
            (hint,) = (a for a in get_args(hint) if a is not NoneType)
        else:
            return hint, meta


def _is_int(value: Any, low: int, high: int) -> bool:
    # bool is an int to Python, not to the database.
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high


# What each part of a key may hold, so that nothing a client forges reaches the database as an error.
_CURSOR_PARTS: dict[str, Callable[[Any], bool]] = {
    "time": lambda v: _is_int(v, -(2**62), 2**62),  # BIGINT milliseconds
    "site": lambda v: _is_int(v, 0, 2**31),  # INTEGER site id
    "id": lambda v: isinstance(v, str) and 0 < len(v) <= 36 and all(32 <= ord(c) < 127 for c in v),
    "app": lambda v: _is_int(v, 1, 2**63),  # BIGINT SdkAppId
    "session": lambda v: isinstance(v, str) and 0 < len(v) <= 128 and all(32 <= ord(c) < 127 for c in v),
    "leg": lambda v: _is_int(v, 0, 2**15),  # SMALLINT leg index
    "entry": lambda v: _is_int(v, 1, 2**63),  # BIGINT access-log entry id
}


def time_range(
    params: Params, *, required_default_days: int | None, max_days: int = MAX_RANGE_DAYS
) -> tuple[int | None, int | None]:
    """``from`` and ``to``; for reports (``required_default_days`` set) they default to the last N days."""
    start, end = params.instant("from"), params.instant("to")
    if required_default_days is not None:
        end = end if end is not None else now_ms()
        start = start if start is not None else end - required_default_days * DAY_MS
    if start is not None and end is not None:
        if start >= end:
            params.problem("from", "must be before to")
        elif end - start > max_days * DAY_MS:
            params.problem("to", f"the range may be at most {max_days} days")
    return start, end
