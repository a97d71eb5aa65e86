"""The join of agent legs to page sessions, kept up to date in ``call_legs`` (the rule: domain/call_join.py).

Either side can change at any time: a record pushed after its page session, a page session projected after
its record, a session re-folded under a new id, a record re-merged with a leg more. Whichever changed is a
*seed*; ``rejoin`` loads the legs and sessions of the seed's app and agent around its time, follows
candidate pairs until no new one is found (``component``), and writes the links of that component's legs
again. What a seed can change lies within that component, so the stored links are what a join of
everything would give, whatever the order things arrived in (tests/projection/test_call_join.py).

Seeds that no longer exist (a deleted session, a replaced leg) are *probes*: they find the legs that may
have been linked to them and are left out of the join itself.

On PostgreSQL, concurrent rejoins of one app and agent serialize on an advisory lock, taken after every
other projection lock (docs/design.md, lock order). Each side writes its own rows *before* taking it and
reads the other side after, so of a push and a page session stored at the same moment, whichever takes the
lock second sees what the first committed and makes the link.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select, update

from service.domain.call_join import JoinRules, LegKey, LegSide, Link, PageSide, component, join
from service.domain.call_records import decimal_id
from service.projection.statements import chunks, lock
from service.storage.schema import call_legs, ccc_apps, sessions

# A page session's join time is its offered time, which follows its first event by at most this much in
# practice (the ring is the session's first event unless the page opened mid-call); sessions are found by
# their first event, through the (agent_email, started_at) index.
PAGE_LEAD_MS = 10 * 60_000
# How many times a component may widen its window before the join gives up on growing it (an agent with a
# call every few seconds all day long); what is loaded by then is joined.
MAX_WIDENINGS = 50

Group = tuple[str, str]  # (SdkAppId as the page gives it, agent email)


def leg_side(row: Any) -> LegSide:
    return LegSide(
        key=(int(row["sdk_app_id"]), str(row["session_id"]), int(row["leg"])),
        channel=row["channel"],
        agent_email=row["agent_email"],
        customer=row["customer"],
        at_ms=row["join_at"],
    )


def page_side(row: Any) -> PageSide:
    at = row["offered_at"] if row["offered_at"] is not None else row["started_at"]
    return PageSide(
        session_id=row["id"],
        sdk_app_id=row["sdk_app_id"],
        channel=row["channel"],
        agent_email=row["agent_email"],
        customer_mobile=row["customer_mobile"],
        customer_user_id=row["customer_user_id"],
        at_ms=at,
    )


PAGE_COLUMNS = (
    sessions.c.id,
    sessions.c.sdk_app_id,
    sessions.c.channel,
    sessions.c.agent_email,
    sessions.c.customer_mobile,
    sessions.c.customer_user_id,
    sessions.c.offered_at,
    sessions.c.started_at,
)


def may_join(conn: Connection) -> bool:
    """Whether a page session may have a leg to join: a CCC app is registered, or legs are stored. Asked
    before any lock, so it must not depend on what a concurrent transaction has not committed yet: an app
    is registered before its first push, while the legs of a push being stored now are not visible yet
    (the rejoin itself, after the lock, sees them)."""
    if conn.execute(select(ccc_apps.c.id).limit(1)).first() is not None:
        return True
    return conn.execute(select(call_legs.c.session_id).limit(1)).first() is not None


def legs_linked_to(conn: Connection, page_session_ids: Iterable[str]) -> list[LegSide]:
    found: list[LegSide] = []
    for chunk in chunks(sorted(page_session_ids)):
        query = select(call_legs).where(call_legs.c.page_session_id.in_(list(chunk)))
        found.extend(leg_side(row) for row in conn.execute(query).mappings())
    return found


def rejoin(
    conn: Connection,
    leg_seeds: Sequence[LegSide],
    page_seeds: Sequence[PageSide],
    rules: JoinRules,
) -> None:
    """Write again the links of every leg connected to the seeds."""
    groups: dict[Group, tuple[list[LegSide], list[PageSide]]] = defaultdict(lambda: ([], []))
    for leg in leg_seeds:
        if leg.agent_email is not None and leg.at_ms is not None:
            groups[(str(leg.key[0]), leg.agent_email)][0].append(leg)
    for page in page_seeds:
        if page.agent_email is not None and page.at_ms is not None and _app_id(page.sdk_app_id) is not None:
            groups[(str(page.sdk_app_id), page.agent_email)][1].append(page)
    if not groups:
        return
    ordered = sorted(groups)
    if conn.dialect.name == "postgresql":
        lock(conn, [f"join:{app}:{agent}" for app, agent in ordered])
    for group in ordered:
        seeds_legs, seeds_pages = groups[group]
        _rejoin_group(conn, group, seeds_legs, seeds_pages, rules)


def _rejoin_group(
    conn: Connection, group: Group, seed_legs: list[LegSide], seed_pages: list[PageSide], rules: JoinRules
) -> None:
    times = [leg.at_ms for leg in seed_legs if leg.at_ms is not None]
    times += [page.at_ms for page in seed_pages if page.at_ms is not None]
    low, high = min(times) - rules.tolerance_ms, max(times) + rules.tolerance_ms
    loaded_legs: dict[LegKey, LegSide] = {}
    loaded_pages: dict[str, PageSide] = {}
    window: tuple[int, int] | None = None
    for _ in range(MAX_WIDENINGS):
        if window is None or low < window[0] or high > window[1]:
            lo, hi = (low, high) if window is None else (min(low, window[0]), max(high, window[1]))
            for leg in _legs_between(conn, group, lo, hi):
                loaded_legs.setdefault(leg.key, leg)
            for page in _pages_between(conn, group, lo, hi):
                loaded_pages.setdefault(page.session_id, page)
            window = (lo, hi)
        # A seed is joined as stored now; one that is not stored any more only probes.
        seeds = [loaded_legs.get(leg.key, leg) for leg in seed_legs]
        pages = [loaded_pages.get(page.session_id, page) for page in seed_pages]
        found_legs, found_pages = component(
            seeds, pages, list(loaded_legs.values()), list(loaded_pages.values()), rules
        )
        ats = [leg.at_ms for leg in found_legs if leg.at_ms is not None]
        ats += [page.at_ms for page in found_pages if page.at_ms is not None]
        low, high = min(ats) - rules.tolerance_ms, max(ats) + rules.tolerance_ms
        if low >= window[0] and high <= window[1]:
            break
    legs = [leg for leg in found_legs if leg.key in loaded_legs]
    links = join(legs, [page for page in found_pages if page.session_id in loaded_pages], rules)
    _write_links(conn, legs, links)


def _legs_between(conn: Connection, group: Group, low: int, high: int) -> Iterable[LegSide]:
    app = _app_id(group[0])
    if app is None:
        return []
    query = select(call_legs).where(
        call_legs.c.sdk_app_id == app,
        call_legs.c.agent_email == group[1],
        call_legs.c.join_at.between(low, high),
    )
    return [leg_side(row) for row in conn.execute(query).mappings()]


def _pages_between(conn: Connection, group: Group, low: int, high: int) -> Iterable[PageSide]:
    query = select(*PAGE_COLUMNS).where(
        sessions.c.agent_email == group[1],
        sessions.c.started_at.between(low - PAGE_LEAD_MS, high),
        sessions.c.sdk_app_id == group[0],
    )
    found = (page_side(row) for row in conn.execute(query).mappings())
    return [page for page in found if page.at_ms is not None and low <= page.at_ms <= high]


def _write_links(conn: Connection, legs: Sequence[LegSide], links: dict[LegKey, Link]) -> None:
    values = []
    for leg in sorted(legs, key=lambda found: found.key):
        link = links.get(leg.key)
        values.append(
            {
                "k_app": leg.key[0],
                "k_session": leg.key[1],
                "k_leg": leg.key[2],
                "page_session_id": link.page_session_id if link else None,
                "join_state": link.state if link else None,
                "join_offset_ms": link.offset_ms if link else None,
            }
        )
    if not values:
        return
    statement = (
        update(call_legs)
        .where(
            and_(
                call_legs.c.sdk_app_id == bindparam("k_app"),
                call_legs.c.session_id == bindparam("k_session"),
                call_legs.c.leg == bindparam("k_leg"),
            )
        )
        .values(
            page_session_id=bindparam("page_session_id"),
            join_state=bindparam("join_state"),
            join_offset_ms=bindparam("join_offset_ms"),
        )
    )
    conn.execute(statement, values)


def _app_id(text: str | None) -> int | None:
    return decimal_id(text)


def rejoin_everything(conn: Connection, rules: JoinRules, chunk: int = 5000) -> None:
    """Every leg's link computed again (for ``rebuild``): each app and agent's legs as seeds, in chunks."""
    conn.execute(update(call_legs).values(page_session_id=None, join_state=None, join_offset_ms=None))
    groups = conn.execute(
        select(call_legs.c.sdk_app_id, call_legs.c.agent_email)
        .where(call_legs.c.agent_email.is_not(None), call_legs.c.join_at.is_not(None))
        .group_by(call_legs.c.sdk_app_id, call_legs.c.agent_email)
        .order_by(call_legs.c.sdk_app_id, call_legs.c.agent_email)
    ).all()
    for app, agent in groups:
        query = (
            select(call_legs)
            .where(
                call_legs.c.sdk_app_id == app,
                call_legs.c.agent_email == agent,
                call_legs.c.join_at.is_not(None),
            )
            .order_by(call_legs.c.join_at, call_legs.c.session_id, call_legs.c.leg)
        )
        legs = [leg_side(row) for row in conn.execute(query).mappings()]
        for start in range(0, len(legs), chunk):
            rejoin(conn, legs[start : start + chunk], [], rules)
