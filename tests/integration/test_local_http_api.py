"""Integration tests for the local HTTP API server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from idsentry.http import json_response, parse_http_event
from infra.local.http_api import (
    MAX_BODY_BYTES,
    LocalHttpApi,
    Route,
    RouteConfigError,
    extract_routes,
    local_api_id,
)

pytestmark = pytest.mark.integration

ID_NUMBER = "11010519491231002X"
MOBILE = "+8613800138000"
EMAIL = "zhangsan@example.com"

TEMPLATE: dict[str, Any] = {
    "Transform": "AWS::Serverless-2016-10-31",
    "Resources": {
        "HttpApi": {"Type": "AWS::Serverless::HttpApi", "Properties": {"StageName": "prod"}},
        "SignupFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Handler": "app.handler",
                "Events": {
                    "Create": {
                        "Type": "HttpApi",
                        "Properties": {
                            "ApiId": {"Ref": "HttpApi"},
                            "Path": "/v1/signups",
                            "Method": "post",
                        },
                    },
                    "Verify": {
                        "Type": "HttpApi",
                        "Properties": {
                            "ApiId": {"Ref": "HttpApi"},
                            "Path": "/v1/signups/{signup_id}/verify",
                            "Method": "POST",
                            "PayloadFormatVersion": "2.0",
                        },
                    },
                    "Queue": {"Type": "SQS", "Properties": {"Queue": {"Ref": "SomeQueue"}}},
                },
            },
        },
        "FilesFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Events": {
                    "Everything": {
                        "Type": "HttpApi",
                        "Properties": {
                            "ApiId": {"Ref": "HttpApi"},
                            "Path": "/v1/files/{proxy+}",
                            "Method": "ANY",
                        },
                    },
                    "Item": {
                        "Type": "HttpApi",
                        "Properties": {
                            "ApiId": {"Ref": "HttpApi"},
                            "Path": "/v1/files/{file_id}",
                            "Method": "GET",
                        },
                    },
                    "Latest": {
                        "Type": "HttpApi",
                        "Properties": {
                            "ApiId": {"Ref": "HttpApi"},
                            "Path": "/v1/files/latest",
                            "Method": "get",
                        },
                    },
                },
            },
        },
        "EchoFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Events": {
                    "Echo": {
                        "Type": "HttpApi",
                        "Properties": {
                            "ApiId": {"Ref": "HttpApi"},
                            "Path": "/v1/echo/{mode}",
                            "Method": "ANY",
                        },
                    },
                },
            },
        },
        "AdminFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Events": {
                    "Reviews": {
                        "Type": "HttpApi",
                        "Properties": {
                            "ApiId": {"Ref": "HttpApi"},
                            "Path": "/v1/admin/reviews",
                            "Method": "GET",
                            "Auth": {"Authorizer": "AWS_IAM"},
                        },
                    },
                },
            },
        },
    },
}


class Recorder:
    """Invoke function that records each event and responds according to the function and path."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, function_id: str, event: dict[str, Any]) -> Any:
        with self._lock:
            self.calls.append((function_id, event))
        if function_id == "EchoFunction":
            return self._echo(event)
        return json_response(200, {"function": function_id})

    @property
    def last_event(self) -> dict[str, Any]:
        assert self.calls, "the function was never invoked"
        return self.calls[-1][1]

    def _echo(self, event: dict[str, Any]) -> Any:
        mode = event["pathParameters"]["mode"]
        if mode == "dict":
            return {"signup_id": "sg_01", "message": "你好"}
        if mode == "text":
            return "plain"
        if mode == "list":
            return [1, 2]
        if mode == "raise":
            raise RuntimeError(f"failed for {ID_NUMBER}")
        if mode == "bad-status":
            return {"statusCode": "two hundred", "body": "x"}
        if mode == "full":
            return {
                "statusCode": 202,
                "headers": {"x-custom": "yes", "content-type": "text/plain; charset=utf-8"},
                "cookies": ["session=abc; HttpOnly", "theme=dark"],
                "body": "accepted",
            }
        if mode == "binary":
            return {
                "statusCode": 200,
                "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(b"\x00\x01\xfe\xff").decode(),
                "isBase64Encoded": True,
            }
        return json_response(404, {"mode": mode})


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    return extract_routes(TEMPLATE)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def api(routes: list[Route], recorder: Recorder) -> Iterator[LocalHttpApi]:
    with LocalHttpApi(routes, recorder, port=0) as server:
        yield server


@pytest.fixture
def staged_api(routes: list[Route], recorder: Recorder) -> Iterator[LocalHttpApi]:
    with LocalHttpApi(routes, recorder, port=0, stage="prod") as server:
        yield server


def test_extract_routes(routes: list[Route]) -> None:
    by_key = {route.route_key: route for route in routes}

    assert sorted(by_key) == [
        "ANY /v1/echo/{mode}",
        "ANY /v1/files/{proxy+}",
        "GET /v1/admin/reviews",
        "GET /v1/files/latest",
        "GET /v1/files/{file_id}",
        "POST /v1/signups",
        "POST /v1/signups/{signup_id}/verify",
    ]
    verify = by_key["POST /v1/signups/{signup_id}/verify"]
    assert verify.function_logical_id == "SignupFunction"
    assert verify.method == "POST"
    assert verify.path == "/v1/signups/{signup_id}/verify"
    assert verify.api_id_logical == "HttpApi"
    assert verify.auth is None
    assert verify.authorizer is None
    assert by_key["GET /v1/admin/reviews"].authorizer == "AWS_IAM"


def test_extract_routes_implicit_api() -> None:
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Events": {"Api": {"Type": "HttpApi"}}},
            }
        }
    }

    (route,) = extract_routes(template)

    assert route.api_id_logical == "ServerlessHttpApi"
    assert route.route_key == "$default"
    assert route.method == "ANY"


def test_extract_routes_default_authorizer() -> None:
    template = {
        "Globals": {"HttpApi": {"Auth": {"DefaultAuthorizer": "SubscriberJwt"}}},
        "Resources": {
            "AdminApi": {
                "Type": "AWS::Serverless::HttpApi",
                "Properties": {"Auth": {"DefaultAuthorizer": "AWS_IAM"}},
            },
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Admin": {
                            "Type": "HttpApi",
                            "Properties": {
                                "ApiId": {"Ref": "AdminApi"},
                                "Path": "/a",
                                "Method": "GET",
                            },
                        },
                        "Account": {
                            "Type": "HttpApi",
                            "Properties": {"Path": "/b", "Method": "GET"},
                        },
                        "Public": {
                            "Type": "HttpApi",
                            "Properties": {
                                "Path": "/c",
                                "Method": "GET",
                                "Auth": {"Authorizer": "NONE"},
                            },
                        },
                    }
                },
            },
        },
    }

    by_path = {route.path: route for route in extract_routes(template)}

    assert by_path["/a"].authorizer == "AWS_IAM"
    assert by_path["/b"].authorizer == "SubscriberJwt"
    assert by_path["/c"].authorizer is None


def function_with_event(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Events": {"Api": {"Type": "HttpApi", "Properties": properties}}},
            }
        }
    }


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"Path": "/a", "Method": "GET", "PayloadFormatVersion": "1.0"}, "PayloadFormatVersion"),
        ({"Path": "/a"}, "both Path and Method"),
        ({"Path": "a", "Method": "GET"}, "must start with"),
        ({"Path": "/a/{proxy+}/b", "Method": "GET"}, "greedy"),
        ({"Path": "/a/x{id}", "Method": "GET"}, "whole segment"),
        ({"Path": "/a", "Method": "FETCH"}, "Method"),
        ({"Path": "/a", "Method": "GET", "ApiId": "HttpApi"}, "ApiId"),
    ],
)
def test_extract_routes_rejects(properties: dict[str, Any], message: str) -> None:
    with pytest.raises(RouteConfigError, match=message) as caught:
        extract_routes(function_with_event(properties))

    assert "function Fn, event Api" in str(caught.value)


def test_extract_routes_rejects_duplicate() -> None:
    template = function_with_event({"Path": "/a", "Method": "GET"})
    events = template["Resources"]["Fn"]["Properties"]["Events"]
    events["Again"] = {"Type": "HttpApi", "Properties": {"Path": "/a", "Method": "get"}}

    with pytest.raises(RouteConfigError, match="duplicate route 'GET /a'"):
        extract_routes(template)


def test_event_shape(api: LocalHttpApi, recorder: Recorder) -> None:
    body = {"code": "123456"}
    started_ms = int(time.time() * 1000)

    response = requests.post(
        f"{api.base_url}/v1/signups/sg%2001/verify?lang=zh&b=2&lang=en&empty=",
        json=body,
        headers={
            "User-Agent": "test-agent/1.0",
            "X-Repeat": "one",
            "Cookie": "session=abc; theme=dark",
        },
        timeout=10,
    )

    assert response.status_code == 200
    assert response.json() == {"function": "SignupFunction"}
    assert response.headers["apigw-requestid"]
    function_id, event = recorder.calls[-1]
    assert function_id == "SignupFunction"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/signups/{signup_id}/verify"
    assert event["rawPath"] == "/v1/signups/sg%2001/verify"
    assert event["rawQueryString"] == "lang=zh&b=2&lang=en&empty="
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["queryStringParameters"] == {"lang": "zh,en", "b": "2", "empty": ""}
    assert event["pathParameters"] == {"signup_id": "sg 01"}
    assert json.loads(event["body"]) == body
    assert event["isBase64Encoded"] is False
    assert "stageVariables" not in event

    headers = event["headers"]
    assert all(name == name.lower() for name in headers)
    assert "cookie" not in headers
    assert headers["user-agent"] == "test-agent/1.0"
    assert headers["x-repeat"] == "one"
    assert headers["content-type"] == "application/json"
    assert headers["host"] == api.server_url.removeprefix("http://")
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == api.server_url.rsplit(":", 1)[1]
    assert headers["x-amzn-trace-id"].startswith("Root=1-")

    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == local_api_id("HttpApi")
    assert re.fullmatch(r"[0-9a-z]{10}", context["apiId"])
    assert context["domainName"] == headers["host"]
    assert context["domainPrefix"] == "127"
    assert context["http"] == {
        "method": "POST",
        "path": "/v1/signups/sg%2001/verify",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "test-agent/1.0",
    }
    assert context["requestId"] == response.headers["apigw-requestid"]
    assert context["routeKey"] == event["routeKey"]
    assert context["stage"] == "$default"
    assert "authorizer" not in context
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", context["time"])
    assert context["timeEpoch"] >= started_ms


def test_event_repeated_headers(api: LocalHttpApi, recorder: Recorder) -> None:
    # requests sends each header name once, so repeat the header through http.client.
    connection = http.client.HTTPConnection(api.server_url.removeprefix("http://"), timeout=10)
    try:
        connection.putrequest("GET", "/v1/files/latest")
        connection.putheader("X-Repeat", "one")
        connection.putheader("X-Repeat", "two")
        connection.endheaders()
        status = connection.getresponse().status
    finally:
        connection.close()

    assert status == 200
    assert recorder.last_event["headers"]["x-repeat"] == "one,two"


def test_event_without_body(api: LocalHttpApi, recorder: Recorder) -> None:
    response = requests.get(f"{api.base_url}/v1/files/latest", timeout=10)

    assert response.status_code == 200
    event = recorder.last_event
    assert "body" not in event
    assert event["isBase64Encoded"] is False
    assert "queryStringParameters" not in event
    assert "pathParameters" not in event
    assert "cookies" not in event
    assert event["rawQueryString"] == ""


def test_named_stage_prefix(staged_api: LocalHttpApi, recorder: Recorder) -> None:
    assert staged_api.base_url.endswith("/prod")

    response = requests.post(f"{staged_api.base_url}/v1/signups", json={"a": 1}, timeout=10)

    assert response.status_code == 200
    event = recorder.last_event
    assert event["rawPath"] == "/prod/v1/signups"
    assert event["routeKey"] == "POST /v1/signups"
    assert event["requestContext"]["stage"] == "prod"
    assert event["requestContext"]["http"]["path"] == "/prod/v1/signups"
    request = parse_http_event(event)
    assert request.path == "/v1/signups"
    assert request.json() == {"a": 1}


def test_named_stage_requires_prefix(staged_api: LocalHttpApi, recorder: Recorder) -> None:
    response = requests.post(f"{staged_api.server_url}/v1/signups", json={}, timeout=10)

    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    assert recorder.calls == []


def test_default_stage_parses(api: LocalHttpApi, recorder: Recorder) -> None:
    requests.post(f"{api.base_url}/v1/signups", json={"a": 1}, timeout=10)

    request = parse_http_event(recorder.last_event)

    assert request.path == "/v1/signups"
    assert request.stage == "$default"
    assert request.source_ip == "127.0.0.1"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/unknown"),
        ("GET", "/v1/signups"),
        ("DELETE", "/v1/signups/sg_01/verify"),
        ("POST", "/v1/signups/"),
        ("POST", "/v1/signups//verify"),
        ("GET", "/v1/files"),
        ("GET", "/v1/files/"),
    ],
)
def test_not_found(api: LocalHttpApi, recorder: Recorder, method: str, path: str) -> None:
    response = requests.request(method, f"{api.base_url}{path}", timeout=10)

    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    assert response.headers["content-type"] == "application/json"
    assert recorder.calls == []


def test_literal_beats_variable(api: LocalHttpApi, recorder: Recorder) -> None:
    requests.get(f"{api.base_url}/v1/files/latest", timeout=10)

    assert recorder.last_event["routeKey"] == "GET /v1/files/latest"
    assert "pathParameters" not in recorder.last_event


def test_variable_beats_greedy(api: LocalHttpApi, recorder: Recorder) -> None:
    requests.get(f"{api.base_url}/v1/files/f_01", timeout=10)

    assert recorder.last_event["routeKey"] == "GET /v1/files/{file_id}"
    assert recorder.last_event["pathParameters"] == {"file_id": "f_01"}


def test_greedy_matches_rest(api: LocalHttpApi, recorder: Recorder) -> None:
    response = requests.put(f"{api.base_url}/v1/files/a/b%20c/d", data=b"", timeout=10)

    assert response.status_code == 200
    assert recorder.last_event["routeKey"] == "ANY /v1/files/{proxy+}"
    assert recorder.last_event["pathParameters"] == {"proxy": "a/b c/d"}
    assert recorder.last_event["requestContext"]["http"]["method"] == "PUT"


def test_any_method_matches(api: LocalHttpApi, recorder: Recorder) -> None:
    for method in ("DELETE", "PATCH", "OPTIONS", "POST"):
        response = requests.request(method, f"{api.base_url}/v1/files/f_01", timeout=10)

        assert response.status_code == 200
        assert recorder.last_event["routeKey"] == "ANY /v1/files/{proxy+}"
        assert recorder.last_event["requestContext"]["http"]["method"] == method


def test_head_has_no_body(api: LocalHttpApi, recorder: Recorder) -> None:
    response = requests.head(f"{api.base_url}/v1/echo/dict", timeout=10)

    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("dict", {"signup_id": "sg_01", "message": "你好"}), ("text", "plain"), ("list", [1, 2])],
)
def test_inferred_response(api: LocalHttpApi, mode: str, expected: Any) -> None:
    response = requests.get(f"{api.base_url}/v1/echo/{mode}", timeout=10)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected


def test_full_response(api: LocalHttpApi) -> None:
    response = requests.get(f"{api.base_url}/v1/echo/full", timeout=10)

    assert response.status_code == 202
    assert response.text == "accepted"
    assert response.headers["x-custom"] == "yes"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.raw.headers.getlist("set-cookie") == ["session=abc; HttpOnly", "theme=dark"]


def test_binary_response(api: LocalHttpApi) -> None:
    response = requests.get(f"{api.base_url}/v1/echo/binary", timeout=10)

    assert response.status_code == 200
    assert response.content == b"\x00\x01\xfe\xff"


def test_json_response_helper(api: LocalHttpApi) -> None:
    response = requests.get(f"{api.base_url}/v1/echo/missing", timeout=10)

    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"mode": "missing"}


def test_binary_body_base64(api: LocalHttpApi, recorder: Recorder) -> None:
    payload = bytes(range(256))

    requests.post(
        f"{api.base_url}/v1/echo/dict",
        data=payload,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )

    event = recorder.last_event
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload
    assert parse_http_event(event).body == payload


@pytest.mark.parametrize(
    ("content_type", "is_base64"),
    [
        ("text/plain; charset=utf-8", False),
        ("application/json", False),
        ("application/xml", False),
        ("application/x-www-form-urlencoded", True),
        ("application/problem+json", True),
        (None, True),
    ],
)
def test_body_encoding_by_type(
    api: LocalHttpApi, recorder: Recorder, content_type: str | None, is_base64: bool
) -> None:
    payload = "a=1&b=张三".encode()
    headers = {"Content-Type": content_type} if content_type else {}

    requests.post(f"{api.base_url}/v1/echo/dict", data=payload, headers=headers, timeout=10)

    event = recorder.last_event
    assert event["isBase64Encoded"] is is_base64
    assert parse_http_event(event).body == payload


def test_invalid_utf8_text_body(api: LocalHttpApi, recorder: Recorder) -> None:
    requests.post(
        f"{api.base_url}/v1/echo/dict",
        data=b"\xff\xfe",
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )

    assert recorder.last_event["isBase64Encoded"] is True
    assert parse_http_event(recorder.last_event).body == b"\xff\xfe"


def test_chunked_body(api: LocalHttpApi, recorder: Recorder) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"part": '
        yield b'"one"}'

    response = requests.post(
        f"{api.base_url}/v1/signups",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 200
    assert json.loads(recorder.last_event["body"]) == {"part": "one"}


def test_body_too_large(api: LocalHttpApi, recorder: Recorder) -> None:
    response = requests.post(
        f"{api.base_url}/v1/signups",
        data=b"x" * (MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 413
    assert response.json() == {"message": "Request Entity Too Large"}
    assert recorder.calls == []


def test_body_at_limit(api: LocalHttpApi, recorder: Recorder) -> None:
    response = requests.post(
        f"{api.base_url}/v1/echo/dict",
        data=b"x" * MAX_BODY_BYTES,
        headers={"Content-Type": "text/plain"},
        timeout=30,
    )

    assert response.status_code == 200
    assert len(recorder.last_event["body"]) == MAX_BODY_BYTES


def test_handler_exception(api: LocalHttpApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    response = requests.get(f"{api.base_url}/v1/echo/raise", timeout=10)

    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}
    failures = [r for r in caplog.records if r.getMessage() == "function invocation failed"]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert failures[0].__dict__["error_type"] == "RuntimeError"
    assert failures[0].__dict__["request_id"] == response.headers["apigw-requestid"]
    assert failures[0].exc_info is None
    assert ID_NUMBER not in caplog.text


def test_invalid_function_response(api: LocalHttpApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    response = requests.get(f"{api.base_url}/v1/echo/bad-status", timeout=10)

    assert response.status_code == 500
    records = [r for r in caplog.records if r.getMessage() == "invalid function response"]
    assert len(records) == 1
    assert records[0].__dict__["field"] == "statusCode"


def test_iam_route_without_authorizer(api: LocalHttpApi, recorder: Recorder) -> None:
    response = requests.get(f"{api.base_url}/v1/admin/reviews", timeout=10)

    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}
    assert recorder.calls == []


def test_authorizer_rejects(routes: list[Route], recorder: Recorder) -> None:
    seen: list[str] = []

    def authorize(route: Route, event: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(route.route_key)
        return None

    with LocalHttpApi(routes, recorder, port=0, authorize=authorize) as server:
        protected = requests.get(f"{server.base_url}/v1/admin/reviews", timeout=10)
        public = requests.post(f"{server.base_url}/v1/signups", json={}, timeout=10)

    assert protected.status_code == 401
    assert protected.json() == {"message": "Unauthorized"}
    assert public.status_code == 200
    assert seen == ["GET /v1/admin/reviews"]
    assert [function_id for function_id, _ in recorder.calls] == ["SignupFunction"]


def test_authorizer_context(routes: list[Route], recorder: Recorder) -> None:
    context = {"iam": {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:role/x"}}

    def authorize(route: Route, event: dict[str, Any]) -> dict[str, Any] | None:
        assert event["routeKey"] == "GET /v1/admin/reviews"
        return context

    with LocalHttpApi(routes, recorder, port=0, authorize=authorize) as server:
        response = requests.get(f"{server.base_url}/v1/admin/reviews", timeout=10)

    assert response.status_code == 200
    assert recorder.last_event["requestContext"]["authorizer"] == context
    assert parse_http_event(recorder.last_event).authorizer["iam"] == context["iam"]


def test_authorizer_failure(routes: list[Route], recorder: Recorder) -> None:
    def authorize(route: Route, event: dict[str, Any]) -> dict[str, Any] | None:
        raise RuntimeError("signature check crashed")

    with LocalHttpApi(routes, recorder, port=0, authorize=authorize) as server:
        response = requests.get(f"{server.base_url}/v1/admin/reviews", timeout=10)

    assert response.status_code == 500
    assert recorder.calls == []


def test_forwarded_for_ignored(api: LocalHttpApi, recorder: Recorder) -> None:
    requests.get(
        f"{api.base_url}/v1/files/latest",
        headers={"X-Forwarded-For": "198.51.100.7"},
        timeout=10,
    )

    event = recorder.last_event
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["headers"]["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"


def test_forwarded_for_trusted(routes: list[Route], recorder: Recorder) -> None:
    with LocalHttpApi(routes, recorder, port=0, trust_forwarded_for=True) as server:
        for client in ("198.51.100.7", "198.51.100.8, 10.0.0.1", "not-an-address"):
            requests.get(
                f"{server.base_url}/v1/files/latest",
                headers={"X-Forwarded-For": client},
                timeout=10,
            )

    source_ips = [event["requestContext"]["http"]["sourceIp"] for _, event in recorder.calls]
    assert source_ips == ["198.51.100.7", "198.51.100.8", "127.0.0.1"]


def test_many_clients_connect_at_once(api: LocalHttpApi) -> None:
    # The accept loop stops at the first connection, so every later one waits in the listen
    # backlog. A backlog of socketserver's default 5 makes the kernel drop the rest, so
    # their connect() times out.
    assert api._server is not None
    accepting = threading.Event()
    serve_connection = api._server.process_request

    def hold_accept_loop(request: Any, client_address: Any) -> None:
        accepting.wait(timeout=30)
        serve_connection(request, client_address)

    api._server.process_request = hold_accept_loop  # type: ignore[method-assign]
    port = int(api.server_url.rsplit(":", 1)[1])
    clients = []
    try:
        for _ in range(64):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    finally:
        accepting.set()

    statuses = []
    for client in clients:
        with client:
            client.sendall(
                b"GET /v1/files/latest HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n"
            )
            client.settimeout(30)
            statuses.append(client.makefile("rb").readline().split()[1])
    assert statuses == [b"200"] * 64


def test_logs_exclude_personal_data(api: LocalHttpApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"name": "张三", "id_number": ID_NUMBER, "mobile": MOBILE, "email": EMAIL}

    requests.post(
        f"{api.base_url}/v1/signups?mobile={MOBILE}&email={EMAIL}",
        json=body,
        headers={"X-Contact": EMAIL, "Cookie": f"id={ID_NUMBER}"},
        timeout=10,
    )
    requests.get(f"{api.base_url}/v1/unknown/{ID_NUMBER}?email={EMAIL}", timeout=10)

    completed = [r for r in caplog.records if r.getMessage() == "http request completed"]
    assert [r.__dict__["status_code"] for r in completed] == [200, 404]
    assert [r.__dict__["route_key"] for r in completed] == ["POST /v1/signups", None]
    # Only the server's records: the requests client logs URLs at DEBUG.
    server_records = [r for r in caplog.records if r.name == "infra.local.http_api"]
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in server_records)
    for value in ("张三", ID_NUMBER, MOBILE, EMAIL, "8613800138000", "zhangsan"):
        assert value not in logged


def test_malformed_request_line(api: LocalHttpApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = api.server_url.removeprefix("http://").split(":")

    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"GET /v1/files?email={EMAIL} extra HTTP/1.1\r\n\r\n".encode())
        reply = connection.recv(65536)

    assert reply.startswith(b"HTTP/1.1 400")
    server_records = [r for r in caplog.records if r.name == "infra.local.http_api"]
    assert [r.getMessage() for r in server_records] == ["http connection error"]
    assert EMAIL not in caplog.text


def test_unexpected_error_logged(
    api: LocalHttpApi,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)

    def fail(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError(f"event build failed for {ID_NUMBER}")

    monkeypatch.setattr(api, "_build_event", fail)

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{api.base_url}/v1/files/latest", timeout=10)

    failures = [r for r in caplog.records if r.getMessage() == "http connection failed"]
    assert len(failures) == 1
    assert failures[0].__dict__["error_type"] == "RuntimeError"
    assert ID_NUMBER not in caplog.text
    assert ID_NUMBER not in capfd.readouterr().err


def test_rejects_non_loopback_host(routes: list[Route], recorder: Recorder) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        LocalHttpApi(routes, recorder, host="0.0.0.0")  # noqa: S104


def test_rejects_invalid_stage(routes: list[Route], recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="invalid stage"):
        LocalHttpApi(routes, recorder, stage="prod/v1")


def test_stop_releases_port(routes: list[Route], recorder: Recorder) -> None:
    server = LocalHttpApi(routes, recorder, port=0)
    server.start()
    url = server.base_url
    server.stop()
    server.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v1/files/latest", timeout=10)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
