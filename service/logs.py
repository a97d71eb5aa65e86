"""Logging: readable text or one JSON object per line, and never a line that user input can forge."""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import orjson

from service.config import Settings

# Attributes every LogRecord has; anything else was passed in `extra=` and belongs in the JSON object.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: anything a viewer may break on.
_CONTROL_ESCAPES = (
    {i: f"\\x{i:02x}" for i in [*range(32), *range(127, 160)]}
    | {10: "\\n", 13: "\\r", 9: "\\t"}
    | {0x2028: "\\u2028", 0x2029: "\\u2029"}
)


# Query parameters whose values are never personal data; every other value (customer, agent, cursor, and any
# parameter not known here) is logged as "-", so a customer's number never reaches the access log.
LOGGED_QUERY_PARAMETERS = frozenset(
    {
        "from", "to", "interval", "tz", "limit", "format", "channel", "outcome", "site", "action",
        "service_level_s", "short_abandon_s", "follow_window_s",
    }
)  # fmt: skip
REDACTED = "-"


def redact_query(target: str) -> str:
    """A request target with the values of every parameter not in ``LOGGED_QUERY_PARAMETERS`` replaced."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    parts = []
    for part in query.split("&"):
        name, equals, _value = part.partition("=")
        parts.append(
            part if name in LOGGED_QUERY_PARAMETERS else f"{name}{equals}{REDACTED}" if equals else name
        )
    return f"{path}?{'&'.join(parts)}"


class AccessLogRedaction(logging.Filter):
    """uvicorn's access log line (``'%s - "%s %s HTTP/%s" %d'``: client, method, target, version, status)
    with the target's query redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_query(args[2]), args[3], args[4])
        return True


def escape_controls(text: str) -> str:
    """Newlines and other control characters as visible escapes, so one record stays one line."""
    return text.translate(_CONTROL_ESCAPES)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(settings: Settings) -> dict[str, Any]:
    formatter = "json" if settings.log_format == "json" else "text"
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"access_redaction": {"()": AccessLogRedaction}},
        "formatters": {
            "text": {"()": TextFormatter},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {
                "handlers": [],
                "level": level,
                "propagate": True,
                "filters": ["access_redaction"],
            },
            "alembic": {"level": "WARNING" if level != "DEBUG" else level},
            # The CCC SDK writes each request with its Authorization header (SecretId and signature) at DEBUG.
            "tencentcloud_sdk_common": {"level": "INFO"},
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
