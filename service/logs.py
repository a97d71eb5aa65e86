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
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            "alembic": {"level": "WARNING" if level != "DEBUG" else level},
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
