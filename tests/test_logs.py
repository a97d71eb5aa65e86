"""Logs: one record is one line, whatever the input."""

from __future__ import annotations

import logging

import orjson

from service.logs import JsonFormatter, TextFormatter


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
