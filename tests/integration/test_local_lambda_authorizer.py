"""The local HTTP API's Lambda REQUEST authorizers, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from idsentry.http import json_response, parse_http_event
from infra.local.http_api import (
    LambdaAuthorizer,
    LocalHttpApi,
    Route,
    RouteConfigError,
    extract_routes,
)

pytestmark = pytest.mark.integration

SUBSCRIBER = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"


def template(**authorizer_changes: Any) -> dict[str, Any]:
    """A SAM template with one Lambda authorizer, one protected route and one public route."""
    authorizer: dict[str, Any] = {
        "FunctionArn": {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]},
        "AuthorizerPayloadFormatVersion": "2.0",
        "EnableSimpleResponses": True,
        "Identity": {"Headers": ["Authorization"], "ReauthorizeEvery": 0},
    }
    authorizer.update(authorizer_changes)
    authorizer = {name: value for name, value in authorizer.items() if value is not None}
    return {
        "Resources": {
            "HttpApi": {
                "Type": "AWS::Serverless::HttpApi",
                "Properties": {
                    "Auth": {
                        "EnableIamAuthorizer": True,
                        "Authorizers": {"TokenAuthorizer": authorizer},
                    }
                },
            },
            "AuthorizerFunction": {"Type": "AWS::Serverless::Function", "Properties": {}},
            "AccountFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Account": {
                            "Type": "HttpApi",
                            "Properties": {
                                "ApiId": {"Ref": "HttpApi"},
                                "Path": "/v1/account/{section}",
                                "Method": "POST",
                                "Auth": {"Authorizer": "TokenAuthorizer"},
                            },
                        },
                        "Public": {
                            "Type": "HttpApi",
                            "Properties": {
                                "ApiId": {"Ref": "HttpApi"},
                                "Path": "/v1/public",
                                "Method": "GET",
                            },
                        },
                    }
                },
            },
        }
    }


class Functions:
    """Stands in for the local runtime. The authorizer returns `decide(event)`."""

    def __init__(self, decide: Callable[[dict[str, Any]], Any]) -> None:
        self.decide = decide
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, function_id: str, event: dict[str, Any]) -> Any:
        with self._lock:
            self.calls.append((function_id, copy.deepcopy(event)))
        if function_id == "AuthorizerFunction":
            return self.decide(event)
        return json_response(200, {"function": function_id})

    def events_of(self, function_id: str) -> list[dict[str, Any]]:
        return [event for called, event in self.calls if called == function_id]


def allow(event: dict[str, Any]) -> dict[str, Any]:
    return {"isAuthorized": True, "context": {"subscriber_id": SUBSCRIBER}}


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[LocalHttpApi, Functions]]]:
    started: list[LocalHttpApi] = []

    def start(
        decide: Callable[[dict[str, Any]], Any] = allow, stage: str = "$default", **changes: Any
    ) -> tuple[LocalHttpApi, Functions]:
        functions = Functions(decide)
        api = LocalHttpApi(extract_routes(template(**changes)), functions, port=0, stage=stage)
        api.start()
        started.append(api)
        return api, functions

    yield start
    for api in started:
        api.stop()


def test_extract_lambda_authorizer() -> None:
    by_key = {route.route_key: route for route in extract_routes(template())}

    protected = by_key["POST /v1/account/{section}"]
    assert protected.authorizer == "TokenAuthorizer"
    assert protected.lambda_authorizer == LambdaAuthorizer(
        name="TokenAuthorizer",
        function_logical_id="AuthorizerFunction",
        identity_sources=(("header", "authorization"),),
        result_ttl_seconds=0,
    )
    assert by_key["GET /v1/public"].lambda_authorizer is None


def test_reauthorize_every_required() -> None:
    with pytest.raises(RouteConfigError, match=r"missing Identity\.ReauthorizeEvery"):
        extract_routes(template(Identity={"Headers": ["Authorization"]}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"AuthorizerPayloadFormatVersion": "1.0"}, "AuthorizerPayloadFormatVersion"),
        ({"EnableSimpleResponses": False}, "EnableSimpleResponses"),
        ({"EnableSimpleResponses": None}, "EnableSimpleResponses"),
        ({"FunctionArn": {"Ref": "AuthorizerFunction"}}, "FunctionArn"),
        ({"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:x"}, "FunctionArn"),
        ({"Identity": {"Context": ["requestId"]}}, "Identity"),
        (
            {"Identity": {"Headers": ["Authorization"], "ReauthorizeEvery": 7200}},
            "ReauthorizeEvery",
        ),
    ],
)
def test_unsupported_authorizer_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(RouteConfigError, match=message) as raised:
        extract_routes(template(**changes))

    assert "authorizer TokenAuthorizer of HttpApi" in str(raised.value)


def test_jwt_authorizer_left_to_callback() -> None:
    jwt = {"JwtConfiguration": {"issuer": "https://issuer.example.com", "audience": ["a"]}}
    spec = template()
    spec["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["TokenAuthorizer"] = {
        **jwt,
        "IdentitySource": "$request.header.Authorization",
    }

    by_key = {route.route_key: route for route in extract_routes(spec)}

    assert by_key["POST /v1/account/{section}"].authorizer == "TokenAuthorizer"
    assert by_key["POST /v1/account/{section}"].lambda_authorizer is None


def test_missing_identity_source_is_401(serve: Callable[..., Any]) -> None:
    api, functions = serve()

    response = requests.post(f"{api.base_url}/v1/account/alerts", json={}, timeout=10)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert functions.calls == []


def test_empty_identity_source_is_401(serve: Callable[..., Any]) -> None:
    api, functions = serve(Identity={"QueryStrings": ["token"], "ReauthorizeEvery": 0})

    response = requests.post(f"{api.base_url}/v1/account/alerts?token=", json={}, timeout=10)

    assert response.status_code == 401
    assert functions.calls == []


def test_allowed_request_gets_context(serve: Callable[..., Any]) -> None:
    api, functions = serve()

    response = requests.post(
        f"{api.base_url}/v1/account/alerts?page=2",
        json={"secret": "body"},
        headers={"Authorization": "Bearer abc.def.ghi"},
        timeout=10,
    )

    assert response.status_code == 200
    assert response.json() == {"function": "AccountFunction"}
    (routed,) = functions.events_of("AccountFunction")
    assert routed["requestContext"]["authorizer"] == {"lambda": {"subscriber_id": SUBSCRIBER}}
    request = parse_http_event(routed)
    assert request.authorizer["lambda"]["subscriber_id"] == SUBSCRIBER


def test_authorizer_event_shape(serve: Callable[..., Any]) -> None:
    api, functions = serve()

    requests.post(
        f"{api.base_url}/v1/account/alerts?page=2",
        json={"secret": "body"},
        headers={"Authorization": "Bearer abc.def.ghi"},
        timeout=10,
    )

    (event,) = functions.events_of("AuthorizerFunction")
    assert event["version"] == "2.0"
    assert event["type"] == "REQUEST"
    assert event["identitySource"] == ["Bearer abc.def.ghi"]
    assert event["routeKey"] == "POST /v1/account/{section}"
    assert event["rawPath"] == "/v1/account/alerts"
    assert event["rawQueryString"] == "page=2"
    assert event["queryStringParameters"] == {"page": "2"}
    assert event["pathParameters"] == {"section": "alerts"}
    assert event["headers"]["authorization"] == "Bearer abc.def.ghi"
    api_id = event["requestContext"]["apiId"]
    assert event["routeArn"] == (
        f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/$default/POST/v1/account/alerts"
    )
    # API Gateway sends the authorizer the request without its body.
    assert "body" not in event
    assert "isBase64Encoded" not in event


def test_named_stage_route_arn(serve: Callable[..., Any]) -> None:
    api, functions = serve(stage="prod")

    response = requests.post(
        f"{api.base_url}/v1/account/alerts", headers={"Authorization": "Bearer t"}, timeout=10
    )

    assert response.status_code == 200
    (event,) = functions.events_of("AuthorizerFunction")
    assert event["routeArn"].endswith("/prod/POST/v1/account/alerts")
    assert event["rawPath"] == "/prod/v1/account/alerts"


def test_denied_request_is_403(serve: Callable[..., Any]) -> None:
    api, functions = serve(lambda event: {"isAuthorized": False})

    response = requests.post(
        f"{api.base_url}/v1/account/alerts", headers={"Authorization": "Bearer x"}, timeout=10
    )

    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}
    assert functions.events_of("AccountFunction") == []


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "allow",
        {"isAuthorized": "true"},
        {"principalId": "user", "policyDocument": {}},
        {"isAuthorized": True, "context": ["not", "a", "map"]},
    ],
)
def test_invalid_authorizer_response_is_500(serve: Callable[..., Any], answer: Any) -> None:
    api, functions = serve(lambda event: answer)

    response = requests.post(
        f"{api.base_url}/v1/account/alerts", headers={"Authorization": "Bearer x"}, timeout=10
    )

    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}
    assert functions.events_of("AccountFunction") == []


def test_failing_authorizer_is_500(serve: Callable[..., Any]) -> None:
    def crash(event: dict[str, Any]) -> Any:
        raise RuntimeError("key service unavailable")

    api, functions = serve(crash)

    response = requests.post(
        f"{api.base_url}/v1/account/alerts", headers={"Authorization": "Bearer x"}, timeout=10
    )

    assert response.status_code == 500
    assert functions.events_of("AccountFunction") == []


def test_public_route_skips_authorizer(serve: Callable[..., Any]) -> None:
    api, functions = serve(lambda event: {"isAuthorized": False})

    response = requests.get(f"{api.base_url}/v1/public", timeout=10)

    assert response.status_code == 200
    assert functions.events_of("AuthorizerFunction") == []


def test_no_caching_with_zero_ttl(serve: Callable[..., Any]) -> None:
    api, functions = serve()

    for _ in range(3):
        requests.post(
            f"{api.base_url}/v1/account/a", headers={"Authorization": "Bearer same"}, timeout=10
        )

    assert len(functions.events_of("AuthorizerFunction")) == 3


def test_results_cached_per_identity(serve: Callable[..., Any]) -> None:
    api, functions = serve(Identity={"Headers": ["Authorization"], "ReauthorizeEvery": 300})

    statuses = [
        requests.post(
            f"{api.base_url}/v1/account/{section}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).status_code
        for section, token in (("a", "one"), ("b", "one"), ("a", "two"), ("c", "one"))
    ]

    assert statuses == [200, 200, 200, 200]
    identities = [event["identitySource"] for event in functions.events_of("AuthorizerFunction")]
    assert identities == [["Bearer one"], ["Bearer two"]]
    # The cached context still reaches every routed request.
    for event in functions.events_of("AccountFunction"):
        assert event["requestContext"]["authorizer"]["lambda"]["subscriber_id"] == SUBSCRIBER


def test_cached_denial(serve: Callable[..., Any]) -> None:
    api, functions = serve(
        lambda event: {"isAuthorized": False},
        Identity={"Headers": ["Authorization"], "ReauthorizeEvery": 60},
    )

    statuses = [
        requests.post(
            f"{api.base_url}/v1/account/a", headers={"Authorization": "Bearer x"}, timeout=10
        ).status_code
        for _ in range(2)
    ]

    assert statuses == [403, 403]
    assert len(functions.events_of("AuthorizerFunction")) == 1


def test_route_keeps_iam_callback() -> None:
    # A route named AWS_IAM still goes to the authorize callback, not to a Lambda function.
    route = Route("AdminFunction", "GET", "/v1/admin/reviews", "HttpApi", {"Authorizer": "AWS_IAM"})

    assert route.authorizer == "AWS_IAM"
    assert route.lambda_authorizer is None
