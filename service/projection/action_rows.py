"""Agent actions as the projection writes them: a page's actions computed again from all of its messages and
hash events (domain/actions.py), replaced in one go, and the sessions' card and call-out counts recounted."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update

from service.domain.actions import Action, PageHash, PageMessage, actions_for_page
from service.projection.statements import PageKey, chunks, clip, on_pages
from service.storage.schema import actions, events, hash_events, sessions


def pages_with_actions(conn: Connection, pages: list[PageKey]) -> set[PageKey]:
    found: set[PageKey] = set()
    for chunk in chunks(pages):
        query = select(actions.c.site_id, actions.c.page_id).distinct()
        query = query.where(on_pages(actions, chunk))
        found.update((row.site_id, row.page_id) for row in conn.execute(query))
    return found


def compute_actions(
    conn: Connection, pages: list[PageKey], parsed: list[dict[str, Any]], moves: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The pages' actions as they will be once this transaction's writes are done, and the sessions their
    actions pointed to before; reads only (the new hash events and moves are applied in memory)."""
    moved = {(m["b_site"], m["b_event"]): m["b_session"] for m in moves}
    fresh: dict[PageKey, list[dict[str, Any]]] = defaultdict(list)
    for p in parsed:
        fresh[(p["site_id"], p["page_id"])].append(p)
    new_rows: list[dict[str, Any]] = []
    previous: set[str] = set()
    for chunk in chunks(pages):
        hashes: dict[PageKey, list[PageHash]] = defaultdict(list)
        seen: set[tuple[int, str]] = set()
        hash_query = select(
            hash_events.c.site_id,
            hash_events.c.page_id,
            hash_events.c.seq,
            hash_events.c.event_id,
            hash_events.c.session_id,
            hash_events.c.agent_email,
        ).where(on_pages(hash_events, chunk))
        for h in conn.execute(hash_query):
            session_id = moved.get((h.site_id, h.event_id), h.session_id)
            hashes[(h.site_id, h.page_id)].append(PageHash(h.seq, h.event_id, session_id, h.agent_email))
            seen.add((h.site_id, h.event_id))
        for key in chunk:
            for p in fresh.get(key, []):
                if (p["site_id"], p["event_id"]) not in seen:
                    hashes[key].append(PageHash(p["seq"], p["event_id"], p["session_id"], p["agent_email"]))

        messages: dict[PageKey, list[PageMessage]] = defaultdict(list)
        message_columns = ("site_id", "page_id", "event_id", "seq", "event_at", "raw")
        message_query = select(*(events.c[name] for name in message_columns)).where(
            on_pages(events, chunk), events.c.type == "message"
        )
        for m in conn.execute(message_query):
            data = orjson.loads(m.raw).get("data")
            messages[(m.site_id, m.page_id)].append(PageMessage(m.event_id, m.seq, m.event_at, data))

        before = conn.execute(select(actions.c.session_id).where(on_pages(actions, chunk))).scalars()
        previous.update(session_id for session_id in before if session_id is not None)
        new_rows.extend(
            _action_row(site_id, action)
            for site_id, page_id in chunk
            for action in actions_for_page(page_id, hashes[(site_id, page_id)], messages[(site_id, page_id)])
        )
    return new_rows, previous


def write_actions(
    conn: Connection, pages: list[PageKey], new_rows: list[dict[str, Any]]
) -> list[tuple[int, int]]:
    """Replace the pages' actions; returns (site, time) of every action deleted or written."""
    times: list[tuple[int, int]] = []
    for chunk in chunks(pages):
        deleted = conn.execute(
            delete(actions).where(on_pages(actions, chunk)).returning(actions.c.site_id, actions.c.at)
        )
        times.extend((r.site_id, r.at) for r in deleted)
    for rows in chunks(new_rows):
        conn.execute(insert(actions), rows)
    times.extend((r["site_id"], r["at"]) for r in new_rows)
    return times


def _action_row(site_id: int, action: Action) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "id": action.id,
        "at": action.at,
        "agent_email": clip(action.agent_email, actions.c.agent_email.type),
        "action": action.action[:64],
        "session_id": action.session_id,
        "page_id": action.page_id,
        "details": orjson.dumps(action.details).decode(),
    }


def recount_sessions(conn: Connection, session_ids: list[str]) -> None:
    def count_of(name: str) -> Any:
        return (
            select(func.count())
            .where(actions.c.session_id == sessions.c.id, actions.c.action == name)
            .scalar_subquery()
        )

    for chunk in chunks(session_ids):
        conn.execute(
            update(sessions)
            .where(sessions.c.id.in_(chunk))
            .values(cards_sent=count_of("send_card"), call_outs=count_of("call_out"))
        )
