"""/openapi.json is generated from the contract's models (service/contract/); the description written out by
hand before them is kept in tests/contract/golden/openapi_before.json, and the generated one must keep its
paths, methods, parameters (name, place, type, bounds, choices, default) and every answer's fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from service.contract.openapi import document

BEFORE: dict[str, Any] = orjson.loads(
    (Path(__file__).resolve().parent / "golden" / "openapi_before.json").read_bytes()
)
NOW = document()
OPERATIONS = sorted(
    (p, m) for p, item in BEFORE["paths"].items() for m in item if not p.startswith("/dashboard")
)
CONSTRAINTS = ("type", "minimum", "maximum", "minLength", "maxLength", "default")


def parameter_facts(parameter: dict[str, Any]) -> dict[str, Any]:
    schema = parameter["schema"]
    facts = {k: schema[k] for k in CONSTRAINTS if k in schema}
    facts.setdefault("type", "string")  # an enum of strings says so by its values
    if "enum" in schema:
        facts["enum"] = sorted(schema["enum"])
    return {"in": parameter["in"], "required": parameter["required"], **facts}


# Operations added since the hand-written description: CCC's push receiver and token endpoint (docs/ccc.md),
# the call records (docs/call-records.md), the calls report (docs/metrics.md) and coverage (docs/coverage.md).
ADDED = [
    ("/v1/ccc/oauth/token", "post"),
    ("/v1/ccc/push", "post"),
    ("/v1/calls", "get"),
    ("/v1/calls/{sdk_app_id}/{session_id}", "get"),
    ("/v1/analytics/calls", "get"),
    ("/v1/coverage", "get"),
    # The admin API (docs/api.md, "Administration").
    ("/v1/admin/sites", "get"),
    ("/v1/admin/sites", "post"),
    ("/v1/admin/sites/{name}", "patch"),
    ("/v1/admin/sites/{name}", "delete"),
    ("/v1/admin/keys", "get"),
    ("/v1/admin/keys", "post"),
    ("/v1/admin/keys/{key_id}", "delete"),
    ("/v1/admin/ccc-apps", "get"),
    ("/v1/admin/ccc-apps", "post"),
    ("/v1/admin/ccc-apps/{sdk_app_id}", "delete"),
    ("/v1/admin/access-log", "get"),
]


def test_the_same_operations_are_described() -> None:
    now = sorted((p, m) for p, item in NOW["paths"].items() for m in item if not p.startswith("/dashboard"))
    assert now == sorted(OPERATIONS + ADDED)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_an_operation_keeps_its_parameters_and_answers(path: str, method: str) -> None:
    before, now = BEFORE["paths"][path][method], NOW["paths"][path][method]
    assert {p["name"]: parameter_facts(p) for p in before.get("parameters", [])} == {
        p["name"]: parameter_facts(p) for p in now.get("parameters", [])
    }
    assert sorted(before["responses"]) == sorted(now["responses"])
    for status, answer in before["responses"].items():
        assert answer.get("content", {}).keys() == now["responses"][status].get("content", {}).keys()
        for media, content in answer.get("content", {}).items():
            assert content["schema"] == now["responses"][status]["content"][media]["schema"], (status, media)


def fields(schemas: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The properties of an object schema, following a $ref and the parts of an allOf."""
    if "$ref" in schema:
        return fields(schemas, schemas[schema["$ref"].rsplit("/", 1)[1]])
    names: list[str] = []
    for part in schema.get("allOf", []):
        names += fields(schemas, part)
    return names + list(schema.get("properties", {}))


# Fields added since the description was written by hand: the join of page sessions to CCC's records.
_CALL_LINK = {"call_sdk_app_id", "call_session_id", "call_leg", "call_join_offset_ms"}
ADDED_FIELDS: dict[str, set[str]] = {
    "Session": _CALL_LINK,
    "SessionDetail": _CALL_LINK | {"call"},
    "SessionPage": set(),
    "OutboundReport": {"placed"},
}


@pytest.mark.parametrize("name", sorted(BEFORE["components"]["schemas"]))
def test_every_answer_keeps_its_fields_and_required_ones(name: str) -> None:
    before_schemas, now_schemas = BEFORE["components"]["schemas"], NOW["components"]["schemas"]
    before, now = before_schemas[name], now_schemas[name]
    now_fields, before_fields = fields(now_schemas, now), fields(before_schemas, before)
    # Every field kept, in its order; the only new ones those named above.
    assert [f for f in now_fields if f in before_fields] == before_fields
    assert set(now_fields) - set(before_fields) == ADDED_FIELDS.get(name, set())
    assert set(before.get("required", [])) <= set(now.get("required", []))


def test_enums_of_answer_fields_are_kept() -> None:
    def enums(schemas: dict[str, Any]) -> dict[tuple[str, str], list[Any]]:
        found = {}
        for name, schema in schemas.items():
            for field, prop in schema.get("properties", {}).items():
                branches = prop.get("anyOf", [prop])
                values = [v for b in branches for v in b.get("enum", []) if v is not None]
                if values:
                    found[(name, field)] = sorted(values, key=str)
        return found

    assert enums(BEFORE["components"]["schemas"]).items() <= enums(NOW["components"]["schemas"]).items()
