"""The read API's routes, a module per report; each waits for acknowledged events to be projected."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import Route

from service.http.audit import AccessAudit
from service.reports.agents import agents_report
from service.reports.audit import audit_trail
from service.reports.calls import get_call, list_calls
from service.reports.calls_report import calls_report
from service.reports.cards import cards_report
from service.reports.coverage import coverage_report
from service.reports.freshness import FreshnessHeaderMiddleware
from service.reports.inbound import inbound_report
from service.reports.live import live_report
from service.reports.outbound import outbound_report
from service.reports.quality import quality_report
from service.reports.sessions import get_session, list_sessions

# Only the query routes wait for the projection and may carry its header; ingestion never pays for it.
_FRESHNESS = [Middleware(FreshnessHeaderMiddleware)]
# Reads of customer data (sessions, calls, actions, who is on a call now) and every export: an access-log
# entry each (http/audit.py). The aggregate reports name no customer and are not logged, unless exported.
_AUDITED = [*_FRESHNESS, Middleware(AccessAudit)]
_EXPORTS_AUDITED = [*_FRESHNESS, Middleware(AccessAudit, exports_only=True)]

routes = [
    Route("/v1/sessions", list_sessions, methods=["GET"], middleware=_AUDITED),
    Route("/v1/sessions/{session_id}", get_session, methods=["GET"], middleware=_AUDITED),
    Route("/v1/calls", list_calls, methods=["GET"], middleware=_AUDITED),
    Route("/v1/calls/{sdk_app_id}/{session_id}", get_call, methods=["GET"], middleware=_AUDITED),
    Route("/v1/analytics/inbound", inbound_report, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/analytics/calls", calls_report, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/analytics/agents", agents_report, methods=["GET"], middleware=_EXPORTS_AUDITED),
    Route("/v1/analytics/cards", cards_report, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/analytics/outbound", outbound_report, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/audit", audit_trail, methods=["GET"], middleware=_AUDITED),
    Route("/v1/live", live_report, methods=["GET"], middleware=_AUDITED),
    Route("/v1/quality", quality_report, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/coverage", coverage_report, methods=["GET"], middleware=_FRESHNESS),
]
