"""The worker's runtime state (service/runtime.py) as an endpoint reaches it: from the request's app."""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import Scope

from service.runtime import AppState


def app_state(conn: HTTPConnection) -> AppState:
    return state_from_scope(conn.scope)


def state_from_scope(scope: Scope) -> AppState:
    state = scope["app"].state.calltrail
    assert isinstance(state, AppState)
    return state
