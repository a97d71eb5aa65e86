"""`calltrail serve`, `migrate` and `demo`: running the service."""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from service.cli.common import cli, prepare_database, settings_from_env
from service.http.deadlines import DeadlineProtocol
from service.logs import configure_logging, logging_config
from service.storage.migrations import upgrade
from service.telemetry import MULTIPROC_ENV

if TYPE_CHECKING:
    pass

GRACEFUL_SHUTDOWN_TIMEOUT_S = 30


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cli.command()
@click.option("--host", help="Address to listen on [CALLTRAIL_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [CALLTRAIL_PORT, default 8000].")
@click.option("--workers", type=click.IntRange(1, 64), help="Processes [CALLTRAIL_WORKERS, default 1].")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP service (migrating SQLite first)."""
    import uvicorn

    settings = settings_from_env()
    settings = settings.replace(
        host=host or settings.host, port=port or settings.port, workers=workers or settings.workers
    )
    configure_logging(settings)
    prepare_database(settings)
    metrics_dir = None
    if settings.workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # Workers inherit the variable and pool their metrics there (service/telemetry.py).
        metrics_dir = tempfile.mkdtemp(prefix="calltrail-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    click.echo(
        f"calltrail serving on http://{settings.host}:{settings.port} with {settings.workers} worker(s)",
        err=True,
    )
    if settings.allowed_hosts.strip() == "*" and not _is_loopback(settings.host):
        click.echo(
            f"warning: listening on {settings.host} with CALLTRAIL_ALLOWED_HOSTS=*: any Host header is "
            "answered; set it to the names clients use (docs/security.md)",
            err=True,
        )
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=logging_config(settings),
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT_S,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        http=DeadlineProtocol,
    )
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)


@cli.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def migrate(revision: str) -> None:
    """Apply database migrations (needed before `serve` on PostgreSQL)."""
    settings = settings_from_env()
    configure_logging(settings)
    upgrade(settings.database_url, revision)
    click.echo(f"database at revision {revision}")


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65534),
    default=8100,
    show_default=True,
    help="The service's port; the demo pages take the next one. 0 picks free ports.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo database in this directory (by default it is deleted on exit).",
)
def demo(port: int, data_dir: Path | None) -> None:
    """Try CallTrail: the service, a workstation simulator and a CRM pop-up page, on a throwaway database."""
    from service import demo as demo_module

    try:
        demo_module.run(port, data_dir, click.echo)
    except demo_module.DemoError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        # Ctrl+C is how a demo ends: uvicorn has shut down cleanly and re-raised it.
        click.echo("demo stopped")
