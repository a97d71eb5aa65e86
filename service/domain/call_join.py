"""The join of CCC's agent legs to the pop-up page sessions that showed them. Pure: no I/O.

A leg (one agent's part of a CCC session, call_records.py) and a page session (what the pop-up saw of a
call, sessions.py) are *candidates* when they are of the same CCC app, the same agent, the same customer
(the normalised number of a phone call, a chat's user id; not compared when the PII mode is ``mask``, where
two customers' masks can coincide), a compatible channel, and the leg's ring time is within the tolerance of
the session's offered time. The join is then one-to-one, nearest first: candidate pairs in ascending order
of distance, each taken when neither side is taken yet. Two pairs sharing a side whose distances differ by
less than ``ambiguity_ms`` cannot be told apart (CCC's times are whole seconds), so neither is taken and
the leg is marked ambiguous: recorded, not guessed. docs/call-records.md ("Join") has the rule and examples.

The result depends only on the candidates, never on the order they are given in; and a leg's link depends
only on the legs and sessions connected to it by candidate pairs (``component``), which is what the storage
side recomputes when either side changes.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from service.domain.numbers import normalise_number

JoinState = Literal["joined", "ambiguous"]
DEFAULT_TOLERANCE_MS: Final = 60_000
# CCC's timestamps are whole seconds and the page's are the browser's milliseconds: distances that differ
# by less than a second do not say which is nearer.
DEFAULT_AMBIGUITY_MS: Final = 1_000

# The page's ``type`` values (ccc-protocol.md) that can show a leg of each CCC channel; None: not given.
_PAGE_CHANNELS: dict[str, frozenset[str | None]] = {
    "phone": frozenset({"phone", "om", None}),
    "chat": frozenset({"im", "oim", None}),
    "video": frozenset({"om", "oim", None}),
}

LegKey = tuple[int, str, int]  # (SdkAppId, SessionId, leg index)


@dataclass(frozen=True)
class JoinRules:
    tolerance_ms: int = DEFAULT_TOLERANCE_MS
    by_customer: bool = True  # False under the ``mask`` PII mode
    ambiguity_ms: int = DEFAULT_AMBIGUITY_MS


DEFAULT_JOIN_RULES: Final = JoinRules()


@dataclass(frozen=True)
class LegSide:
    key: LegKey
    channel: str
    agent_email: str | None
    customer: str | None  # the record's: normalised (phone) or the chat's user id, protected as stored
    at_ms: int | None  # the leg's ring, else its start


@dataclass(frozen=True)
class PageSide:
    session_id: str
    sdk_app_id: str | None  # as the page's hash gave it
    channel: str | None
    agent_email: str | None
    customer_mobile: str | None
    customer_user_id: str | None
    at_ms: int | None  # offered, else the first event

    def customer_for(self, channel: str) -> str | None:
        if channel == "phone":
            # The page's number as stored: protected under hmac (normalised before, domain/pii.py), raw
            # otherwise; normalising a token changes nothing.
            return None if self.customer_mobile is None else normalise_number(self.customer_mobile)
        return self.customer_user_id


@dataclass(frozen=True)
class Link:
    state: JoinState
    page_session_id: str | None  # the joined session; None when ambiguous
    offset_ms: int | None  # the session's time minus the leg's (the two clocks' skew plus the delay)


def is_candidate(leg: LegSide, page: PageSide, rules: JoinRules) -> bool:
    if leg.at_ms is None or page.at_ms is None or leg.agent_email is None:
        return False
    if page.sdk_app_id != str(leg.key[0]) or page.agent_email != leg.agent_email:
        return False
    if page.channel not in _PAGE_CHANNELS.get(leg.channel, frozenset()):
        return False
    if rules.by_customer:
        customer = page.customer_for(leg.channel)
        if leg.customer is None or customer is None or customer != leg.customer:
            return False
    return abs(page.at_ms - leg.at_ms) <= rules.tolerance_ms


def candidate_pairs(
    legs: Iterable[LegSide], pages: Iterable[PageSide], rules: JoinRules
) -> list[tuple[LegSide, PageSide]]:
    """Every candidate pair, found by time (pages sorted by time, each leg's tolerance looked up by bisection)
    rather than by trying every pair: an agent's day is thousands of each."""
    timed = sorted((page for page in set(pages) if page.at_ms is not None), key=_page_order)
    times = [page.at_ms or 0 for page in timed]
    found: list[tuple[LegSide, PageSide]] = []
    for leg in sorted(set(legs), key=lambda leg: leg.key):
        if leg.at_ms is None:
            continue
        first = bisect_left(times, leg.at_ms - rules.tolerance_ms)
        last = bisect_right(times, leg.at_ms + rules.tolerance_ms)
        found.extend((leg, page) for page in timed[first:last] if is_candidate(leg, page, rules))
    return found


def _page_order(page: PageSide) -> tuple[int, str]:
    return (page.at_ms or 0, page.session_id)


def join(legs: Iterable[LegSide], pages: Iterable[PageSide], rules: JoinRules) -> dict[LegKey, Link]:
    """Each leg with a candidate, linked to its session or marked ambiguous; legs without one are absent."""
    pairs = sorted(
        (abs(offset), leg.key, page.session_id, offset)
        for leg, page in candidate_pairs(legs, pages, rules)
        for offset in [(page.at_ms or 0) - (leg.at_ms or 0)]  # both present: candidates have times
    )
    taken_legs: set[LegKey] = set()
    taken_pages: set[str] = set()
    links: dict[LegKey, Link] = {}
    for index, (distance, leg_key, page_id, offset) in enumerate(pairs):
        if leg_key in taken_legs or page_id in taken_pages:
            continue
        rivals = [
            (other_leg, other_page)
            for other_distance, other_leg, other_page, _ in _within(pairs, index, distance, rules)
            if (other_leg == leg_key or other_page == page_id)
            and other_leg not in taken_legs
            and other_page not in taken_pages
        ]
        if rivals:
            for other_leg, other_page in [(leg_key, page_id), *rivals]:
                taken_legs.add(other_leg)
                taken_pages.add(other_page)
                links[other_leg] = Link("ambiguous", None, None)
            continue
        taken_legs.add(leg_key)
        taken_pages.add(page_id)
        links[leg_key] = Link("joined", page_id, offset)
    return links


def _within(
    pairs: list[tuple[int, LegKey, str, int]], index: int, distance: int, rules: JoinRules
) -> Iterable[tuple[int, LegKey, str, int]]:
    """The pairs after ``index`` whose distance is less than ``ambiguity_ms`` more (pairs are sorted)."""
    for later in pairs[index + 1 :]:
        if later[0] - distance >= rules.ambiguity_ms:
            return
        yield later


def component(
    seed_legs: Sequence[LegSide],
    seed_pages: Sequence[PageSide],
    legs: Sequence[LegSide],
    pages: Sequence[PageSide],
    rules: JoinRules,
) -> tuple[list[LegSide], list[PageSide]]:
    """The legs and sessions connected to the seeds by candidate pairs (the seeds included): all a seed's
    link can depend on. An item is known by its key: a seed stands for the item of its key in ``legs`` or
    ``pages`` when there is one."""
    all_legs = {leg.key: leg for leg in seed_legs} | {leg.key: leg for leg in legs}
    all_pages = {page.session_id: page for page in seed_pages} | {page.session_id: page for page in pages}
    pages_of: dict[LegKey, list[str]] = {}
    legs_of: dict[str, list[LegKey]] = {}
    for leg, page in candidate_pairs(all_legs.values(), all_pages.values(), rules):
        pages_of.setdefault(leg.key, []).append(page.session_id)
        legs_of.setdefault(page.session_id, []).append(leg.key)
    found_legs = {leg.key for leg in seed_legs}
    found_pages = {page.session_id for page in seed_pages}
    leg_frontier, page_frontier = set(found_legs), set(found_pages)
    while leg_frontier or page_frontier:
        next_pages = {sid for key in leg_frontier for sid in pages_of.get(key, ()) if sid not in found_pages}
        next_legs = {key for sid in page_frontier for key in legs_of.get(sid, ()) if key not in found_legs}
        found_pages |= next_pages
        found_legs |= next_legs
        leg_frontier, page_frontier = next_legs, next_pages
    return [all_legs[key] for key in sorted(found_legs)], [all_pages[sid] for sid in sorted(found_pages)]
