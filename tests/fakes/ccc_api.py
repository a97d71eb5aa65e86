"""A fake of CCC's API 3.0 endpoint for DescribeTelCdr and DescribeIMCdrs: a real HTTP server on 127.0.0.1.

It behaves as the reference (§3.7, checked against the SDK) says the real one does, so the official SDK
can talk to it unchanged (``HttpProfile(endpoint="127.0.0.1:PORT", protocol="http")``):

- it checks the TC3-HMAC-SHA256 signature: canonical request, string to sign, the HMAC chain from
  ``"TC3" + SecretKey`` through the date, the service and ``tc3_request``; an unknown SecretId is
  ``AuthFailure.SecretIdNotFound``, a wrong signature ``AuthFailure.SignatureFailure``, a timestamp more than
  5 minutes off ``AuthFailure.SignatureExpire``;
- ``X-TC-Action`` and ``X-TC-Version`` (``2020-02-10``) must name what it implements;
- it answers HTTP 200 with ``Content-Type: application/json`` exactly, ``{"Response": {..., "RequestId"}}``,
  and errors as ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``, also with HTTP 200;
- DescribeTelCdr: StartTimeStamp/EndTimeStamp in Unix seconds, a range of 90 days or more, a start older
  than 180 days, a PageSize over 100 or a negative PageNumber are ``InvalidParameterValue``; pages from 0;
  a record is in the range when its StartTimestamp is in [start, end);
- DescribeIMCdrs: StartTimestamp/EndTimestamp, Limit (at most 100, default 20), Offset, Type (the record's
  ``Type``; none for all); a record is in the range when its Timestamp is;
- a rate limit to set: more than ``rate_limit`` requests within ``rate_period_s`` is ``RequestLimitExceeded``;
- failures to inject: the next K requests answer a given error code, or a given HTTP status;
- a log of every request, for tests to assert on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION = "2020-02-10"
SERVICE = "ccc"
DAY_S = 86_400
_AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)/tc3_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;\-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class FakeRequest:
    """A request as the fake saw it: when it arrived (``time.monotonic``), what it asked, how it answered."""

    at: float
    action: str
    params: dict[str, Any]
    headers: dict[str, str]
    error: str | None  # the error code answered, or None
    status: int = 200


class ApiFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class _Injected:
    code: str | None = None
    message: str = ""
    status: int = 200


@dataclass
class FakeCccApi:
    """Start with ``with FakeCccApi(...) as fake:``; ``fake.endpoint`` is ``127.0.0.1:PORT``."""

    secrets: dict[str, str] = field(default_factory=dict)
    rate_limit: int | None = None
    rate_period_s: float = 1.0
    content_type: str = "application/json"  # the SDK reads errors only from exactly this
    tel_cdrs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    im_cdrs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    log: list[FakeRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._arrivals: list[float] = []
        self._injected: list[_Injected] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control from tests ---

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "the fake is not running"
        return f"127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, count: int, code: str, message: str = "injected failure") -> None:
        """The next ``count`` requests answer this error code (HTTP 200, as the real API does)."""
        with self._lock:
            self._injected += [_Injected(code, message) for _ in range(count)]

    def fail_next_http(self, count: int, status: int = 500) -> None:
        """The next ``count`` requests answer this HTTP status with a plain-text body."""
        with self._lock:
            self._injected += [_Injected(status=status) for _ in range(count)]

    def requests(self, action: str | None = None) -> list[FakeRequest]:
        with self._lock:
            return [r for r in self.log if action is None or r.action == action]

    def most_in_any_window(self, period_s: float) -> int:
        """The largest number of requests that arrived within any span of ``period_s`` (half-open)."""
        times = sorted(r.at for r in self.requests())
        best = start = 0
        for end, at in enumerate(times):
            while at - times[start] >= period_s:
                start += 1
            best = max(best, end - start + 1)
        return best

    # --- the server ---

    def __enter__(self) -> FakeCccApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-ccc-api", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        headers = {name.lower(): value for name, value in request.headers.items()}
        action = headers.get("x-tc-action", "")
        params: dict[str, Any] = {}
        request_id = str(uuid.uuid4())
        with self._lock:
            self._arrivals = [t for t in self._arrivals if arrived - t < self.rate_period_s] + [arrived]
            over_rate = self.rate_limit is not None and len(self._arrivals) > self.rate_limit
            injected = self._injected.pop(0) if self._injected else None
        try:
            try:
                params = json.loads(body) if body else {}
            except ValueError:
                params = {}
            if injected is not None and injected.status != 200:
                self._log(arrived, action, params, headers, None, injected.status)
                self._send(request, injected.status, b"upstream trouble", "text/plain")
                return
            if injected is not None and injected.code is not None:
                raise ApiFailure(injected.code, injected.message)
            if over_rate:
                raise ApiFailure("RequestLimitExceeded", "请求的次数超过了频率限制 (fake)")
            self._check_signature(request.command, request.path, headers, body)
            if headers.get("x-tc-version") != VERSION:
                raise ApiFailure("NoSuchVersion", f"version {headers.get('x-tc-version')!r} does not exist")
            if not isinstance(params, dict):
                raise ApiFailure("InvalidParameter", "the body is not a JSON object")
            if action == "DescribeTelCdr":
                answer = self._describe_tel_cdr(params)
            elif action == "DescribeIMCdrs":
                answer = self._describe_im_cdrs(params)
            else:
                raise ApiFailure("InvalidAction", f"action {action!r} does not exist")
        except ApiFailure as failure:
            self._log(arrived, action, params, headers, failure.code)
            error = {"Error": {"Code": failure.code, "Message": failure.message}, "RequestId": request_id}
            self._send(request, 200, json.dumps({"Response": error}).encode(), self.content_type)
            return
        self._log(arrived, action, params, headers, None)
        payload = {"Response": {**answer, "RequestId": request_id}}
        self._send(request, 200, json.dumps(payload, ensure_ascii=False).encode(), self.content_type)

    def _log(
        self,
        at: float,
        action: str,
        params: Any,
        headers: dict[str, str],
        error: str | None,
        status: int = 200,
    ) -> None:
        with self._lock:
            self.log.append(
                FakeRequest(at, action, params if isinstance(params, dict) else {}, headers, error, status)
            )

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    # --- TC3-HMAC-SHA256 ---

    def _check_signature(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        if match is None:
            raise ApiFailure(
                "AuthFailure.SignatureFailure", "the Authorization header is missing or malformed"
            )
        secret_key = self.secrets.get(match["id"])
        if secret_key is None:
            raise ApiFailure("AuthFailure.SecretIdNotFound", "the SecretId does not exist")
        try:
            timestamp = int(headers.get("x-tc-timestamp", ""))
        except ValueError:
            raise ApiFailure("AuthFailure.SignatureFailure", "X-TC-Timestamp is not a number") from None
        if abs(time.time() - timestamp) > 300:
            raise ApiFailure("AuthFailure.SignatureExpire", "the signature has expired")
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if match["date"] != date or match["service"] != SERVICE:
            raise ApiFailure("AuthFailure.SignatureFailure", "the credential scope does not match")
        signed = match["headers"].split(";")
        if "content-type" not in signed or "host" not in signed:
            raise ApiFailure("AuthFailure.SignatureFailure", "content-type and host must be signed")
        expected = signature(
            secret_key,
            method=method,
            path=path.partition("?")[0],
            query=path.partition("?")[2],
            headers={name: headers.get(name, "") for name in signed},
            body=body,
            timestamp=timestamp,
            service=match["service"],
        )
        if not hmac.compare_digest(expected, match["signature"]):
            raise ApiFailure("AuthFailure.SignatureFailure", "the signature does not match")

    # --- the actions ---

    def _describe_tel_cdr(self, params: dict[str, Any]) -> dict[str, Any]:
        app = _required_int(params, "SdkAppId")
        start, end = _range(params, "StartTimeStamp", "EndTimeStamp")
        size = _required_int(params, "PageSize")
        number = _required_int(params, "PageNumber")
        if not 1 <= size <= 100:
            raise ApiFailure("InvalidParameterValue", "PageSize must be from 1 to 100")
        if number < 0:
            raise ApiFailure("InvalidParameterValue", "PageNumber starts at 0")
        with self._lock:
            records = [r for r in self.tel_cdrs.get(app, []) if start <= r.get("StartTimestamp", 0) < end]
        return {"TotalCount": len(records), "TelCdrList": records[number * size : (number + 1) * size]}

    def _describe_im_cdrs(self, params: dict[str, Any]) -> dict[str, Any]:
        app = _required_int(params, "SdkAppId")
        start, end = _range(params, "StartTimestamp", "EndTimestamp")
        limit = _optional_int(params, "Limit", 20)
        offset = _optional_int(params, "Offset", 0)
        media = params.get("Type")
        if not 1 <= limit <= 100:
            raise ApiFailure("InvalidParameterValue", "Limit must be from 1 to 100")
        if offset < 0:
            raise ApiFailure("InvalidParameterValue", "Offset must not be negative")
        with self._lock:
            records = [
                r
                for r in self.im_cdrs.get(app, [])
                if start <= r.get("Timestamp", 0) < end and (media is None or r.get("Type") == media)
            ]
        return {"TotalCount": len(records), "IMCdrList": records[offset : offset + limit]}


def _required_int(params: dict[str, Any], name: str) -> int:
    value = params.get(name)
    if value is None:
        raise ApiFailure("MissingParameter", f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiFailure("InvalidParameter", f"{name} must be an integer")
    return value


def _optional_int(params: dict[str, Any], name: str, default: int) -> int:
    return default if params.get(name) is None else _required_int(params, name)


def _range(params: dict[str, Any], start_name: str, end_name: str) -> tuple[int, int]:
    start, end = _required_int(params, start_name), _required_int(params, end_name)
    if end < start:
        raise ApiFailure("InvalidParameterValue", f"{end_name} is before {start_name}")
    if end - start >= 90 * DAY_S:
        raise ApiFailure("InvalidParameterValue", "the time range must be less than 90 days")
    if start < time.time() - 180 * DAY_S:
        raise ApiFailure("InvalidParameterValue", "only the last 180 days can be queried")
    return start, end


def signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    timestamp: int,
    service: str = SERVICE,
) -> str:
    """TC3-HMAC-SHA256 (reference §3.7): the hex HMAC-SHA256 of the string to sign under the derived key."""
    names = sorted(headers)  # lower-case names; values lower-cased and trimmed, as the signing rules say
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in names)
    canonical_request = "\n".join(
        [method, path, query, canonical_headers, ";".join(names), hashlib.sha256(body).hexdigest()]
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
