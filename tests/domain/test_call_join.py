"""The join rule of domain/call_join.py: candidates, nearest first, one-to-one, ambiguity, any order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.call_join import JoinRules, LegSide, Link, PageSide, component, join

APP = 1400000001
T = 1_764_000_000_000
RULES = JoinRules()


def leg(
    session: str,
    at: int | None,
    *,
    agent: str = "ann@x.com",
    customer: str = "13012345678",
    index: int = 0,
    channel: str = "phone",
) -> LegSide:
    return LegSide((APP, session, index), channel, agent, customer, at)


def page(
    session: str,
    at: int | None,
    *,
    agent: str = "ann@x.com",
    mobile: str | None = "13012345678",
    user_id: str | None = None,
    app: str = str(APP),
    channel: str | None = "phone",
) -> PageSide:
    return PageSide(session, app, channel, agent, mobile, user_id, at)


def test_a_leg_joins_the_page_session_of_the_same_agent_customer_and_time() -> None:
    links = join([leg("c1", T)], [page("p1", T + 2_500)], RULES)
    assert links == {(APP, "c1", 0): Link("joined", "p1", 2_500)}


def test_the_page_number_is_normalised_before_comparing() -> None:
    links = join([leg("c1", T)], [page("p1", T, mobile="+86 130 1234 5678")], RULES)
    assert links[(APP, "c1", 0)].page_session_id == "p1"


def test_no_candidate_means_no_link() -> None:
    cases = {
        "another agent": page("p", T, agent="bob@x.com"),
        "another customer": page("p", T, mobile="13099999999"),
        "another app": page("p", T, app="1400000002"),
        "outside the tolerance": page("p", T + 60_001),
        "a chat page for a phone leg": page("p", T, channel="im"),
        "no time": page("p", None),
    }
    for name, candidate in cases.items():
        assert join([leg("c1", T)], [candidate], RULES) == {}, name


def test_the_tolerance_is_inclusive_both_ways() -> None:
    assert join([leg("c1", T)], [page("p1", T - 60_000)], RULES)[(APP, "c1", 0)].offset_ms == -60_000
    assert join([leg("c1", T)], [page("p1", T + 60_000)], RULES)[(APP, "c1", 0)].offset_ms == 60_000


def test_nearest_wins_and_the_join_is_one_to_one() -> None:
    # A repeat caller: two calls 40 s apart, each page session nearer its own leg.
    legs = [leg("c1", T), leg("c2", T + 40_000)]
    pages = [page("p1", T + 3_000), page("p2", T + 42_000)]
    links = join(legs, pages, RULES)
    assert links[(APP, "c1", 0)] == Link("joined", "p1", 3_000)
    assert links[(APP, "c2", 0)] == Link("joined", "p2", 2_000)


def test_a_second_leg_does_not_take_a_session_already_joined() -> None:
    legs = [leg("c1", T), leg("c2", T + 10_000)]
    links = join(legs, [page("p1", T + 1_000)], RULES)
    assert links == {(APP, "c1", 0): Link("joined", "p1", 1_000)}


def test_two_sessions_equally_near_are_ambiguous_and_neither_is_guessed() -> None:
    links = join([leg("c1", T)], [page("p1", T - 5_000), page("p2", T + 5_400)], RULES)
    assert links == {(APP, "c1", 0): Link("ambiguous", None, None)}


def test_two_legs_equally_near_one_session_are_both_ambiguous() -> None:
    legs = [leg("c1", T), leg("c2", T + 10_000)]
    links = join(legs, [page("p1", T + 5_000)], RULES)
    assert links == {
        (APP, "c1", 0): Link("ambiguous", None, None),
        (APP, "c2", 0): Link("ambiguous", None, None),
    }


def test_a_transfer_joins_each_agents_leg_to_that_agents_page() -> None:
    legs = [leg("c1", T, agent="ann@x.com", index=0), leg("c1", T + 90_000, agent="bob@x.com", index=1)]
    pages = [page("p-ann", T + 1_000, agent="ann@x.com"), page("p-bob", T + 91_000, agent="bob@x.com")]
    links = join(legs, pages, RULES)
    assert links[(APP, "c1", 0)].page_session_id == "p-ann"
    assert links[(APP, "c1", 1)].page_session_id == "p-bob"


def test_chats_join_by_user_id() -> None:
    chat = leg("chat-1", T, customer="wx-user-7", channel="chat")
    assert join([chat], [page("p1", T, mobile=None, user_id="wx-user-7", channel="im")], RULES)
    assert join([chat], [page("p1", T, mobile=None, user_id="wx-user-8", channel="im")], RULES) == {}


def test_without_customers_the_join_is_by_agent_and_time() -> None:
    masked = JoinRules(by_customer=False)
    links = join([leg("c1", T, customer="130****5678")], [page("p1", T, mobile="130****1111")], masked)
    assert links[(APP, "c1", 0)].page_session_id == "p1"


def test_clock_skew_within_the_tolerance_still_joins_and_is_measured() -> None:
    links = join([leg("c1", T)], [page("p1", T - 45_000)], JoinRules(tolerance_ms=50_000))
    assert links[(APP, "c1", 0)] == Link("joined", "p1", -45_000)


def test_the_component_follows_candidate_pairs_only() -> None:
    legs = [leg("c1", T), leg("c2", T + 50_000), leg("far", T + 500_000)]
    pages = [page("p1", T + 30_000), page("p2", T + 100_000)]
    found_legs, found_pages = component([legs[0]], [], legs, pages, RULES)
    assert [item.key[1] for item in found_legs] == ["c1", "c2"]
    assert [item.session_id for item in found_pages] == ["p1", "p2"]


times = st.integers(min_value=0, max_value=300_000)


@settings(max_examples=200, deadline=None)
@given(
    leg_times=st.lists(times, max_size=6),
    page_times=st.lists(times, max_size=6),
    customers=st.lists(st.sampled_from(["13000000001", "13000000002"]), min_size=12, max_size=12),
    seed=st.randoms(use_true_random=False),
)
def test_the_join_depends_neither_on_order_nor_on_component_boundaries(
    leg_times: list[int], page_times: list[int], customers: list[str], seed: object
) -> None:
    legs = [leg(f"c{i}", T + at, customer=customers[i]) for i, at in enumerate(leg_times)]
    pages = [page(f"p{i}", T + at, mobile=customers[6 + i]) for i, at in enumerate(page_times)]
    whole = join(legs, pages, RULES)
    shuffled_legs, shuffled_pages = list(legs), list(pages)
    seed.shuffle(shuffled_legs)  # type: ignore[attr-defined]
    seed.shuffle(shuffled_pages)  # type: ignore[attr-defined]
    assert join(shuffled_legs, shuffled_pages, RULES) == whole
    # Each leg's link is what the join of its component alone gives: what the storage side recomputes.
    for one in legs:
        found_legs, found_pages = component([one], [], legs, pages, RULES)
        assert join(found_legs, found_pages, RULES).get(one.key) == whole.get(one.key)
    # One-to-one.
    joined = [link.page_session_id for link in whole.values() if link.state == "joined"]
    assert len(joined) == len(set(joined))
