"""The raw log and the token table at the storage level, on both databases: a racing duplicate push waits for
the first and stores nothing; tokens are bounded per app and never outlive a rotation they raced."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, func, select, update

from service.ccc.apps import add_app, rotate_secret
from service.ccc.raw_log import RawRecordRow, raw_records, store_record
from service.ccc.tokens import MAX_LIVE_TOKENS_PER_APP, app_of_token, issue_token, issue_token_for_client
from service.config import Settings
from service.domain.instants import now_ms
from service.domain.keys import hash_secret
from service.storage.engine import make_engine
from service.storage.schema import ccc_apps, ccc_tokens


def row(push_uuid: str | None) -> RawRecordRow:
    return {
        "sdk_app_id": 1400000001,
        "source": "push",
        "action": "cdr",
        "version": "1",
        "push_uuid": push_uuid,
        "received_at": now_ms(),
        "body": '{"SdkAppId": 1400000001}',
        "session_id": None,
        "problem": "SessionId: missing",
    }


def test_a_duplicate_racing_an_uncommitted_first_waits_and_stores_nothing(
    settings: Settings, engine: Engine
) -> None:
    writers = make_engine(settings, "write")
    outcome: dict[str, bool] = {}

    def second() -> None:
        with writers.begin() as conn:
            outcome["second"] = store_record(conn, row("race"))

    try:
        with writers.connect() as first:
            transaction = first.begin()
            assert store_record(first, row("race"))
            racer = threading.Thread(target=second)
            racer.start()
            time.sleep(0.5)
            # PostgreSQL makes it wait on the unique index, SQLite on the write lock: the first is undecided.
            assert racer.is_alive()
            transaction.commit()
        racer.join(20)
        assert outcome == {"second": False}
    finally:
        writers.dispose()
    with engine.connect() as conn:
        assert [r.push_uuid for r in raw_records(conn)] == ["race"]


def test_a_rolled_back_first_leaves_the_record_to_the_retry(settings: Settings, engine: Engine) -> None:
    with engine.connect() as conn:
        transaction = conn.begin()
        assert store_record(conn, row("p"))
        transaction.rollback()
    with engine.begin() as conn:
        assert store_record(conn, row("p"))
        assert not store_record(conn, row("p"))
        assert store_record(conn, row(None))
        assert store_record(conn, row(None))
    with engine.connect() as conn:
        assert len(raw_records(conn)) == 3


def test_issuing_drops_expired_tokens_and_the_oldest_past_the_cap(engine: Engine) -> None:
    app = add_app(engine, 1400000002, "oauth2").app
    now = now_ms()
    with engine.begin() as conn:
        expired = issue_token(conn, app.id, now - 10 * 3600 * 1000).access_token
        first = issue_token(conn, app.id, now).access_token
        assert app_of_token(conn, expired, now) is None
        assert app_of_token(conn, first, now) is not None
        for _ in range(MAX_LIVE_TOKENS_PER_APP):
            last = issue_token(conn, app.id, now).access_token
        count = conn.execute(select(func.count()).select_from(ccc_tokens)).scalar_one()
        assert count == MAX_LIVE_TOKENS_PER_APP
        assert app_of_token(conn, first, now) is None
        assert app_of_token(conn, last, now) is not None


def test_a_rotation_racing_a_token_request_never_leaves_a_token_for_the_old_secret(
    settings: Settings, engine: Engine
) -> None:
    credentials = add_app(engine, 1400000003, "oauth2")
    client_id, secret = credentials.app.client_id or "", credentials.secret or ""
    writers = make_engine(settings, "write")
    try:
        # The token's transaction first: the rotation waits for it, then deletes the token with the others.
        with writers.connect() as conn:
            transaction = conn.begin()
            issued = issue_token_for_client(conn, client_id, secret, now_ms())
            assert issued is not None
            rotation = threading.Thread(target=rotate_secret, args=(writers, 1400000003))
            rotation.start()
            time.sleep(0.5)
            assert rotation.is_alive()
            transaction.commit()
        rotation.join(20)
        with engine.connect() as conn:
            assert app_of_token(conn, issued.access_token, now_ms()) is None

        # A rotation first (its update held open): the token request waits, then finds the secret changed.
        fresh = rotate_secret(writers, 1400000003).secret or ""
        outcome: dict[str, object] = {}

        def request_token() -> None:
            with writers.begin() as conn:
                outcome["token"] = issue_token_for_client(conn, client_id, fresh, now_ms())

        with writers.connect() as conn:
            transaction = conn.begin()
            the_app = ccc_apps.c.id == credentials.app.id
            conn.execute(update(ccc_apps).where(the_app).values(secret_hash=hash_secret("x")))
            requester = threading.Thread(target=request_token)
            requester.start()
            time.sleep(0.5)
            assert requester.is_alive()
            transaction.commit()
        requester.join(20)
        assert outcome == {"token": None}
    finally:
        writers.dispose()
