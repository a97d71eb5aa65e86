"""Logs: one record is one line, whatever the input."""

from __future__ import annotations

import logging
import logging.config

import orjson

from service.config import Settings
from service.logs import JsonFormatter, TextFormatter, logging_config


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("calltrail.test", logging.INFO, __file__, 1, message, args, None)


FORGED = "GET /x\n2026-01-01 00:00:00,000 ERROR calltrail forged line\r\x1b[31m"


def test_text_escapes_control_characters() -> None:
    line = TextFormatter().format(record("path %s", FORGED))
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
    assert "\\n2026-01-01" in line


def test_json_is_one_object_per_line() -> None:
    rec = record("path %s", FORGED)
    rec.site_id = 7
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["message"] == f"path {FORGED}"
    assert entry["level"] == "info"
    assert entry["site_id"] == 7


def test_unicode_line_breaks_are_escaped_too() -> None:
    line = TextFormatter().format(record("x %s", "a\u2028b\u2029c\x85d"))
    assert "\u2028" not in line
    assert "\u2029" not in line
    assert "\x85" not in line


def test_the_ccc_sdks_request_lines_stay_out_of_a_debug_log() -> None:
    # The SDK writes each request with its Authorization header at DEBUG (service/logs.py).
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    sdk = logging.getLogger("tencentcloud_sdk_common")
    try:
        logging.config.dictConfig(logging_config(Settings(log_level="DEBUG")))
        assert root.isEnabledFor(logging.DEBUG)
        assert logging.getLogger("calltrail.ccc").isEnabledFor(logging.DEBUG)
        assert not sdk.isEnabledFor(logging.DEBUG)
        assert sdk.isEnabledFor(logging.INFO)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        sdk.setLevel(logging.NOTSET)
