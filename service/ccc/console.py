"""What an operator types into the CCC console's Data Push settings for an app (docs/ccc.md): the push
address, and the credential of its authentication mode. Built once, when the secret is made or rotated,
since the secret is shown only then."""

from __future__ import annotations

from typing import Any

from service.ccc.apps import Credentials

PUSH_PATH = "/v1/ccc/push"
TOKEN_PATH = "/v1/ccc/oauth/token"  # noqa: S105 - a path, not a secret

# The console's names for the modes (intl console; the CN one says 账号密码 and OAuth2.0).
CONSOLE_MODES = {"basic": "account/password (basicAuth)", "oauth2": "OAuth2.0", "none": "no authentication"}


def console_settings(credentials: Credentials, public_url: str) -> dict[str, Any]:
    """``sdk_app_id``, ``push_path``, ``push_url``, ``auth``, then ``username`` and ``password`` (basic) or
    ``client_id``, ``client_secret``, ``token_path`` and ``token_url`` (oauth2). Keys that do not apply are
    absent; the URLs only when the public URL is known (``CALLTRAIL_PUBLIC_URL``)."""
    app = credentials.app
    found: dict[str, Any] = {"sdk_app_id": app.sdk_app_id, "push_path": PUSH_PATH}
    if public_url:
        found["push_url"] = public_url + PUSH_PATH
    found["auth"] = app.auth
    if app.auth == "basic":
        found["username"] = app.client_id
        found["password"] = credentials.secret
    elif app.auth == "oauth2":
        found["client_id"] = app.client_id
        found["client_secret"] = credentials.secret
        found["token_path"] = TOKEN_PATH
        if public_url:
            found["token_url"] = public_url + TOKEN_PATH
    return found


def console_lines(settings: dict[str, Any]) -> list[str]:
    """The same, for people: one ``label: value`` line per field of the console."""

    def url(full: str | None, path: str) -> str:
        return full or f"https://<this service's public host>{path}  (CALLTRAIL_PUBLIC_URL would fill it in)"

    lines = [
        f"push address:   {url(settings.get('push_url'), PUSH_PATH)}",
        f"authentication: {CONSOLE_MODES[settings['auth']]}",
    ]
    if settings["auth"] == "basic":
        lines += [f"username:       {settings['username']}", f"password:       {settings['password']}"]
    elif settings["auth"] == "oauth2":
        lines += [
            f"token URL:      {url(settings.get('token_url'), TOKEN_PATH)}",
            f"ClientID:       {settings['client_id']}",
            f"ClientSecret:   {settings['client_secret']}",
        ]
    lines.append("data types:     CDR, recording, voicemail (whichever you want stored)")
    return lines
