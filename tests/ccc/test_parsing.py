"""What a push and a token request say, read without a server: credentials, bodies, parameters."""

from __future__ import annotations

import base64

import pytest

from service.ccc.oauth import OAuthError, parse_token_request
from service.ccc.push import (
    BadCredential,
    BasicCredential,
    BearerCredential,
    PushRefused,
    parse_authorization,
    parse_body,
    push_meta,
)

FORM = "application/x-www-form-urlencoded"


def basic_header(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_credentials_split_at_the_first_colon_and_decode_only_when_form_encoded() -> None:
    assert parse_authorization(basic_header("ann:pa:ss")) == BasicCredential("ann", "pa:ss")
    assert parse_authorization(basic_header("a%3Ab:c+d")) == BasicCredential("a%3Ab", "c+d")
    # RFC 6749 §2.3.1: an OAuth2 client form-encodes id and secret before Basic.
    assert parse_authorization(basic_header("a%3Ab:c+d"), form_encoded=True) == BasicCredential("a:b", "c d")
    assert parse_authorization("bearer  tok ") == BearerCredential("tok")
    assert "secret" not in repr(parse_authorization(basic_header("ann:secret")))
    for bad in ("Basic", "Basic ***", basic_header("no-colon"), "Bearer", "Negotiate abc", ""):
        with pytest.raises(BadCredential):
            parse_authorization(bad)


def test_a_body_is_a_json_object_with_a_positive_integer_sdk_app_id() -> None:
    parsed = parse_body(b'{ "SdkAppId" : 1400000001 ,"x":[1]}')
    assert parsed.sdk_app_id == 1400000001
    assert parsed.text == '{ "SdkAppId" : 1400000001 ,"x":[1]}'
    # Read as the call records read it (domain/raw_fields.py), so the log keeps only what they can name.
    for same in (
        b'{"SdkAppId": "1400000001"}',
        b'{"SdkAppId": 1400000001.0}',
        b'{"SdkAppId": " 1400000001"}',
    ):
        assert parse_body(same).sdk_app_id == 1400000001
    bad_bodies = [
        b"", b"  ", b"null", b"1", b"true", b'"x"', b"[]", b"{}", b'{"SdkAppId": 1.5}', b'{"SdkAppId": 0}',
        b'{"SdkAppId": null}', b'{"SdkAppId": ""}', b'{"SdkAppId": [1]}',
        b'{"SdkAppId": 9223372036854775808}', b'{"SdkAppId": "\\u0661"}',
        b'{"SdkAppId": 1, "x": ' + b"[" * 40 + b"]" * 40 + b"}",
    ]  # fmt: skip
    for bad in bad_bodies:
        with pytest.raises(PushRefused) as refused:
            parse_body(bad)
        assert refused.value.status == 400


def test_push_parameters_are_kept_as_given_within_bounds() -> None:
    assert push_meta(["videoCdr"], [], ["u-1"]).action == "videoCdr"
    assert push_meta([], [], []).push_uuid is None
    assert push_meta(["new"], ["2"], [""]).push_uuid is None
    for actions, uuids in ((["a", "b"], []), (["x" * 65], []), ([], ["u\n"]), ([], ["a", "b"])):
        with pytest.raises(PushRefused):
            push_meta(actions, [], uuids)


def test_token_requests_take_one_client_authentication() -> None:
    header = basic_header("cid:sec")
    assert parse_token_request(header, FORM, b"grant_type=client_credentials").client_id == "cid"
    posted = parse_token_request(None, None, b"grant_type=client_credentials&client_id=c&client_secret=s")
    assert (posted.client_id, posted.client_secret) == ("c", "s")
    as_json = b'{"grant_type": "client_credentials", "client_id": "c", "client_secret": "s", "n": 1}'
    assert parse_token_request(None, "application/json; charset=utf-8", as_json).client_secret == "s"
    cases = [
        (header, FORM, b"", "invalid_request"),
        (header, FORM, b"grant_type=authorization_code", "unsupported_grant_type"),
        (header, FORM, b"grant_type=client_credentials&client_secret=s", "invalid_request"),
        (header, FORM, b"grant_type=client_credentials&client_id=other", "invalid_request"),
        (header, FORM, b"\xff", "invalid_request"),
        (header, FORM, b"&".join([b"a=1"] * 21), "invalid_request"),
        (None, FORM, b"grant_type=client_credentials&client_id=c", "invalid_client"),
        ("Bearer x", FORM, b"grant_type=client_credentials", "invalid_client"),
        (header, "multipart/form-data", b"", "invalid_request"),
    ]
    for authorization, content_type, body, error in cases:
        with pytest.raises(OAuthError) as failed:
            parse_token_request(authorization, content_type, body)
        assert failed.value.error == error, body
        assert failed.value.status == (401 if error == "invalid_client" else 400)
