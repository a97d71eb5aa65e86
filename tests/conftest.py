from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from service.admin.registry import Site, add_site
from service.app import create_app
from service.config import Settings
from service.storage.engine import make_engine
from tests import databases

BACKENDS = ["sqlite", "postgresql"]
ORIGIN = "https://crm.example.com"
IN_CI = os.environ.get("CI") == "true"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With CI=true nothing may be skipped silently: a skip is reported as a failure."""
    report: pytest.TestReport = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"
    return report


def require_postgres() -> None:
    """In CI a PostgreSQL test may never be skipped: it fails instead."""
    reason = databases.pg_reachable()
    if reason is None:
        return
    message = f"PostgreSQL is not reachable at {databases.PG_ADMIN_URL}: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.sqlite_create_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    require_postgres()
    admin = databases.pg_admin_engine()
    databases.pg_create_template(admin)
    yield admin
    databases.pg_drop_database(admin, databases.PG_TEMPLATE)
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _fresh_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, *, migrated: bool
) -> Iterator[str]:
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template") if migrated else None
        yield databases.sqlite_create_database(template, tmp_path)
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    name = databases.pg_create_database(admin, migrated=migrated)
    yield databases.pg_url(name)
    databases.pg_drop_database(admin, name)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the schema's head, of the parametrized backend."""
    yield from _fresh_url(backend, request, tmp_path, migrated=True)


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database with no tables at all."""
    yield from _fresh_url(backend, request, tmp_path, migrated=False)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def site(engine: Engine) -> Site:
    return add_site(engine, "crm", [ORIGIN])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client wired to the app in-process, with its lifespan (and so its writer) running."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(settings) as client:
        yield client
