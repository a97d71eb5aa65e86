"""What a report covers (a window by offer time, actions by their time, and filters), and how a window
splits into the whole spans its rollups hold and the raw edges around them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from service.projection.statements import SiteIds, of_sites
from service.storage.schema import actions

CHAT_CHANNELS = ("im", "oim")


@dataclass(frozen=True)
class ReportFilter:
    """Which data a report covers: [start, end) by offer time (actions by their time), and filters."""

    start_ms: int
    end_ms: int
    site_id: SiteIds = None
    channel: str | None = None
    agent: str | None = None


def split_window(
    start_ms: int, end_ms: int, inner: tuple[int, int]
) -> tuple[list[tuple[int, int]], int, int]:
    """[start, end) split into the inner whole spans [first, last) and the raw edges around them."""
    first, last = inner
    if first >= last:
        return [(start_ms, end_ms)], 0, 0
    edges = [(a, b) for a, b in ((start_ms, first), (last, end_ms)) if a < b]
    return edges, first, last


def action_window(scope: ReportFilter, names: Sequence[str]) -> Any:
    query = select(actions).where(
        actions.c.at >= scope.start_ms, actions.c.at < scope.end_ms, actions.c.action.in_(names)
    )
    query = query.where(*of_sites(actions.c.site_id, scope.site_id))
    if scope.agent is not None:
        query = query.where(actions.c.agent_email == scope.agent)
    return query
