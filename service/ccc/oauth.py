"""The token request of the OAuth2 client-credentials grant (RFC 6749 §4.4), read without a web framework.

CCC's documents say only that the console takes a token URL, a ClientID and a ClientSecret; not how the
token is requested (the reference, §1.2). So this takes what RFC 6749 allows and what clients commonly send:
``grant_type=client_credentials`` form-encoded (the RFC's format) or as a JSON object, and the client
authenticated by ``client_secret_basic`` (``Authorization: Basic`` of the form-encoded id and secret,
§2.3.1) or ``client_secret_post`` (``client_id`` and ``client_secret`` in the body). ``scope`` is accepted
and ignored: a token grants pushing for its app, nothing else.

Problems are ``OAuthError``: the RFC's error code (§5.2), a description and the HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson

from service.ccc.push import BadCredential, BasicCredential, parse_authorization

GRANT_TYPE = "client_credentials"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
JSON_MEDIA_TYPE = "application/json"
# A token request has three or four parameters; the body limit bounds the rest, this the parser's work.
MAX_PARAMETERS = 20


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` (``invalid_request``, ``invalid_client``, ...), why, and the
    HTTP status (401 for ``invalid_client``, with a ``WWW-Authenticate`` challenge; 400 for the others)."""

    def __init__(
        self, error: str, description: str, status: int | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status if status is not None else (401 if error == "invalid_client" else 400)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class TokenRequest:
    client_id: str
    client_secret: str = field(repr=False)


def parse_token_request(authorization: str | None, content_type: str | None, body: bytes) -> TokenRequest:
    """The client's id and secret from a well-formed client-credentials token request."""
    parameters = _parameters(content_type, body)
    grant_type = parameters.get("grant_type")
    if grant_type is None:
        raise OAuthError("invalid_request", "grant_type is missing: send grant_type=client_credentials")
    if grant_type != GRANT_TYPE:
        raise OAuthError(
            "unsupported_grant_type", f"only grant_type=client_credentials is supported, not {grant_type!r}"
        )
    body_id, body_secret = parameters.get("client_id"), parameters.get("client_secret")
    if authorization is not None and authorization.strip():
        try:
            credential = parse_authorization(authorization, form_encoded=True)
        except BadCredential as exc:
            message = f"{exc}; authenticate with Basic client_id:client_secret"
            raise OAuthError("invalid_client", message) from None
        if not isinstance(credential, BasicCredential):
            raise OAuthError("invalid_client", "authenticate with Basic client_id:client_secret, not a token")
        if body_secret is not None or (body_id is not None and body_id != credential.username):
            # RFC 6749 §2.3: a client must not use more than one authentication method in a request.
            raise OAuthError("invalid_request", "the client authenticated both in the header and in the body")
        return TokenRequest(credential.username, credential.password)
    if body_id is None or body_secret is None:
        raise OAuthError(
            "invalid_client",
            "no client authentication: send Authorization: Basic client_id:client_secret, or client_id and "
            "client_secret in the body",
        )
    return TokenRequest(body_id, body_secret)


def _parameters(content_type: str | None, body: bytes) -> dict[str, str]:
    media_type = (content_type or FORM_MEDIA_TYPE).split(";", 1)[0].strip().lower()
    if media_type == FORM_MEDIA_TYPE:
        return _form_parameters(body)
    if media_type == JSON_MEDIA_TYPE:
        return _json_parameters(body)
    raise OAuthError("invalid_request", f"send the parameters as {FORM_MEDIA_TYPE} or {JSON_MEDIA_TYPE}")


def _form_parameters(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_PARAMETERS
        )
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a form of UTF-8 parameters") from None
    parameters: dict[str, str] = {}
    for name, value in pairs:
        if name in parameters:
            # RFC 6749 §3.2: parameters must not be included more than once.
            raise OAuthError("invalid_request", f"the parameter {name} is given more than once")
        parameters[name] = value
    return parameters


def _json_parameters(body: bytes) -> dict[str, str]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise OAuthError("invalid_request", "the body is not JSON") from None
    if not isinstance(document, dict) or len(document) > MAX_PARAMETERS:
        raise OAuthError("invalid_request", "the body must be a JSON object of a few string parameters")
    for name in ("grant_type", "client_id", "client_secret"):
        if name in document and not isinstance(document[name], str):
            raise OAuthError("invalid_request", f"{name} must be a string")
    return {name: value for name, value in document.items() if isinstance(value, str)}
