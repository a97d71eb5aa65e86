"""CCC's API through the official SDK: ``CccSdk``, a typed adapter over it, and the errors of an API call.

``CccSdk`` is a small typed adapter over the SDK's ``CccClient`` (the SDK has no type hints). It sends the
request with the SDK's ``call_json``, which signs it (TC3-HMAC-SHA256) and returns the answer's JSON as
CCC wrote it, so a record's fields reach the caller verbatim, including any the installed SDK's models do
not know yet. It also reads an ``Error`` the SDK let through (the SDK looks for one only when the
Content-Type is exactly ``application/json``). ``AuthFailure*`` becomes a ``CccAuthError``, with the API's
code and message and no secret. ``CccApi`` is what the pull needs of it (tests may give it a stand-in).

What it is built from (secret id and key, endpoint host[:port], protocol) comes from the caller; the settings
that will carry them are named in docs/call-records.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, Protocol

from tencentcloud.ccc.v20200210 import ccc_client
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

DEFAULT_ENDPOINT = "ccc.tencentcloudapi.com"
_ENDPOINT = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


# --- errors ---------------------------------------------------------------------------------------------


class CccError(Exception):
    """An API call that failed: the API's (or the SDK's) code and message, and the request's id."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" (RequestId {request_id})" if request_id else ""))
        self.code = code
        self.message = message
        self.request_id = request_id


class CccAuthError(CccError):
    """``AuthFailure*`` (wrong or unknown SecretId, bad signature, expired token, no permission) or
    credentials the SDK refuses outright. Retrying does not help; the message never holds the secret."""


class CccThrottledError(CccError):
    """``RequestLimitExceeded*`` still answered after every backoff."""


class CccNetworkError(CccError):
    """No usable answer (connection failed, or an HTTP status other than 200) after every retry."""


# --- the SDK adapter ------------------------------------------------------------------------------------


class CccApi(Protocol):
    """One API call: the action's parameters in, the answer's ``Response`` object out, or a ``CccError``."""

    def call(self, action: str, params: Mapping[str, object]) -> dict[str, object]: ...


class CccSdk:
    """The SDK's ``CccClient`` behind a typed ``call``. ``endpoint`` is host[:port] only (no scheme: the SDK
    also sends and signs it as the Host header); ``protocol`` is ``https``, or ``http`` for a loopback test
    server. The secret key stays inside the SDK's credential object; this class never logs or shows it.

    The SDK's HTTP session follows HTTP(S)_PROXY from the environment unless the literal ``host:port``
    appears in NO_PROXY (reference §3.7)."""

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        protocol: Literal["https", "http"] = "https",
        timeout_s: int = 60,
    ) -> None:
        if protocol not in ("https", "http"):
            raise ValueError(f"protocol must be https or http, not {protocol!r:.20}")
        if not _ENDPOINT.fullmatch(endpoint):
            raise ValueError(f"endpoint must be host[:port], without a scheme or path: {endpoint!r:.80}")
        self.endpoint = endpoint
        self.protocol = protocol
        try:
            cred = credential.Credential(secret_id, secret_key)
        except TencentCloudSDKException as error:  # empty, or with spaces around it; the message says which
            raise CccAuthError(str(error.get_code()), str(error.get_message())) from None
        profile = ClientProfile(
            httpProfile=HttpProfile(endpoint=endpoint, protocol=protocol, reqTimeout=timeout_s),
        )
        # No retryer (the SDK's default NoopRetryer): the pull retries itself. Region "" (CCC needs none).
        self._client = ccc_client.CccClient(cred, "", profile)

    def __repr__(self) -> str:
        return f"CccSdk(endpoint={self.endpoint!r}, protocol={self.protocol!r})"

    def call(self, action: str, params: Mapping[str, object]) -> dict[str, object]:
        try:
            answer = self._client.call_json(action, dict(params))
        except TencentCloudSDKException as error:
            raise _error(error.get_code(), error.get_message(), error.get_request_id()) from None
        except ValueError as error:  # an HTTP 200 whose body is not JSON (a proxy's page, say)
            raise CccError("InvalidResponse", f"the answer is not JSON: {error}") from None
        response = answer.get("Response") if isinstance(answer, dict) else None
        if not isinstance(response, dict):
            raise CccError("InvalidResponse", "the answer has no Response object")
        problem = response.get("Error")
        if problem is not None:  # an error the SDK did not raise (its Content-Type check is exact)
            details = problem if isinstance(problem, dict) else {}
            request_id = response.get("RequestId")
            raise _error(details.get("Code"), details.get("Message"), request_id)
        return response


def _error(code: object, message: object, request_id: object) -> CccError:
    code_text = str(code or "UnknownError")
    if isinstance(message, bytes):  # ServerNetworkError carries the raw body of a non-200 answer
        message = message.decode("utf-8", "replace")
    message_text = str(message or "")[:500]
    request_text = str(request_id) if request_id else None
    if code_text.startswith("AuthFailure") or code_text == "InvalidCredential":
        return CccAuthError(code_text, message_text, request_text)
    return CccError(code_text, message_text, request_text)
