"""Settings, read once from the environment into a frozen value object.

Each setting is declared once, as a field of ``Settings``: its default, its parser and its meaning. Its
variable is ``CALLTRAIL_`` and the field's name in capitals. ``from_env`` parses by the declaration, and the
table in ``docs/configuration.md`` is ``configuration_table()`` (``tests/test_config.py`` compares them).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from limits import parse_many

DEFAULT_DATABASE_URL = "sqlite:///calltrail.db"
MIN_SYNC_INTERVAL_S = 60
MAX_SYNC_LOOKBACK_S = 179 * 86400  # CCC answers for the last 180 days only
N = TypeVar("N", int, float)


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _parse_number(kind: type[N], what: str, minimum: N, maximum: N) -> Callable[[str], N]:
    def parse(raw: str) -> N:
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"expected {what}, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"expected {what} from {minimum} to {maximum}, got {value}")
        return value

    return parse


def _parse_int(minimum: int, maximum: int) -> Callable[[str], int]:
    return _parse_number(int, "an integer", minimum, maximum)


def _parse_float(minimum: float, maximum: float) -> Callable[[str], float]:
    return _parse_number(float, "a number", minimum, maximum)


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _parse_rate_limit(raw: str) -> str:
    value = raw.strip().lower()
    if value == "off":
        return value
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(
            f"expected a rate like 100/second or 1000/minute;50/second, or off; got {raw!r}"
        ) from None
    return value


def _parse_public_url(raw: str) -> str:
    """An http(s) base URL without query, fragment or user, and without its trailing slash, so that paths
    can be appended to it (a path prefix is kept: a proxy may serve the service under one)."""
    value = raw.strip()
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"must not contain spaces or control characters, got {raw!r}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"expected an http(s) URL like https://events.example.com, got {raw!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL like https://events.example.com, got {raw!r}")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError(f"must have no query or fragment, got {raw!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


_ENDPOINT = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def _parse_endpoint(raw: str) -> str:
    """host[:port], no scheme or path (CCC's SDK also sends and signs it as the Host header)."""
    value = raw.strip()
    if not _ENDPOINT.fullmatch(value):
        raise ValueError(
            f"expected host[:port] without a scheme or path, like ccc.tencentcloudapi.com, got {raw!r}"
        )
    return value


def _parse_sync_interval(raw: str) -> int:
    value = _parse_int(0, 7 * 86400)(raw)
    if 0 < value < MIN_SYNC_INTERVAL_S:
        raise ValueError(f"expected 0 (off) or at least {MIN_SYNC_INTERVAL_S} seconds, got {value}")
    return value


def _parse_secret(raw: str) -> str:
    # Never echo the value: the message may reach a log.
    if raw != raw.strip() or not raw.isprintable():
        raise ValueError("must not have spaces around it or control characters (value not shown)")
    return raw


def _parse_text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def setting(
    default: Any,
    parse: Callable[[str], Any],
    doc: str,
    *,
    former_env: str | None = None,
    secret: bool = False,
) -> Any:
    """A field of ``Settings``: its default, how its variable is parsed, and what it means (the docs' text).
    ``former_env`` is the variable's earlier name, still read when the current one is not set. A ``secret``
    is left out of the settings' ``repr`` (and so out of any log line or traceback that shows them)."""
    return field(
        default=default,
        repr=not secret,
        metadata={"parse": parse, "doc": doc, "former_env": former_env},
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = setting(
        DEFAULT_DATABASE_URL,
        _parse_text,
        "SQLAlchemy URL of the database: `sqlite:///path` (relative to the working directory; "
        "`sqlite:////abs/path` for an absolute one) or `postgresql://user:password@host:port/db`. "
        "On SQLite, `serve` applies migrations itself; on PostgreSQL run `calltrail migrate` "
        "first.",
    )
    host: str = setting(
        "127.0.0.1",
        _parse_text,
        "Address `serve` listens on. Use `0.0.0.0` in a container.",
    )
    port: int = setting(
        8000,
        _parse_int(1, 65535),
        "Port `serve` listens on.",
    )
    workers: int = setting(
        1,
        _parse_int(1, 64),
        "Worker processes `serve` starts (1 to 64).",
    )
    max_body_bytes: int = setting(
        64 * 1024,
        _parse_int(1024, 16 * 1024 * 1024),
        "Largest body of `POST /v1/events`, `POST /v1/ccc/push` and the CCC token endpoint; larger ones "
        "get 413. 64 KiB is the browsers' keepalive/beacon budget.",
    )
    max_events_per_batch: int = setting(
        500,
        _parse_int(1, 10_000),
        "Most events one `POST /v1/events` may carry; more is an envelope error (400).",
    )
    max_event_age_s: int = setting(
        7 * 86400,
        _parse_int(60, 366 * 86400),
        "How far (seconds) before `sent_at` an event's `ts` may lie. Older events are stored, "
        "with `event_at` clamped to this age and `ts_flag = too_old`. A week covers events queued "
        "in the browser over a weekend.",
    )
    sqlite_synchronous: Literal["full", "normal"] = setting(
        "full",
        _parse_choice("full", "normal"),
        "SQLite's `synchronous` pragma: `full` keeps committed events through a power loss, "
        "`normal` only through a crash of the process (faster).",
    )
    site_cache_s: float = setting(
        5.0,
        _parse_float(0, 3600),
        "Seconds each worker caches sites and their origins. An unknown site key triggers a "
        "reload at once (at most twice a second), so new sites work immediately; removed origins "
        "stop working within this time.",
    )
    writer_max_batch: int = setting(
        5000,
        _parse_int(1, 100_000),
        "Most events the writer commits in one transaction (group commit).",
    )
    writer_queue_limit: int = setting(
        50_000,
        _parse_int(1, 10_000_000),
        "Most events waiting for the writer in one worker; past it `POST /v1/events` answers 503 "
        "with `Retry-After: 1` instead of queueing without bound.",
    )
    writer_connections: int = setting(
        4,
        _parse_int(1, 8),
        "PostgreSQL only: how many group-commit transactions one worker keeps under way at once, "
        "each on its own connection; while one waits for its commit, the next group is written. "
        "Four kept the worker's event loop busiest in `bench/ingest.py` (docs/benchmarks.md); "
        "count them in PostgreSQL's `max_connections`: each worker holds this many, one or "
        "two for the projection and up to ten for queries and the site list (a pool of five that "
        "may overflow by five). The commits run on the worker's event loop (no thread). Its "
        "former name `CALLTRAIL_WRITER_THREADS` is still read when this one is not set. SQLite "
        "takes one writer at a time, so it always uses one.",
        former_env="CALLTRAIL_WRITER_THREADS",
    )
    projection_batch: int = setting(
        1000,
        _parse_int(1, 100_000),
        "Most stored events the projection (sessions, actions, rollups) handles in one "
        "transaction. Smaller batches make a request that arrives during one wait less; larger "
        "ones project a backlog faster.",
    )
    projection_share: float = setting(
        0.02,
        _parse_float(0.01, 1),
        "The projection runs whenever the writer has had no request to store for 50 ms, and under "
        "light load (under 250 to 500 requests a second, nothing waiting behind a commit) right "
        "after each commit, in batches of 50 events or as many as the commit stored. Under "
        "heavier load it still gets at least this share of the writer's time (0.01 to 1), so it "
        "never stops, and catches up at full speed once the load falls. A higher share keeps "
        "reports fresher during such a burst, at a cost to ingestion: 0.1 took about 14 % off "
        "`POST /v1/events` at saturation.",
    )
    read_wait_ms: int = setting(
        2000,
        _parse_int(0, 60_000),
        "How long a query waits for events already acknowledged to be projected "
        "(read-your-writes). Past it the query answers anyway with the header "
        "`CallTrail-Unprojected-Events: N`. `0`: never wait.",
    )
    sqlite_max_size_mb: int = setting(
        0,
        _parse_int(0, 10_000_000),
        "Largest the SQLite database may grow, in MiB (`PRAGMA max_page_count`); `0` means no "
        "limit but the disk's. When it (or the disk) is full, writes answer 503 with "
        "`Retry-After` and the log says so; what was stored stays intact.",
    )
    rate_limit_per_ip: str = setting(
        "100/second",
        _parse_rate_limit,
        "`POST /v1/events` requests allowed per client IP, in the `limits` syntax (`100/second`, "
        "`1000/minute;50/second`), or `off`. Past it: 429 with `Retry-After`. Counted per worker "
        "process, in fixed windows (a window opens at a client's first request; across two "
        "windows a client may briefly send up to twice the limit). Agents behind one NAT share an "
        "IP: size it for the whole center.",
    )
    rate_limit_per_site: str = setting(
        "2000/second",
        _parse_rate_limit,
        "`POST /v1/events` requests allowed per site key, same syntax, or `off`. Counted per worker process.",
    )
    ccc_push_rate: str = setting(
        "200/second",
        _parse_rate_limit,
        "CCC Data Push requests (`POST /v1/ccc/push`, and its app's token requests) allowed per CCC app "
        "(SdkAppId), same syntax, or "
        "`off`; counted once the request's credentials have named the app, so nobody else spends an "
        "app's budget. Past it: 429 with `Retry-After`, and CCC pushes again. Counted per worker process. "
        "A contact center pushes about two records per call, so the default is generous.",
    )
    public_url: str = setting(
        "",
        _parse_public_url,
        "The service's public base URL as CCC reaches it (`https://events.example.com`, a path prefix "
        "allowed; no query). `calltrail ccc add` prints the push address and token URL from it; unset, "
        "it prints only their paths. Nothing the service answers is built from it.",
    )
    forwarded_allow_ips: str = setting(
        "127.0.0.1",
        _parse_text,
        "Proxies whose `X-Forwarded-For` header is trusted for the client IP (comma-separated "
        "addresses, or `*`); passed to uvicorn.",
    )
    header_timeout_s: int = setting(
        10,
        _parse_int(1, 600),
        "Seconds a client has, from connecting (or from the first byte of a keep-alive "
        "connection's next request), to send the request line and headers; past it the connection "
        "is closed (slow-client attacks).",
    )
    body_timeout_s: int = setting(
        30,
        _parse_int(1, 3600),
        "Seconds a client has, after the headers, to send the whole body; past it the connection "
        "is closed. Responses are never timed.",
    )
    allowed_hosts: str = setting(
        "*",
        _parse_text,
        "Host names a request's `Host` header may name, comma-separated "
        "(`events.example.com,*.internal.example.com`; a port is ignored); any other host gets "
        "400 `invalid_host` before anything else runs. `*` admits any. Set it on every deployment "
        "reachable from a browser: it closes DNS-rebinding attacks on a service bound to a "
        "private address. Nothing CallTrail answers is built from the Host header (redirects are "
        "relative), so `*` is not an injection risk, only a wider door. List `127.0.0.1` as well "
        "where a local health check calls the service by address (docker-compose.yml's does).",
    )
    ringing_timeout_s: int = setting(
        600,
        _parse_int(10, 86400),
        "A ringing session (last status 100) that hears nothing for this long is over: the next "
        "event on its line closes it with `end_source = timeout`, and until then reads show it "
        "so. Sessions are derived with it, so a change applies to stored sessions after "
        "`calltrail rebuild`.",
    )
    connected_timeout_s: int = setting(
        14400,
        _parse_int(60, 7 * 86400),
        "The same for a connected session (last status 200). Four hours covers long calls and "
        "chats. Must not be shorter than the ringing timeout.",
    )
    call_join_tolerance_s: int = setting(
        60,
        _parse_int(1, 3600),
        "How far apart a CCC agent leg's ring time and a page session's offered time may be for the "
        'two to join (docs/call-records.md, "Join"); the nearest joins. Covers the workstation\'s '
        "delay and the two clocks' skew. Applies to joins made after the change; `calltrail "
        "rebuild` joins everything again.",
    )
    pii_mode: Literal["raw", "mask", "hmac"] = setting(
        "raw",
        _parse_choice("raw", "mask", "hmac"),
        "How customer numbers and ids (`mobile`, `userId` in the hash, `phoneNumber` of a "
        "callOut) are stored, in the raw events as much as in sessions: `raw`; `mask` "
        "(`188****8888`: first 3 and last 4 kept); `hmac` (`h:` and 24 hex digits of HMAC-SHA-256 "
        "with `CALLTRAIL_PII_KEY`: repeat callers stay groupable, the number is not kept). "
        "Applies to events received after the change.",
    )
    pii_key: str = setting(
        "",
        _parse_text,
        "The secret of `hmac` mode, at least 16 characters (required there). Keep it stable and "
        "secret: a new key gives every caller a new token.",
        secret=True,
    )
    ccc_secret_id: str = setting(
        "",
        _parse_secret,
        "SecretId of the Tencent Cloud API key (CAM) the pull from CCC's API signs with "
        "(`calltrail ccc sync`, the scheduled reconciliation; docs/ccc.md). Set it with "
        "`CALLTRAIL_CCC_SECRET_KEY`, or neither. Never logged, shown or stored in the database.",
        secret=True,
    )
    ccc_secret_key: str = setting(
        "",
        _parse_secret,
        "SecretKey of that API key. Never logged, shown or stored in the database; give the key's user "
        "read access to CCC and nothing else.",
        secret=True,
    )
    ccc_api_endpoint: str = setting(
        "ccc.tencentcloudapi.com",
        _parse_endpoint,
        "Host[:port] of CCC's API, without a scheme (the international site: "
        "`ccc.intl.tencentcloudapi.com`).",
    )
    ccc_api_protocol: Literal["https", "http"] = setting(
        "https",
        _parse_choice("https", "http"),
        "`https`, or `http` only for a test server on loopback; anything else is refused.",
    )
    ccc_sync_interval_s: int = setting(
        0,
        _parse_sync_interval,
        "Seconds between the service's scheduled reconciliations with CCC's API (each registered app's "
        "DescribeTelCdr and DescribeIMCdrs of the recent past into the raw log); `0`, the default, is off, "
        f"else at least {MIN_SYNC_INTERVAL_S}. Needs the API key. With several workers or hosts one of them "
        "pulls each window (a lease in the database).",
    )
    ccc_sync_lookback_s: int = setting(
        86400,
        _parse_int(60, MAX_SYNC_LOOKBACK_S),
        "How far before the end of the last completed scheduled window each scheduled run starts pulling "
        "again, in seconds (CCC's records can appear late; what is pulled twice is stored once). "
        "At most 179 days.",
    )
    seal_key: str = setting(
        "",
        _parse_text,
        "Secret that signs the seal of the raw logs (HMAC-SHA-256 of each seal and removal record), at "
        "least 16 characters; unset, seals are hashed and chained but not signed. Without a key, anyone "
        "who can write to the database can alter rows and recompute every hash; with it, also the key "
        "is needed. Keep it off the database host and stable: `calltrail verify` needs it "
        '(docs/security.md, "Verifying the log").',
    )
    seal_interval_s: int = setting(
        60,
        _parse_int(0, 86400),
        "How often (seconds) the server seals the rows committed since the last seal, in its idle time "
        "(as the projection), period by period while a backlog is left. `0`: the server does not seal; "
        "run `calltrail seal` (from cron, say) instead. Rows committed after the last seal are not yet "
        "protected (`calltrail verify` says how many).",
    )
    log_level: str = setting(
        "info",
        _parse_choice("debug", "info", "warning", "error"),
        "`debug`, `info`, `warning` or `error`.",
    )
    log_format: Literal["text", "json"] = setting(
        "text",
        _parse_choice("text", "json"),
        "`text` for people, `json` for one JSON object per line. Either way, control characters "
        "in logged values are escaped, so request data cannot forge a log line.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for spec in SETTINGS_SPEC:
            raw = env.get(spec.env)
            if not raw and spec.former_env:
                raw = env.get(spec.former_env)
            if raw is None or raw == "":
                continue
            try:
                values[spec.field] = spec.parse(raw)
            except ValueError as exc:
                problems.append(f"{spec.env}: {exc}")
        if values.get("connected_timeout_s", 14400) < values.get("ringing_timeout_s", 600):
            problems.append("CALLTRAIL_CONNECTED_TIMEOUT_S: must be at least CALLTRAIL_RINGING_TIMEOUT_S")
        if values.get("pii_mode") == "hmac" and len(values.get("pii_key", "")) < 16:
            problems.append("CALLTRAIL_PII_KEY: hmac mode needs a secret key of at least 16 characters")
        if bool(values.get("ccc_secret_id")) != bool(values.get("ccc_secret_key")):
            problems.append("CALLTRAIL_CCC_SECRET_ID and CALLTRAIL_CCC_SECRET_KEY: set both or neither")
        if values.get("seal_key") and len(values["seal_key"]) < 16:
            problems.append("CALLTRAIL_SEAL_KEY: must be at least 16 characters")
        if problems:
            raise ConfigError("invalid settings: " + "; ".join(problems))
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def has_ccc_api_key(self) -> bool:
        return bool(self.ccc_secret_id and self.ccc_secret_key)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@dataclass(frozen=True)
class SettingSpec:
    field: str
    env: str
    parse: Callable[[str], Any]
    doc: str
    default: Any
    former_env: str | None = None


SETTINGS_SPEC: tuple[SettingSpec, ...] = tuple(
    SettingSpec(
        f.name,
        "CALLTRAIL_" + f.name.upper(),
        f.metadata["parse"],
        f.metadata["doc"],
        f.default,
        f.metadata["former_env"],
    )
    for f in dataclasses.fields(Settings)
)


def _shown(default: Any) -> str:
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def configuration_table() -> str:
    """The settings table of docs/configuration.md, made from the declaration."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.env}` | `{_shown(s.default)}` | {s.doc} |" for s in SETTINGS_SPEC]
    return "\n".join(rows) + "\n"
