"""Settings, read once from the environment into a frozen value object.

Every setting is declared once in ``SETTINGS_SPEC`` with its variable name, parser, default and meaning;
``docs/configuration.md`` must list each of them (``tests/test_config.py`` enforces it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from limits import parse_many

DEFAULT_DATABASE_URL = "sqlite:///calltrail.db"


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _parse_int(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"expected an integer from {minimum} to {maximum}, got {value}")
        return value

    return parse


def _parse_float(minimum: float, maximum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"expected a number from {minimum} to {maximum}, got {value}")
        return value

    return parse


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _parse_rate_limit(raw: str) -> str:
    value = raw.strip().lower()
    if value == "off":
        return value
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(
            f"expected a rate like 100/second or 1000/minute;50/second, or off; got {raw!r}"
        ) from None
    return value


def _parse_text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


@dataclass(frozen=True)
class SettingSpec:
    field: str
    env: str
    parse: Callable[[str], Any]
    doc: str
    # The variable's earlier name, still read when the current one is not set.
    former_env: str | None = None


SETTINGS_SPEC: tuple[SettingSpec, ...] = (
    SettingSpec(
        "database_url",
        "CALLTRAIL_DATABASE_URL",
        _parse_text,
        "SQLAlchemy URL of the database: sqlite:///path or postgresql://user@host/db.",
    ),
    SettingSpec("host", "CALLTRAIL_HOST", _parse_text, "Address `serve` listens on."),
    SettingSpec("port", "CALLTRAIL_PORT", _parse_int(1, 65535), "Port `serve` listens on."),
    SettingSpec("workers", "CALLTRAIL_WORKERS", _parse_int(1, 64), "Worker processes started by `serve`."),
    SettingSpec(
        "max_body_bytes",
        "CALLTRAIL_MAX_BODY_BYTES",
        _parse_int(1024, 16 * 1024 * 1024),
        "Largest accepted POST /v1/events body; larger bodies get 413.",
    ),
    SettingSpec(
        "max_events_per_batch",
        "CALLTRAIL_MAX_EVENTS_PER_BATCH",
        _parse_int(1, 10_000),
        "Most events one POST /v1/events may carry.",
    ),
    SettingSpec(
        "max_event_age_s",
        "CALLTRAIL_MAX_EVENT_AGE_S",
        _parse_int(60, 366 * 86400),
        "How far before `sent_at` an event's `ts` may lie before its corrected time is clamped and flagged.",
    ),
    SettingSpec(
        "sqlite_synchronous",
        "CALLTRAIL_SQLITE_SYNCHRONOUS",
        _parse_choice("full", "normal"),
        "SQLite `synchronous` pragma: full survives power loss; normal survives process crashes only.",
    ),
    SettingSpec(
        "site_cache_s",
        "CALLTRAIL_SITE_CACHE_S",
        _parse_float(0, 3600),
        "Seconds a worker keeps sites and origins cached before reloading them.",
    ),
    SettingSpec(
        "writer_max_batch",
        "CALLTRAIL_WRITER_MAX_BATCH",
        _parse_int(1, 100_000),
        "Most events the writer commits in one transaction (group commit).",
    ),
    SettingSpec(
        "writer_queue_limit",
        "CALLTRAIL_WRITER_QUEUE_LIMIT",
        _parse_int(1, 10_000_000),
        "Most events waiting for the writer; beyond it POST /v1/events answers 503 with Retry-After.",
    ),
    SettingSpec(
        "writer_connections",
        "CALLTRAIL_WRITER_CONNECTIONS",
        _parse_int(1, 8),
        "PostgreSQL: transactions one worker's writer keeps under way at once (SQLite always takes one).",
        former_env="CALLTRAIL_WRITER_THREADS",
    ),
    SettingSpec(
        "projection_batch",
        "CALLTRAIL_PROJECTION_BATCH",
        _parse_int(1, 100_000),
        "Most stored events projected (into sessions, actions, rollups) in one transaction.",
    ),
    SettingSpec(
        "projection_share",
        "CALLTRAIL_PROJECTION_SHARE",
        _parse_float(0.01, 1),
        "Under heavy load, the least share of the writer's time the projection still gets.",
    ),
    SettingSpec(
        "read_wait_ms",
        "CALLTRAIL_READ_WAIT_MS",
        _parse_int(0, 60_000),
        "How long a query waits for events already acknowledged to be projected before answering anyway.",
    ),
    SettingSpec(
        "sqlite_max_size_mb",
        "CALLTRAIL_SQLITE_MAX_SIZE_MB",
        _parse_int(0, 10_000_000),
        "Largest the SQLite file may grow (MiB; 0 = no limit); past it writes get 503 and a log line.",
    ),
    SettingSpec(
        "rate_limit_per_ip",
        "CALLTRAIL_RATE_LIMIT_PER_IP",
        _parse_rate_limit,
        "POST /v1/events requests allowed per client IP and worker (limits syntax, or off); past it 429.",
    ),
    SettingSpec(
        "rate_limit_per_site",
        "CALLTRAIL_RATE_LIMIT_PER_SITE",
        _parse_rate_limit,
        "POST /v1/events requests allowed per site key and worker (limits syntax, or off); past it 429.",
    ),
    SettingSpec(
        "forwarded_allow_ips",
        "CALLTRAIL_FORWARDED_ALLOW_IPS",
        _parse_text,
        "Proxies whose X-Forwarded-For is trusted for the client IP (comma-separated, or *).",
    ),
    SettingSpec(
        "header_timeout_s",
        "CALLTRAIL_HEADER_TIMEOUT_S",
        _parse_int(1, 600),
        "Seconds a client has to send a request's line and headers; past it the connection is closed.",
    ),
    SettingSpec(
        "body_timeout_s",
        "CALLTRAIL_BODY_TIMEOUT_S",
        _parse_int(1, 3600),
        "Seconds a client has to send a request's body after its headers; past it the connection is closed.",
    ),
    SettingSpec(
        "allowed_hosts",
        "CALLTRAIL_ALLOWED_HOSTS",
        _parse_text,
        "Host names requests may name (comma-separated, *.example.com for subdomains, * for any); else 400.",
    ),
    SettingSpec(
        "ringing_timeout_s",
        "CALLTRAIL_RINGING_TIMEOUT_S",
        _parse_int(10, 86400),
        "A ringing session unheard this long is over (closed by timeout); changes need `calltrail rebuild`.",
    ),
    SettingSpec(
        "connected_timeout_s",
        "CALLTRAIL_CONNECTED_TIMEOUT_S",
        _parse_int(60, 7 * 86400),
        "A connected session unheard this long is over (closed by timeout); changing it needs a rebuild.",
    ),
    SettingSpec(
        "pii_mode",
        "CALLTRAIL_PII_MODE",
        _parse_choice("raw", "mask", "hmac"),
        "How customer numbers and ids are stored: raw, mask (188****8888), or hmac (a keyed token).",
    ),
    SettingSpec(
        "pii_key",
        "CALLTRAIL_PII_KEY",
        _parse_text,
        "The secret key of hmac mode, at least 16 characters; keep it, or repeat callers stop matching.",
    ),
    SettingSpec(
        "log_level",
        "CALLTRAIL_LOG_LEVEL",
        _parse_choice("debug", "info", "warning", "error"),
        "Least severe log level written.",
    ),
    SettingSpec(
        "log_format",
        "CALLTRAIL_LOG_FORMAT",
        _parse_choice("text", "json"),
        "`text` for people, `json` for one JSON object per line.",
    ),
)


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = 64 * 1024
    max_events_per_batch: int = 500
    max_event_age_s: int = 7 * 86400
    sqlite_synchronous: Literal["full", "normal"] = "full"
    site_cache_s: float = 5.0
    writer_max_batch: int = 5000
    writer_queue_limit: int = 50_000
    writer_connections: int = 4
    projection_batch: int = 1000
    projection_share: float = 0.02
    read_wait_ms: int = 2000
    sqlite_max_size_mb: int = 0
    rate_limit_per_ip: str = "100/second"
    rate_limit_per_site: str = "2000/second"
    forwarded_allow_ips: str = "127.0.0.1"
    allowed_hosts: str = "*"
    header_timeout_s: int = 10
    body_timeout_s: int = 30
    ringing_timeout_s: int = 600
    connected_timeout_s: int = 14400
    pii_mode: Literal["raw", "mask", "hmac"] = "raw"
    pii_key: str = ""
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for spec in SETTINGS_SPEC:
            raw = env.get(spec.env)
            if not raw and spec.former_env:
                raw = env.get(spec.former_env)
            if raw is None or raw == "":
                continue
            try:
                values[spec.field] = spec.parse(raw)
            except ValueError as exc:
                problems.append(f"{spec.env}: {exc}")
        if values.get("connected_timeout_s", 14400) < values.get("ringing_timeout_s", 600):
            problems.append("CALLTRAIL_CONNECTED_TIMEOUT_S: must be at least CALLTRAIL_RINGING_TIMEOUT_S")
        if values.get("pii_mode") == "hmac" and len(values.get("pii_key", "")) < 16:
            problems.append("CALLTRAIL_PII_KEY: hmac mode needs a secret key of at least 16 characters")
        if problems:
            raise ConfigError("invalid settings: " + "; ".join(problems))
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
