"""Settings: parsing, and a documentation row for every one of them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from service.config import SETTINGS_SPEC, ConfigError, Settings, configuration_table

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DOC = ROOT / "docs" / "configuration.md"


def documented_rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for match in re.finditer(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", CONFIG_DOC.read_text(), re.MULTILINE):
        rows[match.group(1)] = match.group(2)
    return rows


def test_every_setting_is_documented_with_its_default() -> None:
    rows = documented_rows()
    defaults = Settings()
    for spec in SETTINGS_SPEC:
        assert spec.env in rows, f"{spec.env} is missing from docs/configuration.md"
        assert rows[spec.env] == str(getattr(defaults, spec.field)).removesuffix(".0"), spec.env


def test_every_variable_the_code_reads_is_a_setting() -> None:
    known = {spec.env for spec in SETTINGS_SPEC} | {s.former_env for s in SETTINGS_SPEC if s.former_env}
    used: set[str] = set()
    for path in (ROOT / "service").rglob("*.py"):
        used |= set(re.findall(r"\bCALLTRAIL_[A-Z_]+\b", path.read_text()))
    assert used <= known, f"read but not declared in SETTINGS_SPEC: {used - known}"
    assert {spec.env for spec in SETTINGS_SPEC} <= set(documented_rows())


def test_a_former_name_is_still_read_unless_the_current_one_is_set() -> None:
    assert Settings.from_env({"CALLTRAIL_WRITER_THREADS": "3"}).writer_connections == 3
    both = {"CALLTRAIL_WRITER_THREADS": "3", "CALLTRAIL_WRITER_CONNECTIONS": "1"}
    assert Settings.from_env(both).writer_connections == 1


def test_spec_covers_every_field() -> None:
    assert {s.field for s in SETTINGS_SPEC} == {f.name for f in dataclasses.fields(Settings)}
    assert all(s.env == "CALLTRAIL_" + s.field.upper() and s.doc for s in SETTINGS_SPEC)


def test_the_documented_table_is_the_declaration() -> None:
    # One declaration: a changed default or meaning shows in docs/configuration.md, or this fails. Regenerate
    # the table with: .venv/bin/python -c "from service.config import configuration_table as t; print(t())"
    assert configuration_table() in (ROOT / "docs" / "configuration.md").read_text()


def test_parses_the_environment() -> None:
    settings = Settings.from_env(
        {"CALLTRAIL_PORT": "9000", "CALLTRAIL_LOG_FORMAT": "JSON", "CALLTRAIL_SITE_CACHE_S": "1.5"}
    )
    assert settings.port == 9000
    assert settings.log_format == "json"
    assert settings.site_cache_s == 1.5
    assert settings.database_url == "sqlite:///calltrail.db"


def test_every_bad_value_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"CALLTRAIL_PORT": "http", "CALLTRAIL_WORKERS": "0", "CALLTRAIL_LOG_FORMAT": "xml"})
    message = str(info.value)
    for name in ("CALLTRAIL_PORT", "CALLTRAIL_WORKERS", "CALLTRAIL_LOG_FORMAT"):
        assert name in message


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]


def test_public_url_is_an_http_base_without_query_or_trailing_slash() -> None:
    def parsed(value: str) -> str:
        return Settings.from_env({"CALLTRAIL_PUBLIC_URL": value}).public_url

    assert Settings().public_url == ""
    assert parsed("https://events.example.com/") == "https://events.example.com"
    assert parsed(" http://10.0.0.5:8080/calltrail/ ") == "http://10.0.0.5:8080/calltrail"
    for bad in (
        "events.example.com",
        "ftp://events.example.com",
        "https://events.example.com/?a=1",
        "https://events.example.com/#top",
        "https://user:pw@events.example.com",
        "https://events.example.com:port",
        "https://",
        "https://events example.com",
    ):
        with pytest.raises(ConfigError, match="CALLTRAIL_PUBLIC_URL"):
            parsed(bad)


def test_ccc_push_rate_takes_the_rate_syntax() -> None:
    assert Settings().ccc_push_rate == "200/second"
    assert Settings.from_env({"CALLTRAIL_CCC_PUSH_RATE": "off"}).ccc_push_rate == "off"
    with pytest.raises(ConfigError, match="CALLTRAIL_CCC_PUSH_RATE"):
        Settings.from_env({"CALLTRAIL_CCC_PUSH_RATE": "lots"})
