"""The fields of every answer are declared once and everything else agrees with the declaration: the field
lists of records (reports/records.py, reports/agents.py) are the export columns, the OpenAPI schemas' fields
and the docs' tables; and every recorded answer (tests/contract/golden/answers.json) has exactly the fields
its OpenAPI schema names, in that order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.contract.models import Call, field_names
from service.contract.openapi import document
from service.reports.agents import AGENT_FIELDS
from service.reports.records import ACTION_FIELDS, EVENT_FIELDS, SESSION_FIELDS

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS: dict[str, Any] = document()["components"]["schemas"]
ANSWERS: dict[str, str] = orjson.loads((ROOT / "tests" / "contract" / "golden" / "answers.json").read_bytes())


def properties(schema: str) -> list[str]:
    return list(SCHEMAS[schema]["properties"])


def documented_fields(path: Path, heading: str) -> list[str]:
    """The backticked names in the first column of the table under a heading, in order."""
    text = path.read_text()
    section = text[text.index(heading) :]
    table = section[: section.index("\n\n", section.index("|"))]
    names: list[str] = []
    for line in table.splitlines()[2:]:
        names += re.findall(r"`([a-z_]+)`", line.split("|")[1])
    return names


def test_record_fields_are_the_schemas_and_the_docs() -> None:
    assert properties("Session") == list(SESSION_FIELDS)
    assert properties("Action") == list(ACTION_FIELDS)
    assert properties("AgentRow") == list(AGENT_FIELDS)
    assert documented_fields(ROOT / "docs" / "sessions.md", "## The session record") == list(SESSION_FIELDS)
    calls_doc = ROOT / "docs" / "call-records.md"
    assert documented_fields(calls_doc, "### The call record") == list(field_names(Call))
    actions_doc = (ROOT / "docs" / "sessions.md").read_text()
    listed = re.search(r"Fields: (.*?)\. An action", actions_doc, re.S)
    assert listed is not None
    assert re.findall(r"`([a-z_]+)`", listed[1]) == list(ACTION_FIELDS)


def test_export_columns_are_the_record_fields() -> None:
    window = "from=2025-11-24T00:00:00Z&to=2025-12-01T00:00:00Z"
    for name, fields in [
        (f"GET /v1/sessions?{window}&limit=500&format=csv", SESSION_FIELDS),
        (f"GET /v1/audit?{window}&format=csv&limit=500", ACTION_FIELDS),
        (f"GET /v1/analytics/agents?{window}&format=csv", AGENT_FIELDS),
        ("calltrail export sessions --format csv", SESSION_FIELDS),
        ("calltrail export actions --format csv", ACTION_FIELDS),
        ("calltrail export events --format csv", EVENT_FIELDS),
    ]:  # fmt: skip
        body = ANSWERS[name].split("\n", 1)[1] if name.startswith("GET") else ANSWERS[name]
        assert body.splitlines()[0].split(",") == list(fields), name


REPORT_SCHEMAS = {
    "/v1/sessions?": ("SessionPage", {"sessions": "Session"}),
    "/v1/audit?": ("AuditPage", {"actions": "Action"}),
    "/v1/analytics/inbound?": ("InboundReport", {}),
    "/v1/analytics/agents?": ("AgentsReport", {"agents": "AgentRow"}),
    "/v1/analytics/cards?": ("CardsReport", {}),
    "/v1/analytics/outbound?": ("OutboundReport", {}),
    "/v1/quality?": ("Quality", {}),
}


@pytest.mark.parametrize("path", sorted(REPORT_SCHEMAS))
def test_every_recorded_answer_has_its_schemas_fields(path: str) -> None:
    schema, items = REPORT_SCHEMAS[path]
    checked = 0
    for name, text in ANSWERS.items():
        head, _, body = text.partition("\n")
        if not name.startswith(f"GET {path}") or not head.startswith("200 application/json"):
            continue
        answer = orjson.loads(body)
        assert list(answer) == properties(schema), name
        for key, item_schema in items.items():
            for item in answer[key]:
                assert list(item) == properties(item_schema), name
        checked += 1
    assert checked >= 1
