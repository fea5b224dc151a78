"""Unit tests for the payload format 2.0 helpers in idsentry.http."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from idsentry.http import (
    HttpRequest,
    RequestBodyError,
    accept_language,
    json_response,
    parse_http_event,
)

pytestmark = pytest.mark.unit

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events" / "http"

SIGNUP_BODY = {
    "name": "张三",
    "id_number": "11010519491231002X",
    "mobile": "+8613800138000",
    "email": "zhangsan@example.com",
}


def load_event(name: str) -> dict[str, Any]:
    with (EVENTS_DIR / f"{name}.json").open(encoding="utf-8") as file:
        event: dict[str, Any] = json.load(file)
    return event


@pytest.fixture
def default_event() -> dict[str, Any]:
    return load_event("signup_default_stage")


@pytest.fixture
def named_event() -> dict[str, Any]:
    return load_event("signup_named_stage")


def with_body(event: dict[str, Any], body: str, *, base64_encoded: bool) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["body"] = body
    changed["isBase64Encoded"] = base64_encoded
    return changed


def test_parse_default_stage(default_event: dict[str, Any]) -> None:
    request = parse_http_event(default_event)

    assert request.method == "POST"
    assert request.route_key == "POST /v1/signups"
    assert request.path == "/v1/signups"
    assert request.stage == "$default"
    assert request.source_ip == "203.0.113.10"
    assert request.request_id == "JKJaXmPLvHcESHA="
    assert dict(request.path_parameters) == {}
    assert dict(request.query) == {}
    assert request.cookies == ()
    assert dict(request.authorizer) == {}
    assert request.json() == SIGNUP_BODY


def test_parse_named_stage(named_event: dict[str, Any]) -> None:
    request = parse_http_event(named_event)

    assert named_event["rawPath"] == "/prod/v1/signups"
    assert request.path == "/v1/signups"
    assert request.stage == "prod"
    assert request.route_key == "POST /v1/signups"
    assert request.json() == SIGNUP_BODY


def test_parse_named_stage_without_prefix(named_event: dict[str, Any]) -> None:
    # Requests through a custom domain mapping carry no stage prefix in rawPath.
    event = copy.deepcopy(named_event)
    event["rawPath"] = "/v1/signups"

    assert parse_http_event(event).path == "/v1/signups"


def test_parse_stage_root_path(named_event: dict[str, Any]) -> None:
    event = copy.deepcopy(named_event)
    event["rawPath"] = "/prod"

    assert parse_http_event(event).path == "/"


def test_parse_stage_name_is_not_prefix(named_event: dict[str, Any]) -> None:
    event = copy.deepcopy(named_event)
    event["rawPath"] = "/production/v1/signups"

    assert parse_http_event(event).path == "/production/v1/signups"


def test_parse_optional_fields(default_event: dict[str, Any]) -> None:
    event = copy.deepcopy(default_event)
    event["routeKey"] = "GET /v1/signups/{signup_id}"
    event["pathParameters"] = {"signup_id": "sg_01"}
    event["queryStringParameters"] = {"lang": "en,zh-CN"}
    event["cookies"] = ["session=abc", "theme=dark"]
    event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": "sub_1"}, "scopes": None}}

    request = parse_http_event(event)

    assert dict(request.path_parameters) == {"signup_id": "sg_01"}
    assert dict(request.query) == {"lang": "en,zh-CN"}
    assert request.cookies == ("session=abc", "theme=dark")
    assert request.authorizer["jwt"]["claims"] == {"sub": "sub_1"}


def test_request_is_immutable(default_event: dict[str, Any]) -> None:
    request = parse_http_event(default_event)

    with pytest.raises(AttributeError):
        request.path = "/other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        request.headers["host"] = "example.com"  # type: ignore[index]


def test_header_lookup(default_event: dict[str, Any]) -> None:
    event = copy.deepcopy(default_event)
    event["headers"]["X-Request-Source"] = "app"

    request = parse_http_event(event)

    assert request.header("Content-Type") == "application/json; charset=utf-8"
    assert request.header("x-request-source") == "app"
    assert request.header("X-REQUEST-SOURCE") == "app"
    assert request.header("x-missing") is None


def test_body_base64(default_event: dict[str, Any]) -> None:
    raw = bytes(range(256))
    event = with_body(default_event, base64.b64encode(raw).decode(), base64_encoded=True)

    assert parse_http_event(event).body == raw


def test_body_base64_json(default_event: dict[str, Any]) -> None:
    encoded = base64.b64encode(json.dumps(SIGNUP_BODY).encode()).decode()
    event = with_body(default_event, encoded, base64_encoded=True)

    assert parse_http_event(event).json() == SIGNUP_BODY


def test_body_text_is_utf8(default_event: dict[str, Any]) -> None:
    event = with_body(default_event, "张三", base64_encoded=False)

    assert parse_http_event(event).body == "张三".encode()


def test_body_absent(default_event: dict[str, Any]) -> None:
    event = copy.deepcopy(default_event)
    del event["body"]

    assert parse_http_event(event).body == b""


def test_body_invalid_base64(default_event: dict[str, Any]) -> None:
    event = with_body(default_event, "not base64!", base64_encoded=True)

    with pytest.raises(ValueError, match="isBase64Encoded"):
        parse_http_event(event)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", "missing"),
        ("{not json", "invalid_json"),
        ('{"a": NaN}', "invalid_json"),
        ("[1, 2]", "not_an_object"),
        ('"text"', "not_an_object"),
        ("null", "not_an_object"),
    ],
)
def test_json_rejects_body(default_event: dict[str, Any], body: str, code: str) -> None:
    request = parse_http_event(with_body(default_event, body, base64_encoded=False))

    with pytest.raises(RequestBodyError) as caught:
        request.json()

    assert caught.value.field == "body"
    assert caught.value.code == code
    assert isinstance(caught.value, ValueError)


def test_json_rejects_invalid_utf8(default_event: dict[str, Any]) -> None:
    encoded = base64.b64encode(b"\xff\xfe{}").decode()
    request = parse_http_event(with_body(default_event, encoded, base64_encoded=True))

    with pytest.raises(RequestBodyError) as caught:
        request.json()

    assert caught.value.code == "invalid_encoding"


def test_json_error_hides_body(default_event: dict[str, Any]) -> None:
    body = '{"id_number": "11010519491231002X",'
    request = parse_http_event(with_body(default_event, body, base64_encoded=False))

    with pytest.raises(RequestBodyError) as caught:
        request.json()

    assert "11010519491231002X" not in str(caught.value)


@pytest.mark.parametrize("version", ["1.0", None, 2.0])
def test_parse_rejects_other_versions(default_event: dict[str, Any], version: Any) -> None:
    event = copy.deepcopy(default_event)
    if version is None:
        del event["version"]
    else:
        event["version"] = version

    with pytest.raises(ValueError, match=r"payload format 2\.0"):
        parse_http_event(event)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("requestContext",), "requestContext"),
        (("requestContext", "http"), "requestContext.http"),
        (("requestContext", "http", "method"), "requestContext.http.method"),
        (("requestContext", "stage"), "requestContext.stage"),
        (("rawPath",), "rawPath"),
        (("routeKey",), "routeKey"),
    ],
)
def test_parse_names_missing_field(
    default_event: dict[str, Any], path: tuple[str, ...], field: str
) -> None:
    event = copy.deepcopy(default_event)
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]

    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        parse_http_event(event)


def test_parse_rejects_v1_event() -> None:
    event = {
        "resource": "/v1/signups",
        "path": "/v1/signups",
        "httpMethod": "POST",
        "requestContext": {"stage": "prod"},
    }

    with pytest.raises(ValueError, match="version"):
        parse_http_event(event)


def test_accept_language_orders_by_quality() -> None:
    headers = {"Accept-Language": "en;q=0.5, zh-CN, zh;q=0.9, fr;q=0.7"}

    assert accept_language(headers) == ["zh-CN", "zh", "fr", "en"]


def test_accept_language_keeps_tie_order() -> None:
    headers = {"accept-language": "en-US;q=0.8,zh-Hans-CN;q=0.8,en"}

    assert accept_language(headers) == ["en", "en-US", "zh-Hans-CN"]


def test_accept_language_skips_malformed() -> None:
    header = "zh-CN;q=abc, ;q=0.3, en;q=2, de;q=0.50, x_y, fr;v=1, ja;q=0, *;q=0.1, ko"
    headers = {"accept-language": header}

    assert accept_language(headers) == ["ko", "de", "*"]


def test_accept_language_missing() -> None:
    assert accept_language({}) == []
    assert accept_language({"accept-language": ""}) == []


def test_accept_language_from_event(named_event: dict[str, Any]) -> None:
    request = parse_http_event(named_event)

    assert accept_language(request.headers) == ["zh-CN", "zh", "en"]


def test_json_response_shape() -> None:
    response = json_response(201, {"signup_id": "sg_01", "message": "验证码已发送"})

    assert response["statusCode"] == 201
    assert response["isBase64Encoded"] is False
    assert response["headers"]["content-type"] == "application/json; charset=utf-8"
    assert response["headers"]["cache-control"] == "no-store"
    assert "验证码已发送" in response["body"]
    assert json.loads(response["body"]) == {"signup_id": "sg_01", "message": "验证码已发送"}


def test_json_response_header_override() -> None:
    response = json_response(200, [], headers={"Cache-Control": "max-age=60", "X-Trace": "t1"})

    assert response["headers"]["cache-control"] == "max-age=60"
    assert response["headers"]["x-trace"] == "t1"
    assert "Cache-Control" not in response["headers"]
    assert response["body"] == "[]"


@pytest.mark.parametrize("status", [99, 600, True, "200"])
def test_json_response_rejects_status(status: Any) -> None:
    with pytest.raises(ValueError, match="invalid status"):
        json_response(status, {})


def test_json_response_round_trip(default_event: dict[str, Any]) -> None:
    response = json_response(200, SIGNUP_BODY)
    event = with_body(default_event, response["body"], base64_encoded=False)

    request: HttpRequest = parse_http_event(event)

    assert request.json() == SIGNUP_BODY
