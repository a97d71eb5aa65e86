"""A private PostgreSQL cluster that a test may stop and start without disturbing the shared server."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed under /usr/lib/postgresql")
    return found[-1]


class PrivateCluster:
    """initdb + pg_ctl as the `postgres` user, listening on a free loopback port."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise PermissionError("a private cluster needs root, to run initdb as the postgres user")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="calltrail-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(
            _bin("initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8"
        )
        self.start()
        self._as_postgres(
            _bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE calltrail",
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/calltrail"

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, timeout=120
        )

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.root}"
        self._as_postgres(
            _bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start"
        )

    def stop(self) -> None:
        self._as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
