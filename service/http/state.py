"""What every endpoint of one worker shares: settings, engines, the writer, the site directory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from starlette.requests import HTTPConnection
from starlette.types import Scope

from service.config import Settings
from service.domain.pii import PiiPolicy
from service.domain.sessions import Timeouts
from service.http.ratelimit import RateLimits
from service.storage.loop_writer import LoopEventWriter
from service.storage.registry import SiteDirectory
from service.storage.writer import EventWriter


@dataclass
class AppState:
    settings: Settings
    read_engine: Engine
    writer: EventWriter | LoopEventWriter
    sites: SiteDirectory
    rate_limits: RateLimits
    pii: PiiPolicy
    timeouts: Timeouts


def app_state(conn: HTTPConnection) -> AppState:
    return state_from_scope(conn.scope)


def state_from_scope(scope: Scope) -> AppState:
    state = scope["app"].state.calltrail
    assert isinstance(state, AppState)
    return state
