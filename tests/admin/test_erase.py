"""`calltrail erase --customer`: one customer's data out of the raw events, sessions, actions, the
quarantine, the raw CCC log and the call records, in any stored form, and nothing of anyone else's; verify
still passes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, insert, select

from service.admin.registry import Site
from service.config import Settings
from service.domain.erasure import EXACT, MASKED, Customer, event_match, raw_record_match
from service.domain.pii import PiiPolicy
from service.storage.schema import (
    actions,
    call_records,
    ccc_raw_records,
    events,
    quarantined_events,
    sessions,
)
from tests.admin.test_seal import KEY, run_cli, seal_now, store_ccc
from tests.ccc.pushes import APP_A, cdr
from tests.projection_helpers import T0, hash_row, ingest, message_row, rebuild_all

ALICE = "13800138000"
BOB = "13900139000"
PII_KEY = "p" * 24


def customer_rows(site: Site, start: int, mobile: str, policy: PiiPolicy, user_id: str) -> list[Any]:
    rows = []
    page = f"page-{start}"
    for seq, (kind, value) in enumerate(
        [
            ("hash", f"#?mobile={mobile}&userId={user_id}&status=100&agentEmail=ann@x.com"),
            ("hash", f"#?mobile={mobile}&status=200&agentEmail=ann@x.com"),
            ("callOut", {"phoneNumber": mobile}),
        ],
        start=1,
    ):
        at = T0 + start * 10_000 + seq * 1000
        if kind == "hash":
            row = hash_row(site.id, page, seq, at, str(value))
        else:
            row = message_row(site.id, page, seq, at, "callOut", value)
        row["raw"] = orjson.dumps(policy.protect_event(orjson.loads(row["raw"]))).decode()
        rows.append(row)
    return rows


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def stored_text(engine: Engine) -> str:
    with engine.connect() as conn:
        texts = [r.raw for r in conn.execute(select(events.c.raw))]
        texts += [r.body for r in conn.execute(select(ccc_raw_records.c.body))]
        texts += [repr(tuple(r)) for r in conn.execute(select(sessions))]
        texts += [repr(tuple(r)) for r in conn.execute(select(actions))]
        texts += [repr(tuple(r)) for r in conn.execute(select(call_records))]
    return "\n".join(texts)


@pytest.mark.parametrize("mode", ["raw", "hmac"])
def test_erase_removes_one_customer_everywhere_and_nothing_else(
    settings: Settings, engine: Engine, site: Site, mode: str
) -> None:
    policy = PiiPolicy(mode, PII_KEY.encode())  # type: ignore[arg-type]
    settings = settings.replace(pii_mode=mode, pii_key=PII_KEY if mode == "hmac" else "")
    ingest(
        settings,
        [
            # Alice in two spellings of her number, and Bob.
            customer_rows(site, 1, "+86 138 0013 8000", policy, "alice-id"),
            customer_rows(site, 2, ALICE, policy, "alice-id"),
            customer_rows(site, 3, BOB, policy, "bob-id"),
        ],
    )
    for number in ("0086" + ALICE, "0086" + BOB):
        document = cdr(APP_A, Caller=number)
        if mode == "hmac":
            from service.domain.call_record_pii import protect_raw_record

            document = protect_raw_record(document, policy)
        store_ccc(engine, document)
    with engine.begin() as conn:  # a quarantined event of Alice's
        row = customer_rows(site, 9, ALICE, policy, "alice-id")[0]
        conn.execute(
            insert(quarantined_events).values(**row, id=10_000, reason="too deep", quarantined_at=T0)
        )
    rebuild_all(settings)
    seal_now(settings)
    alice_sessions = count(engine, sessions) - 1  # one or two: hmac gives both spellings one token
    assert alice_sessions in (1, 2) and count(engine, call_records) == 2
    env_args = ("erase", "--customer", "+8613800138000")

    def erase(*extra: str) -> Any:
        from click.testing import CliRunner

        from service.cli import cli

        env = {
            "CALLTRAIL_DATABASE_URL": settings.database_url,
            "CALLTRAIL_SEAL_KEY": KEY,
            "CALLTRAIL_PII_MODE": mode,
            "CALLTRAIL_PII_KEY": PII_KEY if mode == "hmac" else "",
        }
        return CliRunner().invoke(cli, [*env_args, *extra], env=env, catch_exceptions=False)

    before = stored_text(engine)
    dry = erase()
    assert dry.exit_code == 0, dry.output
    assert (
        f"would remove: 6 raw events, {alice_sessions} sessions, 1 quarantined events, 1 raw CCC records, "
        "1 call records" in dry.output
    )
    assert stored_text(engine) == before

    done = erase("--yes", "--reason", "ticket 42")
    assert done.exit_code == 0, done.output
    assert (
        f"removed: 6 raw events, {alice_sessions} sessions, 2 actions, 1 quarantined events, "
        "1 raw CCC records, 1 call records" in done.output
    )
    after = stored_text(engine)
    alice_forms = {ALICE, "138 0013 8000", "alice-id", policy.protect(ALICE), policy.protect("alice-id")}
    assert not [form for form in alice_forms if form in after]
    assert policy.protect(BOB) in after and policy.protect("bob-id") in after
    assert count(engine, events) == 3 and count(engine, sessions) == 1 and count(engine, call_records) == 1
    assert count(engine, quarantined_events) == 0
    with engine.connect() as conn:
        (bob,) = conn.execute(select(sessions.c.customer_mobile)).scalars()
    assert bob == policy.protect(BOB)
    verified = run_cli(settings.database_url, "verify")
    assert verified.exit_code == 0, verified.output
    assert "7 removed rows accounted for" in verified.output
    with engine.connect() as conn:
        from service.storage.schema import seals

        reasons = set(conn.execute(select(seals.c.reason).where(seals.c.kind == "removal")).scalars())
    assert reasons == {"erasure: ticket 42"}


def test_matching_forms() -> None:
    key = PII_KEY.encode()
    alice = Customer.of("+86 138-0013-8000", key)
    hmac_policy = PiiPolicy("hmac", key)
    assert alice.match("008613800138000", number=True) == EXACT
    assert alice.match(hmac_policy.protect(ALICE), number=True) == EXACT
    assert alice.match("138****8000", number=True) == MASKED
    assert alice.match(BOB, number=True) is None
    assert alice.match(True, number=True) is None
    user = Customer.of("alice-id", key)
    assert user.match("alice-id", number=False) == EXACT
    assert user.match(hmac_policy.protect("alice-id"), number=False) == EXACT
    hash_raw = orjson.dumps(
        {"type": "hash", "hash": "#?mobile=%2B86%20138%200013%208000&status=100"}
    ).decode()
    assert event_match(alice, "hash", hash_raw) == EXACT
    assert event_match(alice, "page", hash_raw) is None
    assert raw_record_match(alice, orjson.dumps({"TelLocation": {"TelNumber": ALICE}}).decode()) == EXACT
    assert raw_record_match(alice, orjson.dumps({"Callee": "02566666666"}).decode()) is None


def test_masked_matches_are_left_unless_asked(settings: Settings, engine: Engine, site: Site) -> None:
    policy = PiiPolicy("mask")
    ingest(settings, [customer_rows(site, 1, ALICE, policy, "alice-id")])
    seal_now(settings)
    base = ("erase", "--customer", ALICE, "--yes")
    shown = run_cli(settings.database_url, *base)
    assert shown.exit_code == 0, shown.output
    assert "removed: 0 raw events" in shown.output
    assert "left: 3 raw events holding a matching masked number" in shown.output
    assert count(engine, events) == 3
    gone = run_cli(settings.database_url, *base, "--include-masked")
    assert "removed: 3 raw events" in gone.output
    assert count(engine, events) == 0
    assert run_cli(settings.database_url, "verify").exit_code == 0
