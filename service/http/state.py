"""What every endpoint of one worker shares (built by service/runtime.py for the app's lifespan), and how an
endpoint reaches it: from the request's app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from starlette.requests import HTTPConnection
from starlette.types import Scope

from service.admin.registry import SiteDirectory
from service.config import Settings
from service.domain.call_join import JoinRules
from service.domain.pii import PiiPolicy
from service.domain.sessions import Timeouts
from service.ingest.ratelimit import RateLimits
from service.ingest.writer import IngestWriter


@dataclass
class AppState:
    settings: Settings
    read_engine: Engine
    # Write-role engine of the CCC receiver (service/http/ccc.py): each push and each token is its own
    # synchronous transaction, committed before the answer.
    ccc_engine: Engine
    writer: IngestWriter
    sites: SiteDirectory
    rate_limits: RateLimits
    pii: PiiPolicy
    timeouts: Timeouts
    join_rules: JoinRules


def app_state(conn: HTTPConnection) -> AppState:
    return state_from_scope(conn.scope)


def state_from_scope(scope: Scope) -> AppState:
    state = scope["app"].state.calltrail
    assert isinstance(state, AppState)
    return state
