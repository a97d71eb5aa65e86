"""Ingestion benchmark: POST /v1/events through the real server, against the ceiling of the stack.

What it measures
----------------
On one machine, with the load generator (``wrk``, script ``bench/events.lua``) on the same machine and all
traffic on 127.0.0.1:

* (a) ``bench/noop_app.py``: a Starlette POST endpoint that only reads the body, served by uvicorn with
  the settings of ``calltrail serve`` (same host, workers, log level, loop/http implementation "auto", so
  uvloop and httptools when installed), fed the same 1-event bodies as (b): the ceiling of the stack;
* (b) ``calltrail serve``, POST /v1/events with 1 event per request;
* (c) ``calltrail serve``, POST /v1/events with 50 events per request;
* (f), only when asked (``--cases abf``): ``bench/floor_app.py``, the no-op plus a durable SQLite group
  commit of each body and nothing else, same uvicorn settings: the most (b) could reach with group commit
  on this stack; f/a is printed.

(b) and (c) on SQLite and on PostgreSQL. Every case gets a fresh database (a SQLite file in a temp dir, or
a scratch PostgreSQL database ``calltrail_bench_<random>`` that is migrated first and dropped afterwards), a
fresh server process, a site (``calltrail sites add bench``), a warm-up run, then the measured run.
Servers run with ``CALLTRAIL_LOG_LEVEL=warning`` (no access log) and, since all load comes from one IP for
one site, rate limits of 1,000,000/second (the limiter runs, the load never reaches it) unless the
environment sets them; other ``CALLTRAIL_*`` variables of the environment are passed through; all printed.
uvicorn exits with status -15 (SIGTERM re-raised) after a graceful shutdown: that counts as a clean stop.
``--code HEAD`` runs the servers on a snapshot of a commit instead of the working tree.

The events (bench/events.lua): pages of ``--page-events`` events (default 100), each page one agent's
pop-up; hash events (voice calls ringing, answered, ended) alternate with ccc-sdk sendCard messages. Since
call sessions are derived per agent in the writer's transaction, ``--page-events 0`` (one agent per wrk
thread for the whole run) shows how ingestion behaves as an agent's history grows.

Every event id is unique, so every event of a 2xx answer must be stored. After each case the server is
stopped with SIGTERM and the rows of the ``events`` table are counted: fewer rows than events acknowledged
(2xx answers x events per request, warm-up included) is a lost event, and the run FAILS (exit status 1).
More rows than acknowledged is expected by at most connections x events per request per wrk run (requests
committed while wrk was cutting its connections at the end of its duration).

Printed per case: requests/s, events/s (acknowledged events / duration), p50/p99 latency (wrk), non-2xx
answers and socket errors ("errs"); CPU used during the measured run, in cores, by the server ("srv"),
PostgreSQL's processes ("pg"), wrk and the rest of the machine ("oth": py-spy, anything else; from /proc);
peak server RSS as the maximum of the sampled sum of VmRSS over the server's processes (master + workers,
from /proc every 0.2 s) and as the sum of their VmHWM ("hwm", a bound on the simultaneous peak; the goal is
checked on it); the writer's commits/s, events per commit and ms per commit (from GET /metrics before and
after the measured run, when the server has those histograms). Then the ratio b/a (requests/s) and the
goals: b/a >= 0.5, (c) >= 50,000 events/s on SQLite and >= 30,000 on PostgreSQL, server RSS < 150 MB.

Events are projected (sessions, actions, rollups) after they are stored, by the same server, with a share of
its time while it is loaded (docs/design.md, "Projection after the commit"). After case c the benchmark
keeps the server running and waits for the projection queue to empty (``--catchup-limit``): it prints how
many acknowledged events were projected during the load, how many were still queued when wrk stopped, and
how fast the then idle server projected them. The events/s figure of case c is ingestion's (stored and
acknowledged), not the projection's.

The machine may be shared: before each case the benchmark waits for the rest of the machine to be nearly
idle, measures a case during which it was not ("oth" > 0.2 cores) again (``--noisy-retries``), and keeps
the quietest attempt, marked NOISY if it still was.

``--profile b`` (or ``c``) runs py-spy (``pip install py-spy``) on the server's processes during that case's
measured run: a flamegraph SVG and raw stacks go to a directory it prints, with the top functions by own
time. The profiled rows are marked: sampling slows the server a little.

How to run (from the repository root; needs ``wrk`` and, for PostgreSQL, a server at --pg-url)
---------------------------------------------------------------------------------------------
    .venv/bin/python bench/ingest.py                              # both backends, 1 worker, 10 s per case
    .venv/bin/python bench/ingest.py --repeat 3                   # each case 3 times; the median is shown
    .venv/bin/python bench/ingest.py --workers 2 --backend sqlite
    .venv/bin/python bench/ingest.py --backend sqlite --cases b --profile b
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
CALLTRAIL = str(VENV_BIN / "calltrail")
LUA_SCRIPT = BENCH / "events.lua"
HOST = "127.0.0.1"
ORIGIN = "http://bench.local"
EVENTS_PER_REQUEST = {"a": 1, "f": 1, "b": 1, "c": 50}
GOAL_RATIO = 0.5
GOAL_EVENTS_PER_S = {"sqlite": 50_000, "postgresql": 30_000}
GOAL_RSS_MB = 150
RSS_SAMPLE_S = 0.2
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 90.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
# One client IP and one site send everything: the rate limiter stays on (its cost is measured) with limits
# that load never reaches. Values from the environment win.
BENCH_SETTINGS = {
    "CALLTRAIL_RATE_LIMIT_PER_IP": "1000000/second",
    "CALLTRAIL_RATE_LIMIT_PER_SITE": "1000000/second",
}
# uvicorn stops on SIGTERM after its graceful shutdown, then re-raises the signal: exit status -15
STOPPED_OK = (0, -signal.SIGTERM)
# the machine is shared: before each case wait (up to QUIET_WAIT_S) for other processes to use under
# QUIET_CORES; a case during which they used more than NOISY_CORES is marked NOISY
QUIET_CORES = 0.15
QUIET_WAIT_S = 120.0
NOISY_CORES = 0.2


def emit(line: str = "") -> None:
    print(line, flush=True)


def progress(line: str) -> None:
    print(f"... {line}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ /proc sampling


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from the ppid field of /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_by_pid(pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds (user + system) each process has used so far."""
    used: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    return used


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU used so far by the server's processes, PostgreSQL's processes and the whole machine."""

    server: dict[int, float]
    postgres: dict[int, float]
    machine: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSnapshot:
        return cls(cpu_by_pid(process_tree(server_pid)), cpu_by_pid(postgres_pids()), machine_busy_seconds())


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def wait_for_quiet(limit_cores: float, timeout_s: float) -> float:
    """Wait until the machine's busy CPU over 1 s is under ``limit_cores``; the last reading, in cores."""
    deadline = time.monotonic() + timeout_s
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = machine_busy_seconds() - before
        if busy < limit_cores or time.monotonic() > deadline:
            return busy
        progress(f"machine busy ({busy:.2f} cores used by other processes), waiting before the next case")


def machine_busy_seconds() -> float:
    """CPU time spent by the whole machine (all cores, all processes), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = Path("/proc/stat").read_text().split()[1:9]
    return sum(int(x) for x in (user, nice, system, irq, softirq, steal)) / CLK_TCK


class RssSampler:
    """Samples the sum of VmRSS over a process tree; remembers each process's last VmHWM."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_rss_kib = 0
        self.hwm_kib: dict[int, int] = {}
        self.pids: list[int] = [root]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(RSS_SAMPLE_S)

    def sample(self) -> None:
        pids = process_tree(self.root)
        self.pids = pids
        self.peak_rss_kib = max(self.peak_rss_kib, sum(status_kib(pid, "VmRSS") for pid in pids))
        for pid in pids:
            hwm = status_kib(pid, "VmHWM")
            if hwm:
                self.hwm_kib[pid] = max(hwm, self.hwm_kib.get(pid, 0))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_kib / 1024

    @property
    def hwm_sum_mb(self) -> float:
        return sum(self.hwm_kib.values()) / 1024

    @property
    def hwm_each_mb(self) -> list[float]:
        return [self.hwm_kib[pid] / 1024 for pid in sorted(self.hwm_kib)]


# ------------------------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(database_url: str | None, code_dir: Path = ROOT) -> dict[str, str]:
    drop = ("CALLTRAIL_DATABASE_URL", "CALLTRAIL_PORT", "CALLTRAIL_WORKERS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env = {**BENCH_SETTINGS, **env, "CALLTRAIL_LOG_LEVEL": "warning", "CALLTRAIL_HOST": HOST}
    if database_url:
        env["CALLTRAIL_DATABASE_URL"] = database_url
    if code_dir != ROOT:  # a snapshot (--code): found before the editable install of the working tree
        env["PYTHONPATH"] = str(code_dir)
    return env


def passed_settings() -> str:
    env = server_env(None)
    names = sorted(k for k in env if k.startswith("CALLTRAIL_") and k != "CALLTRAIL_HOST")
    return " ".join(f"{k}={env[k]}" for k in names) + "; other settings at their defaults"


def calltrail(*args: str, database_url: str, code_dir: Path) -> str:
    done = subprocess.run(
        [CALLTRAIL, *args],
        env=server_env(database_url, code_dir),
        cwd=code_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"calltrail {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            status: int = answer.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


@dataclass
class Server:
    argv: list[str]
    env: dict[str, str]
    ready_url: str
    log_path: Path
    ready_any_status: bool = False
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None
    returncode: int | None = None

    @contextmanager
    def running(self) -> Iterator[subprocess.Popen[bytes]]:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=log)
            try:
                self._wait_ready()
                yield self.process
            finally:
                self._stop()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}): {self.log_tail()}")
            status = http_status(self.ready_url)
            if status == 200 or (status is not None and self.ready_any_status):
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {READY_TIMEOUT_S:.0f}s: {self.log_tail()}")

    def _stop(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.returncode = self.process.returncode

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


def calltrail_server(port: int, workers: int, database_url: str, log_path: Path, code_dir: Path) -> Server:
    argv = [CALLTRAIL, "serve", "--port", str(port), "--workers", str(workers)]
    env = server_env(database_url, code_dir)
    return Server(argv, env, f"http://{HOST}:{port}/readyz", log_path, cwd=code_dir)


def noop_server(port: int, workers: int, log_path: Path, app: str = "bench.noop_app:app") -> Server:
    # the uvicorn settings of `calltrail serve` (service/cli/server.py), from the command line
    argv = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers), "--log-level", "warning", "--lifespan", "on", "--no-server-header"]
    argv += ["--timeout-graceful-shutdown", "30"]
    env = server_env(None)
    env["CALLTRAIL_FLOOR_DB"] = str(log_path.with_suffix(".db"))  # read by bench/floor_app.py only
    return Server(argv, env, f"http://{HOST}:{port}/v1/events", log_path, ready_any_status=True)


# --------------------------------------------------------------------------------------------- databases


@dataclass
class Database:
    backend: str
    url: str
    sqlite_path: Path | None = None

    def count_events(self) -> int:
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path) as conn:
                row = conn.execute("SELECT count(*) FROM events").fetchone()
        else:
            with psycopg.connect(self.url) as conn:
                row = conn.execute("SELECT count(*) FROM events").fetchone()
        assert row is not None
        return int(row[0])

    def queued(self) -> int | None:
        """Events stored but not projected yet; None for code without a projection queue."""
        query = "SELECT count(*) FROM projection_queue"
        try:
            if self.sqlite_path is not None:
                with sqlite3.connect(self.sqlite_path, timeout=30) as conn:
                    row = conn.execute(query).fetchone()
            else:
                with psycopg.connect(self.url) as conn:
                    row = conn.execute(query).fetchone()
        except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
            return None
        assert row is not None
        return int(row[0])


@dataclass(frozen=True)
class Catchup:
    """The projection after the measured run: what was still queued when wrk stopped, and how long the idle
    server took to project it."""

    queued: int
    left: int
    seconds: float

    @property
    def drained(self) -> bool:
        return self.left == 0

    @property
    def events_per_s(self) -> float:
        return (self.queued - self.left) / self.seconds if self.seconds > 0 else 0.0


def measure_catchup(database: Database, limit_s: float) -> Catchup | None:
    started = time.monotonic()
    queued = database.queued()
    if queued is None:
        return None
    left = queued
    while left and time.monotonic() - started < limit_s:
        time.sleep(0.25)
        left = database.queued() or 0
    return Catchup(queued, left, time.monotonic() - started)


@contextmanager
def fresh_database(backend: str, tmp: Path, label: str, admin_url: str, code_dir: Path) -> Iterator[Database]:
    if backend == "sqlite":
        path = tmp / f"{label}.db"
        yield Database(backend, f"sqlite:///{path}", path)
        return
    name = f"calltrail_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        calltrail("migrate", database_url=url, code_dir=code_dir)
        yield Database(backend, url)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# ---------------------------------------------------------------------------------------------------- wrk

WRK_LINE = re.compile(r"^WRK_RESULT (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class WrkRun:
    requests: int
    duration_s: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    cpu_s: float

    @property
    def acked_requests(self) -> int:
        return self.requests - self.non_2xx


def wrk_argv(args: argparse.Namespace, url: str, seconds: float, script_args: Sequence[str]) -> list[str]:
    return [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT.relative_to(ROOT)),
        url,
        "--",
        *script_args,
    ]


def run_wrk(argv: list[str]) -> WrkRun:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = WRK_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout} {done.stderr}")
    v = {k: float(x) for k, x in (item.split("=") for item in match.group(1).split())}
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return WrkRun(
        requests=int(v["requests"]),
        duration_s=v["duration_us"] / 1e6,
        non_2xx=int(v["status"]),
        socket_errors=int(v["connect"] + v["read"] + v["write"] + v["timeout"]),
        p50_ms=v["p50_us"] / 1e3,
        p99_ms=v["p99_us"] / 1e3,
        cpu_s=cpu,
    )


# --------------------------------------------------------------------------------------- writer metrics

WRITER_METRICS = ("calltrail_writer_batch_events", "calltrail_writer_commit_seconds")


def scrape_writer_metrics(base_url: str) -> dict[str, float] | None:
    """Sums and counts of the writer's histograms from GET /metrics (all workers), or None if absent."""
    try:
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except (OSError, ValueError):
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        name = name.split("{", 1)[0]
        if any(name in (f"{m}_sum", f"{m}_count") for m in WRITER_METRICS):
            values[name] = values.get(name, 0.0) + float(rest.split()[0])
    wanted = [f"{m}_{part}" for m in WRITER_METRICS for part in ("sum", "count")]
    return values if all(k in values for k in wanted) else None


@dataclass(frozen=True)
class WriterStats:
    commits: int
    events: int
    commit_s: float


def writer_delta(before: dict[str, float] | None, after: dict[str, float] | None) -> WriterStats | None:
    if before is None or after is None:
        return None
    d = {k: after[k] - before[k] for k in after}
    return WriterStats(
        commits=int(d["calltrail_writer_commit_seconds_count"]),
        events=int(d["calltrail_writer_batch_events_sum"]),
        commit_s=d["calltrail_writer_commit_seconds_sum"],
    )


# ------------------------------------------------------------------------------------------------ py-spy


@dataclass
class Profiler:
    out_dir: Path
    label: str
    gil: bool = False
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def svg(self) -> Path:
        return self.out_dir / f"{self.label}.svg"

    @property
    def raw(self) -> Path:
        return self.out_dir / f"{self.label}.raw.txt"

    @property
    def top(self) -> Path:
        return self.out_dir / f"{self.label}.top.txt"

    def start(self, pid: int, seconds: float) -> None:
        py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
        if py_spy is None:
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        common = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--nolineno", "--nonblocking"]
        common += ["--duration", str(max(1, int(seconds)))]
        if self.gil:
            # Only samples of the thread holding the GIL: where the interpreter's one lock goes.
            common += ["--gil", "--rate", "250"]
        for fmt, path in (("flamegraph", self.svg), ("raw", self.raw)):
            argv = [*common, "--format", fmt, "--output", str(path)]
            if fmt == "raw":
                argv.append("--threads")
            self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)  # let py-spy attach before the load starts

    def finish(self, top_n: int) -> list[str]:
        """Own time (the innermost Python frame of each sample) by function, by package and by thread.

        Time spent in C (uvloop's loop, sqlite3, the socket calls) counts for the Python frame that called
        it: ``Runner.run`` is uvloop's event loop itself.
        """
        for proc in self.procs:
            proc.wait(timeout=60)
        own: Counter[str] = Counter()
        packages: Counter[str] = Counter()
        threads: Counter[str] = Counter()
        for line in self.raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [f for f in stack.split(";") if not f.startswith("process ")]
            thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread (") else "?"
            threads[re.sub(r"-\d+$", "-N", thread)] += int(count)
            leaf = frames[-1] if len(frames) > 1 else "(no Python frame)"
            own[leaf] += int(count)
            module = leaf.rpartition(" (")[2].rstrip(")")
            packages[module.split("/")[0] if len(frames) > 1 else leaf] += int(count)
        total = sum(own.values()) or 1

        def shares(counter: Counter[str], n: int) -> str:
            return ", ".join(f"{name} {k / total:.0%}" for name, k in counter.most_common(n))

        head = [
            f"{total} samples ({'holding the GIL' if self.gil else 'on CPU; idle excluded'}); by thread: {shares(threads, 4)}",
            f"own time by package: {shares(packages, 8)}",
        ]
        self.top.write_text(
            "\n".join([*head, *(f"{k / total:6.1%}  {name}" for name, k in own.most_common(60))]) + "\n"
        )
        paths = f"flamegraph {self.svg}; top 60 by own time {self.top}; raw stacks {self.raw}"
        return [paths, *head, *(f"{k / total:6.1%}  {name}" for name, k in own.most_common(top_n))]


# ------------------------------------------------------------------------------------------------- cases


@dataclass
class Result:
    case: str
    backend: str
    per_request: int
    run: WrkRun
    server_cpu_s: float
    postgres_cpu_s: float  # PostgreSQL's processes during the measured run
    other_cpu_s: float  # the rest of the machine (not server, PostgreSQL or wrk) during the measured run
    peak_rss_mb: float
    hwm_sum_mb: float
    hwm_each_mb: list[float]
    acked_events: int  # warm-up + measured
    stored: int | None  # None for the no-op
    server_rc: int | None
    writer: WriterStats | None = None
    catchup: Catchup | None = None
    warmup_errors: int = 0  # non-2xx answers and socket errors of the warm-up run
    log_tail: str = ""
    profiled: bool = False
    profile: list[str] = field(default_factory=list)

    @property
    def requests_per_s(self) -> float:
        return self.run.requests / self.run.duration_s

    @property
    def events_per_s(self) -> float:
        return self.run.acked_requests * self.per_request / self.run.duration_s

    @property
    def lost(self) -> int:
        return 0 if self.stored is None else max(0, self.acked_events - self.stored)

    @property
    def failed(self) -> bool:
        return (
            self.lost > 0
            or self.run.non_2xx > 0
            or self.run.socket_errors > 0
            or self.warmup_errors > 0
            or self.server_rc not in STOPPED_OK
        )

    def check(self) -> str:
        if self.stored is None:
            verdict = "no-op"
        elif self.lost:
            verdict = f"LOST {self.lost}"
        else:
            verdict = f"ok +{self.stored - self.acked_events}"
        if self.server_rc not in STOPPED_OK:
            verdict += f" EXIT {self.server_rc}"
        if self.run.non_2xx or self.run.socket_errors or self.warmup_errors:
            verdict += " ERRORS"
        if self.noisy:
            verdict += " NOISY"
        return verdict + (" *profiled" if self.profiled else "")

    @property
    def noisy(self) -> bool:
        return self.other_cpu_s / self.run.duration_s > NOISY_CORES


def run_case(
    args: argparse.Namespace, case: str, backend: str, tmp: Path, run_id: int, attempt: int
) -> Result:
    per_request = EVENTS_PER_REQUEST[case]
    port = free_port()
    label = f"{case}-{backend}-w{args.workers}" + (f"-{attempt + 1}" if attempt else "")
    with ExitStack() as stack:
        if case in ("a", "f"):
            database: Database | None = None
            site_key = "cts_noop"
            app = "bench.noop_app:app" if case == "a" else "bench.floor_app:app"
            server = noop_server(port, args.workers, tmp / f"{label}.log", app)
        else:
            database = stack.enter_context(fresh_database(backend, tmp, label, args.pg_url, args.code_dir))
            out = calltrail(
                "sites", "add", "bench", "--origin", ORIGIN, database_url=database.url, code_dir=args.code_dir
            )
            site_key = out.strip().splitlines()[-1]
            server = calltrail_server(port, args.workers, database.url, tmp / f"{label}.log", args.code_dir)
        url = f"http://{HOST}:{port}/v1/events"
        profiler = Profiler(args.profile_dir, label, args.profile_gil) if args.profile == case else None
        with server.running() as process, RssSampler(process.pid) as sampler:
            script = [site_key, ORIGIN, str(run_id), "0", str(per_request), str(args.page_events)]
            warm = run_wrk(wrk_argv(args, url, args.warmup, script))
            if profiler:
                profiler.start(process.pid, args.duration)
            base_url = f"http://{HOST}:{port}"
            metrics_before = scrape_writer_metrics(base_url) if database else None
            cpu_before = CpuSnapshot.take(process.pid)
            script[3] = "1"
            measured = run_wrk(wrk_argv(args, url, args.duration, script))
            cpu_after = CpuSnapshot.take(process.pid)
            server_cpu = cpu_delta(cpu_before.server, cpu_after.server)
            postgres_cpu = cpu_delta(cpu_before.postgres, cpu_after.postgres)
            other_cpu = cpu_after.machine - cpu_before.machine - server_cpu - postgres_cpu - measured.cpu_s
            writer = writer_delta(metrics_before, scrape_writer_metrics(base_url) if database else None)
            catchup = measure_catchup(database, args.catchup_limit) if database and case == "c" else None
        stored = database.count_events() if database else None
    acked = (warm.acked_requests + measured.acked_requests) * per_request
    return Result(
        case,
        backend if case not in ("a", "f") else "-",
        per_request,
        measured,
        server_cpu,
        postgres_cpu,
        other_cpu,
        sampler.peak_rss_mb,
        sampler.hwm_sum_mb,
        sampler.hwm_each_mb,
        acked,
        stored,
        server.returncode,
        writer=writer,
        catchup=catchup,
        warmup_errors=warm.non_2xx + warm.socket_errors,
        log_tail=server.log_tail(),
        profiled=profiler is not None,
        profile=profiler.finish(10) if profiler else [],
    )


# ------------------------------------------------------------------------------------------------ output


def figure_of(r: Result) -> float:
    """What a case is judged by: events/s for (c), requests/s otherwise."""
    return r.events_per_s if r.case == "c" else r.requests_per_s


def median_run(runs: list[Result]) -> Result:
    """The run whose figure is the median (the lower middle one of an even number)."""
    ordered = sorted(runs, key=figure_of)
    return ordered[(len(ordered) - 1) // 2]


HEADER = (
    f"{'case':<4} {'backend':<10} {'ev/req':>6} {'req/s':>7} {'events/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'errs':>5} {'srv':>4} {'pg':>4} {'wrk':>4} {'oth':>4} {'rss MB':>6} {'hwm MB':>6} "
    f"{'commit/s':>8} {'ev/commit':>9} {'ms/commit':>9} {'acked':>9} {'stored':>9}  check"
)


def writer_columns(w: WriterStats | None, seconds: float) -> str:
    if w is None or w.commits == 0:
        return f"{'-':>8} {'-':>9} {'-':>9}"
    return f"{w.commits / seconds:>8,.0f} {w.events / w.commits:>9.1f} {w.commit_s * 1e3 / w.commits:>9.2f}"


def format_row(r: Result) -> str:
    d = r.run.duration_s
    stored = "-" if r.stored is None else f"{r.stored:,}"
    cores = (r.server_cpu_s, r.postgres_cpu_s, r.run.cpu_s, r.other_cpu_s)
    return (
        f"{r.case:<4} {r.backend:<10} {r.per_request:>6} {r.requests_per_s:>7,.0f} {r.events_per_s:>8,.0f} "
        f"{r.run.p50_ms:>7.2f} {r.run.p99_ms:>7.2f} {r.run.non_2xx + r.run.socket_errors:>5} "
        + " ".join(f"{max(0.0, c / d):>4.2f}" for c in cores)
        + f" {r.peak_rss_mb:>6.0f} {r.hwm_sum_mb:>6.0f} {writer_columns(r.writer, d)} "
        f"{r.acked_events:>9,} {stored:>9}  {r.check()}"
    )


def goal(met: bool) -> str:
    return "met" if met else "MISSED"


def summary(results: list[Result]) -> list[str]:
    lines: list[str] = []
    noop = next((r for r in results if r.case == "a"), None)
    floor = next((r for r in results if r.case == "f"), None)
    if floor and noop:
        lines.append(
            f"f/a {'(floor)':<10} {floor.requests_per_s:>8,.0f} / {noop.requests_per_s:,.0f} req/s = "
            f"{floor.requests_per_s / noop.requests_per_s:.2f}   (durable group commit and nothing else)"
        )
    for r in results:
        if r.case == "b" and noop:
            ratio = r.requests_per_s / noop.requests_per_s
            lines.append(
                f"b/a {r.backend:<10} {r.requests_per_s:>8,.0f} / {noop.requests_per_s:,.0f} req/s = "
                f"{ratio:.2f}   goal >= {GOAL_RATIO}: {goal(ratio >= GOAL_RATIO)}"
            )
    for r in results:
        if r.case == "c":
            target = GOAL_EVENTS_PER_S[r.backend]
            lines.append(
                f"c   {r.backend:<10} {r.events_per_s:>8,.0f} events/s   goal >= {target:,}: "
                f"{goal(r.events_per_s >= target)}"
            )
            if r.catchup is not None:
                stored = r.stored if r.stored is not None else r.acked_events
                projected = stored - r.catchup.queued
                state = "drained" if r.catchup.drained else f"{r.catchup.left:,} left (--catchup-limit)"
                lines.append(
                    f"    projection: {projected:,} of {stored:,} stored events projected while "
                    f"loaded; {r.catchup.queued:,} queued at the end, {state} in {r.catchup.seconds:.1f} s "
                    f"({r.catchup.events_per_s:,.0f} events/s idle)"
                )
    served = [r for r in results if r.case not in ("a", "f")]
    if served:
        worst = max(served, key=lambda r: r.hwm_sum_mb)
        lines.append(
            f"RSS  max over calltrail cases: {worst.hwm_sum_mb:.0f} MB (sum of VmHWM, case {worst.case} "
            f"{worst.backend}: {' + '.join(f'{mb:.0f}' for mb in worst.hwm_each_mb)} MB by pid); sampled sum "
            f"of VmRSS {max(r.peak_rss_mb for r in served):.0f} MB   goal < {GOAL_RSS_MB} MB: "
            f"{goal(worst.hwm_sum_mb < GOAL_RSS_MB)}"
        )
    noisy = [f"{r.case} {r.backend}" for r in results if r.noisy]
    if noisy:
        lines.append(
            f"NOISY (other processes used > {NOISY_CORES} cores during the measured run): {', '.join(noisy)};"
            " those figures are low by an unknown amount"
        )
    failed = [r for r in results if r.failed]
    if failed:
        for r in failed:
            lines.append(
                f"FAILED: case {r.case} {r.backend}: {r.check()} (non-2xx {r.run.non_2xx}, "
                f"socket errors {r.run.socket_errors}, warm-up errors {r.warmup_errors}, server exit "
                f"{r.server_rc}); server log: {r.log_tail[-600:] or 'empty'}"
            )
    else:
        lines.append("no event lost: every case stored at least the events acknowledged; no non-2xx answer")
    return lines


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def pg_version(admin_url: str) -> str:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit'),"
            " current_setting('fsync')"
        ).fetchone()
    assert row is not None
    return f"PostgreSQL {row[0]} (synchronous_commit={row[1]}, fsync={row[2]})"


def git(*argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout.rstrip("\n")


CODE_PATHS = ("service", "migrations")


def export_code(revision: str, dest: Path) -> str:
    """``service/`` and ``migrations/`` as of ``revision``, extracted into ``dest``; the full commit id."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}").strip()
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", commit, *CODE_PATHS], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return commit


def code_state(args: argparse.Namespace) -> str:
    """What code the servers run: a snapshot of a commit, or the working tree (others may be editing it)."""
    if args.code_dir != ROOT:
        return (
            f"snapshot of {args.code} = commit {args.code_commit[:12]} ({', '.join(CODE_PATHS)}), PYTHONPATH"
        )
    changed = git("status", "--porcelain", "--", *CODE_PATHS, "pyproject.toml").splitlines()
    dirty = ", ".join(line[3:] for line in changed) if changed else "none"
    commit = git("rev-parse", "--short", "HEAD").strip()
    return f"working tree at commit {commit}; uncommitted changes under test: {dirty}"


def header(args: argparse.Namespace, backends: Sequence[str]) -> list[str]:
    load_args = ["SITE", ORIGIN, "RUN", "1", "N", str(args.page_events)]
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False).stdout
    lines = [
        f"$ cd {ROOT} && {shlex.join(sys.orig_argv)}",
        f"# code: {code_state(args)}",
        f"# {os.cpu_count()} cores; python {sys.version.split()[0]}, uvicorn {package_version('uvicorn')}, "
        f"uvloop {package_version('uvloop')}, httptools {package_version('httptools')}, starlette "
        f"{package_version('starlette')}, sqlite {sqlite3.sqlite_version}, {wrk.split(' [')[0].strip()}",
    ]
    if "postgresql" in backends:
        lines.append(f"# {pg_version(args.pg_url)}")
    lines += [
        f"# server: {CALLTRAIL} serve --port PORT --workers {args.workers}; {passed_settings()}",
        f"# no-op:  {sys.executable} -m uvicorn bench.noop_app:app --host {HOST} --port PORT --workers "
        f"{args.workers} --log-level warning --lifespan on --no-server-header --timeout-graceful-shutdown 30",
        f"# load:   {shlex.join(wrk_argv(args, 'URL', args.duration, load_args))} "
        f"(after a {args.warmup:g}s warm-up)",
        "# fresh database, server and site per case; acked/stored include the warm-up; check 'ok +k': k rows"
        " committed for requests wrk cut off at its end",
    ]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="POST /v1/events throughput against a no-op Starlette app")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cases", default="abc", help="which of a, b, c, f to run (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per case")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default: 64)")
    parser.add_argument(
        "--page-events",
        type=int,
        default=100,
        help="events per page, each page one agent, before wrk starts the next (0: one page and agent per "
        "wrk thread for the whole run, so the agent's history grows without bound) (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="wrk threads (default: the number of server workers, at most the number of cores: wrk "
        "shares the cores with the server; measured on 2 cores, 1 thread against 1 worker did 26.9k "
        "no-op req/s vs 23.5k with 2; 2 threads against 2 workers 23.5k vs 20.2k with 1)",
    )
    parser.add_argument("--workers", type=int, default=1, help="server workers (default: 1)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per case; the table shows the median run (default: 1)"
    )
    parser.add_argument(
        "--catchup-limit",
        type=float,
        default=300.0,
        help="after case c, seconds to wait for the projection to drain its queue (default: %(default)s)",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://root@127.0.0.1:5432/postgres",
        help="PostgreSQL maintenance database used to create scratch databases",
    )
    parser.add_argument(
        "--noisy-retries",
        type=int,
        default=2,
        help="measure a NOISY case again up to this many times, keeping the quietest (default: 2)",
    )
    parser.add_argument(
        "--code",
        metavar="REV",
        help="run the servers on a snapshot of service/ and migrations/ at this git revision (e.g. HEAD) "
        "instead of the working tree, which others may be editing (default: the working tree)",
    )
    parser.add_argument("--profile", choices=["b", "c"], help="py-spy the server during this case")
    parser.add_argument("--profile-dir", type=Path, help="where py-spy output goes (default: a new temp dir)")
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL, at 250 Hz (where the one lock goes)",
    )
    args = parser.parse_args(argv)
    if not set(args.cases) <= {"a", "b", "c", "f"} or not args.cases:
        parser.error("--cases takes letters among a, b, c, f")
    if args.page_events and args.page_events < max(EVENTS_PER_REQUEST.values()):
        parser.error(f"--page-events must be 0 or at least {max(EVENTS_PER_REQUEST.values())}")
    if args.threads is None:
        args.threads = max(1, min(args.workers, os.cpu_count() or 1))
    if args.profile and args.profile not in args.cases:
        parser.error(f"--profile {args.profile} needs case {args.profile} in --cases")
    if args.profile:
        args.profile_dir = args.profile_dir or Path(tempfile.mkdtemp(prefix="calltrail_profile_"))
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    run_id = secrets.randbelow(2**31)
    plan = [(case, "-") for case in "af" if case in args.cases]
    plan += [(case, backend) for backend in backends for case in "bc" if case in args.cases]
    results: list[Result] = []
    every_run: list[list[Result]] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="calltrail_bench_") as tmp:
        args.code_dir = ROOT
        if args.code:
            args.code_dir = Path(tmp) / "code"
            args.code_commit = export_code(args.code, args.code_dir)
        for line in header(args, backends):
            emit(line)
        for case, backend in plan:
            kept: list[Result] = []
            for round_number in range(args.repeat):
                attempts: list[Result] = []
                try:
                    while not attempts or (attempts[-1].noisy and len(attempts) <= args.noisy_retries):
                        again = " (again: NOISY)" if attempts else ""
                        progress(f"case {case} {backend}, run {round_number + 1} of {args.repeat}{again}")
                        wait_for_quiet(QUIET_CORES, QUIET_WAIT_S)
                        label_attempt = round_number * (args.noisy_retries + 1) + len(attempts)
                        attempts.append(run_case(args, case, backend, Path(tmp), run_id, label_attempt))
                except (RuntimeError, OSError, psycopg.Error) as exc:
                    errors.append(f"FAILED: case {case} {backend} did not run: {exc}"[:2000])
                if attempts:
                    kept.append(min(attempts, key=lambda r: r.other_cpu_s))
            if kept:
                results.append(median_run(kept))
                every_run.append(kept)
    emit()
    emit(HEADER)
    emit("-" * len(HEADER))
    for r in results:
        emit(format_row(r))
    emit()
    if args.repeat > 1:
        for runs in every_run:
            figures = ", ".join(f"{figure_of(r):,.0f}" for r in runs)
            unit = "events/s" if runs[0].case == "c" else "req/s"
            emit(
                f"{runs[0].case} {runs[0].backend:<10} {len(runs)} runs, {unit}: {figures}; the table shows the median"
            )
        emit()
    lost = [r for runs in every_run for r in runs if r.failed and r not in results]
    for r in lost:
        errors.append(f"FAILED: a non-median run of case {r.case} {r.backend}: {r.check()}")
    for line in [*summary(results), *errors]:
        emit(line)
    for r in results:
        if r.profiled:
            emit()
            emit(
                f"py-spy, case {r.case} {r.backend}, {args.duration:g}s measured run (--nonblocking, 100 Hz):"
            )
            for line in r.profile:
                emit(f"  {line}")
    return 1 if errors or any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
