"""Local stand-in for API Gateway HTTP APIs: serves template routes as payload format 2.0 events."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import logging
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote

logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
DEFAULT_STAGE = "$default"
DEFAULT_ROUTE_KEY = "$default"
LOOPBACK_HOST = "127.0.0.1"

# SAM names the API it creates for HttpApi events without an ApiId "ServerlessHttpApi".
IMPLICIT_API_LOGICAL_ID = "ServerlessHttpApi"

# HTTP API quota "Payload size: 10 MB" (API Gateway developer guide, HTTP API quotas), read
# here as MiB. NOTE: Lambda's 6 MB synchronous invocation limit is lower and is not enforced,
# so a body of a few MB that passes here can fail in AWS, more so once base64-encoded.
MAX_BODY_BYTES = 10 * 1024 * 1024

# HTTP APIs pass text/* and these request bodies as text and base64-encode every other
# media type, including application/x-www-form-urlencoded and a missing Content-Type. AWS
# documents only that binary bodies are base64-encoded. The split comes from tests against
# AWS reported in https://github.com/ministackorg/ministack/pull/766.
TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ANY_METHOD_ALIASES = frozenset({"ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD"})
_NO_AUTHORIZER = "NONE"

_STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_VARIABLE_SEGMENT = re.compile(r"\{([A-Za-z0-9._-]+)(\+?)\}")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_LITERAL, _VARIABLE, _GREEDY = 0, 1, 2
_DRAIN_LIMIT_BYTES = 4 * MAX_BODY_BYTES
_READ_CHUNK_BYTES = 64 * 1024
# Seconds between serve_forever's checks for stop(). The library default of 0.5 s slows tests.
_SHUTDOWN_POLL_SECONDS = 0.05
# The longest time API Gateway caches a Lambda authorizer's result (AuthorizerResultTtlInSeconds).
MAX_AUTHORIZER_TTL_SECONDS = 3600

InvokeFunction = Callable[[str, dict[str, Any]], Any]
AuthorizeFunction = Callable[["Route", dict[str, Any]], dict[str, Any] | None]
PagesFunction = Callable[["IncomingRequest"], "OutgoingResponse | None"]


class RouteConfigError(ValueError):
    """A SAM template declares an HttpApi route that this server cannot serve."""


@dataclass(frozen=True)
class LambdaAuthorizer:
    """A Lambda REQUEST authorizer of an HttpApi (payload format 2.0, simple responses).

    `identity_sources` are ("header", lower-case name) or ("querystring", name) pairs.
    A request that lacks any of them gets 401 without the function being invoked.
    """

    name: str
    function_logical_id: str
    identity_sources: tuple[tuple[str, str], ...]
    result_ttl_seconds: int


@dataclass(frozen=True)
class Route:
    """One HttpApi route of a SAM function: method, path, owning API and effective Auth."""

    function_logical_id: str
    method: str
    path: str
    api_id_logical: str
    auth: Mapping[str, Any] | None = None
    lambda_authorizer: LambdaAuthorizer | None = None

    @property
    def route_key(self) -> str:
        """API Gateway route key, for example ``POST /v1/signups`` or ``$default``."""
        if self.path == DEFAULT_ROUTE_KEY:
            return DEFAULT_ROUTE_KEY
        return f"{self.method} {self.path}"

    @property
    def authorizer(self) -> str | None:
        """Name of the authorizer that protects the route (``AWS_IAM`` or a JWT authorizer)."""
        if not self.auth:
            return None
        name = self.auth.get("Authorizer")
        if not isinstance(name, str) or name == _NO_AUTHORIZER:
            return None
        return name


@dataclass(frozen=True)
class IncomingRequest:
    """An HTTP request as received on the socket, before any API Gateway processing."""

    method: str
    target: str
    protocol: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    client_ip: str


@dataclass(frozen=True)
class OutgoingResponse:
    """An HTTP response ready to be written to the socket."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class _Segment:
    kind: int
    text: str


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    segments: tuple[_Segment, ...]

    def match_path(self, path_segments: Sequence[str]) -> dict[str, str] | None:
        """Return the decoded path parameters when the path matches, otherwise None."""
        parameters: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.kind == _GREEDY:
                rest = path_segments[index:]
                if not rest or not rest[0]:
                    return None
                parameters[segment.text] = unquote("/".join(rest))
                return parameters
            if index >= len(path_segments):
                return None
            value = unquote(path_segments[index])
            if segment.kind == _LITERAL and value != segment.text:
                return None
            if segment.kind == _VARIABLE:
                if not value:
                    return None
                parameters[segment.text] = value
        if len(path_segments) != len(self.segments):
            return None
        return parameters

    def matches_method(self, method: str) -> bool:
        return self.route.method in ("ANY", method)

    def rank(self) -> tuple[bool, bool, tuple[int, ...], bool]:
        """Sort key: lower ranks win, as in API Gateway's route selection.

        The $default route comes last, greedy routes after the others, then segment by
        segment a literal beats a variable, and a named method beats ANY.
        """
        kinds = tuple(segment.kind for segment in self.segments)
        is_default = self.route.path == DEFAULT_ROUTE_KEY
        return (is_default, _GREEDY in kinds, kinds, self.route.method == "ANY")


def extract_routes(sam_template: Mapping[str, Any]) -> list[Route]:
    """Collect the HttpApi routes of the functions in an untranslated SAM template.

    A route without its own ``Auth`` inherits the ``DefaultAuthorizer`` of its API
    (resource properties first, then ``Globals.HttpApi``). A route whose authorizer is a
    Lambda authorizer of its API (``Auth.Authorizers.<name>.FunctionArn``) carries that
    authorizer's configuration. Raise RouteConfigError naming the function and event for a
    payload format other than 2.0, a malformed path or method, or a route key declared twice
    on one API, and naming the authorizer for a Lambda authorizer this server cannot emulate.
    """
    resources = sam_template.get("Resources")
    if not isinstance(resources, Mapping):
        raise RouteConfigError("invalid SAM template: Resources is missing or not a mapping")
    default_authorizers = _default_authorizers(sam_template, resources)
    lambda_authorizers = _lambda_authorizers(resources)

    routes: list[Route] = []
    seen: set[tuple[str, str]] = set()
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        events = (resource.get("Properties") or {}).get("Events") or {}
        if not isinstance(events, Mapping):
            raise RouteConfigError(f"invalid Events on function {logical_id}: expected a mapping")

        for event_name, event in events.items():
            if not isinstance(event, Mapping) or event.get("Type") != "HttpApi":
                continue
            route = _route_from_event(logical_id, event_name, event, default_authorizers)
            authorizer = lambda_authorizers.get((route.api_id_logical, route.authorizer or ""))
            if authorizer is not None:
                route = replace(route, lambda_authorizer=authorizer)
            key = (route.api_id_logical, route.route_key)
            if key in seen:
                raise RouteConfigError(
                    f"duplicate route {route.route_key!r} on API {route.api_id_logical} "
                    f"(function {logical_id}, event {event_name})"
                )
            seen.add(key)
            routes.append(route)
    return routes


def _default_authorizers(
    sam_template: Mapping[str, Any], resources: Mapping[str, Any]
) -> dict[str, str]:
    globals_section = sam_template.get("Globals") or {}
    global_auth = (globals_section.get("HttpApi") or {}).get("Auth") or {}
    global_default = global_auth.get("DefaultAuthorizer")

    defaults: dict[str, str] = {}
    if isinstance(global_default, str):
        defaults[IMPLICIT_API_LOGICAL_ID] = global_default
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::Serverless::HttpApi":
            continue
        auth = (resource.get("Properties") or {}).get("Auth") or {}
        default = auth.get("DefaultAuthorizer", global_default)
        if isinstance(default, str):
            defaults[logical_id] = default
    return defaults


def _lambda_authorizers(resources: Mapping[str, Any]) -> dict[tuple[str, str], LambdaAuthorizer]:
    """Return the Lambda authorizers of every HttpApi resource by (API logical id, name)."""
    found: dict[tuple[str, str], LambdaAuthorizer] = {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::Serverless::HttpApi":
            continue
        auth = (resource.get("Properties") or {}).get("Auth") or {}
        for name, config in (auth.get("Authorizers") or {}).items():
            authorizer = _lambda_authorizer(str(name), config, f"authorizer {name} of {logical_id}")
            if authorizer is not None:
                found[(logical_id, str(name))] = authorizer
    return found


def _lambda_authorizer(name: str, config: Any, where: str) -> LambdaAuthorizer | None:
    """Read one SAM authorizer; None for a JWT authorizer, which is left to `authorize`."""
    if not isinstance(config, Mapping):
        raise RouteConfigError(f"invalid {where}: expected a mapping")
    if "FunctionArn" not in config:
        return None

    function_arn = config["FunctionArn"]
    get_att = function_arn.get("Fn::GetAtt") if isinstance(function_arn, Mapping) else None
    if not (isinstance(get_att, list) and len(get_att) == 2 and get_att[1] == "Arn"):
        raise RouteConfigError(
            f"invalid FunctionArn ({where}): expected !GetAtt <function logical id>.Arn"
        )
    version = str(config.get("AuthorizerPayloadFormatVersion", ""))
    if version != "2.0":
        raise RouteConfigError(
            f"unsupported AuthorizerPayloadFormatVersion {version!r} ({where}): "
            "only 2.0 is emulated"
        )
    if config.get("EnableSimpleResponses") is not True:
        raise RouteConfigError(
            f"unsupported authorizer response ({where}): only EnableSimpleResponses: true "
            "is emulated, not IAM policy responses"
        )

    identity = config.get("Identity") or {}
    unsupported = sorted(set(identity) - {"Headers", "QueryStrings", "ReauthorizeEvery"})
    if unsupported:
        raise RouteConfigError(f"unsupported Identity {unsupported} ({where})")
    sources = tuple(("header", str(header).lower()) for header in identity.get("Headers") or ())
    sources += tuple(("querystring", str(query)) for query in identity.get("QueryStrings") or ())
    # Required, because the AWS documentation no longer states the TTL used without it.
    ttl = identity.get("ReauthorizeEvery")
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int)
        or not 0 <= ttl <= MAX_AUTHORIZER_TTL_SECONDS
    ):
        raise RouteConfigError(
            f"invalid or missing Identity.ReauthorizeEvery {ttl!r} ({where}): set 0 to "
            f"{MAX_AUTHORIZER_TTL_SECONDS} seconds (0 turns result caching off)"
        )
    return LambdaAuthorizer(name, str(get_att[0]), sources, ttl)


def _route_from_event(
    function_id: str,
    event_name: str,
    event: Mapping[str, Any],
    default_authorizers: Mapping[str, str],
) -> Route:
    where = f"function {function_id}, event {event_name}"
    properties = event.get("Properties") or {}
    if not isinstance(properties, Mapping):
        raise RouteConfigError(f"invalid Properties ({where}): expected a mapping")

    payload_version = str(properties.get("PayloadFormatVersion", "2.0"))
    if payload_version != "2.0":
        raise RouteConfigError(
            f"unsupported PayloadFormatVersion {payload_version!r} ({where}): "
            "this project uses payload format 2.0 only; remove the property or set it to '2.0'"
        )

    path = properties.get("Path")
    method = properties.get("Method")
    if path is None and method is None:
        path, method = DEFAULT_ROUTE_KEY, "ANY"
    if not isinstance(path, str) or not isinstance(method, str):
        raise RouteConfigError(f"invalid route ({where}): set both Path and Method, or neither")
    method = _normalise_method(method, where)
    if path != DEFAULT_ROUTE_KEY:
        _compile_path(path, where)

    api_id = _api_logical_id(properties.get("ApiId"), where)
    auth = properties.get("Auth")
    if auth is not None and not isinstance(auth, Mapping):
        raise RouteConfigError(f"invalid Auth ({where}): expected a mapping")
    if auth is None and api_id in default_authorizers:
        auth = {"Authorizer": default_authorizers[api_id]}
    return Route(function_id, method, path, api_id, dict(auth) if auth is not None else None)


def _normalise_method(method: str, where: str) -> str:
    upper = method.upper()
    if upper in _ANY_METHOD_ALIASES:
        return "ANY"
    if upper not in HTTP_METHODS:
        raise RouteConfigError(f"invalid Method {method!r} ({where})")
    return upper


def _api_logical_id(api_id: Any, where: str) -> str:
    if api_id is None:
        return IMPLICIT_API_LOGICAL_ID
    if isinstance(api_id, Mapping) and isinstance(api_id.get("Ref"), str):
        return str(api_id["Ref"])
    raise RouteConfigError(f"invalid ApiId ({where}): expected {{'Ref': '<HttpApi logical id>'}}")


def _compile_path(path: str, where: str) -> tuple[_Segment, ...]:
    if not path.startswith("/"):
        raise RouteConfigError(f"invalid Path {path!r} ({where}): must start with '/'")
    raw_segments = path[1:].split("/")
    segments: list[_Segment] = []
    for index, raw in enumerate(raw_segments):
        variable = _VARIABLE_SEGMENT.fullmatch(raw)
        if variable is None:
            if "{" in raw or "}" in raw:
                raise RouteConfigError(
                    f"invalid Path {path!r} ({where}): a variable must be a whole segment"
                )
            segments.append(_Segment(_LITERAL, raw))
            continue
        name, greedy = variable.groups()
        if greedy and index != len(raw_segments) - 1:
            raise RouteConfigError(
                f"invalid Path {path!r} ({where}): a greedy variable must be the last segment"
            )
        segments.append(_Segment(_GREEDY if greedy else _VARIABLE, name))
    return tuple(segments)


def _compile_route(route: Route) -> _CompiledRoute:
    if route.path == DEFAULT_ROUTE_KEY:
        return _CompiledRoute(route, ())
    return _CompiledRoute(route, _compile_path(route.path, f"function {route.function_logical_id}"))


def local_api_id(api_id_logical: str) -> str:
    """Return a stable 10-character API id for a logical id, shaped like an API Gateway id."""
    return hashlib.sha256(api_id_logical.encode()).hexdigest()[:10]


class LocalHttpApi:
    """Serve SAM HttpApi routes on 127.0.0.1 as API Gateway HTTP API payload format 2.0 events.

    ``invoke(function_logical_id, event)`` runs the handler and returns its result. A route
    with a Lambda authorizer invokes the authorizer's function through ``invoke`` first, as
    API Gateway does. For routes protected by another authorizer (``AWS_IAM``, JWT),
    ``authorize(route, event)`` returns the ``requestContext.authorizer`` value, or None to
    reject the request with 401. Without ``authorize``, those routes always respond with 403.
    ``trust_forwarded_for`` takes ``sourceIp`` from the first X-Forwarded-For address, so that
    tests and benchmarks can simulate several clients. Never enable it for a server that others can reach.
    ``pages(request)`` may answer a request before routing (the signup page's static files),
    or return None to pass it on to the routes.

    NOTE: CorsConfiguration is not emulated, so browser preflight requests get 404.
    """

    def __init__(
        self,
        routes: Iterable[Route],
        invoke: InvokeFunction,
        host: str = LOOPBACK_HOST,
        port: int = 3000,
        stage: str = DEFAULT_STAGE,
        authorize: AuthorizeFunction | None = None,
        trust_forwarded_for: bool = False,
        pages: PagesFunction | None = None,
    ) -> None:
        if host != LOOPBACK_HOST:
            raise ValueError(f"invalid host {host!r}: the local HTTP API binds to 127.0.0.1 only")
        if not 0 <= port <= 65535:
            raise ValueError(f"invalid port {port}: expected 0 (any free port) to 65535")
        if stage != DEFAULT_STAGE and not _STAGE_NAME.fullmatch(stage):
            raise ValueError(
                f"invalid stage {stage!r}: expected '$default' or 1-128 letters, digits, '-' or '_'"
            )

        self._routes = [_compile_route(route) for route in routes]
        keys = [route.route.route_key for route in self._routes]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"duplicate route keys {duplicates}: one server cannot serve both")
        self._routes.sort(key=_CompiledRoute.rank)

        self._invoke = invoke
        self._authorize = authorize
        self._pages = pages
        self._host = host
        self._port = port
        self._stage = stage
        self._trust_forwarded_for = trust_forwarded_for
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # (authorizer name, identity source values) -> (monotonic expiry, context or None to deny)
        self._authorizer_results: dict[
            tuple[str, tuple[str, ...]], tuple[float, dict[str, Any] | None]
        ] = {}
        self._authorizer_lock = threading.Lock()

    @property
    def stage(self) -> str:
        return self._stage

    @property
    def server_url(self) -> str:
        """Root URL of the running server, for example ``http://127.0.0.1:3000``."""
        if self._server is None:
            raise RuntimeError("local HTTP API is not running: call start() first")
        return f"http://{self._host}:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """Invoke URL that route paths are appended to, including a named stage like API Gateway."""
        if self._stage == DEFAULT_STAGE:
            return self.server_url
        return f"{self.server_url}/{self._stage}"

    def start(self) -> None:
        """Bind the port and serve requests from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("local HTTP API is already running")
        self._server = _Server((self._host, self._port), _RequestHandler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name="local-http-api",
            daemon=True,
        )
        self._thread.start()
        logger.info(
            "local http api started",
            extra={"port": self._server.server_address[1], "stage": self._stage},
        )

    def stop(self) -> None:
        """Stop serving and release the port. Calling it on a stopped server does nothing."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None
        logger.info("local http api stopped", extra={"stage": self._stage})

    def __enter__(self) -> LocalHttpApi:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def handle(self, request: IncomingRequest) -> OutgoingResponse:
        """Route one request, invoke its function and map the result like API Gateway."""
        request_id = _new_request_id()
        page = self._pages(request) if self._pages is not None else None
        if page is not None:
            return self._finish(request, None, request_id, page)
        path, _, raw_query = request.target.partition("?")
        route_path = self._strip_stage(path)
        found = self._find_route(request.method, route_path) if route_path is not None else None
        if found is None:
            return self._finish(request, None, request_id, _message_response(404, "Not Found"))
        compiled, path_parameters = found
        route = compiled.route

        event = self._build_event(request, route, path, raw_query, path_parameters, request_id)
        if route.lambda_authorizer is not None:
            denied = self._run_lambda_authorizer(route.lambda_authorizer, route, event, request_id)
            if denied is not None:
                return self._finish(request, route, request_id, denied)
        elif route.authorizer is not None:
            denied = self._check_authorization(route, event, request_id)
            if denied is not None:
                return self._finish(request, route, request_id, denied)

        try:
            result = self._invoke(route.function_logical_id, event)
        except Exception as exc:
            logger.error(
                "function invocation failed",
                extra={
                    "request_id": request_id,
                    "function": route.function_logical_id,
                    "error_type": type(exc).__name__,
                },
            )
            return self._finish(request, route, request_id, _server_error())

        try:
            response = _map_function_result(result)
        except _InvalidFunctionResponse as exc:
            logger.error(
                "invalid function response",
                extra={
                    "request_id": request_id,
                    "function": route.function_logical_id,
                    "field": exc.field,
                },
            )
            response = _server_error()
        return self._finish(request, route, request_id, response)

    def reject(self, request: IncomingRequest, status: int, message: str) -> OutgoingResponse:
        """Respond to a request that failed before routing (bad framing, body too large)."""
        response = _message_response(status, message)
        return self._finish(request, None, _new_request_id(), response)

    def _strip_stage(self, path: str) -> str | None:
        if self._stage == DEFAULT_STAGE:
            return path
        prefix = f"/{self._stage}"
        if path == prefix:
            return "/"
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
        return None

    def _find_route(self, method: str, path: str) -> tuple[_CompiledRoute, dict[str, str]] | None:
        path_segments = path[1:].split("/") if path.startswith("/") else [path]
        for compiled in self._routes:
            if not compiled.matches_method(method):
                continue
            if compiled.route.path == DEFAULT_ROUTE_KEY:
                return compiled, {}
            parameters = compiled.match_path(path_segments)
            if parameters is not None:
                return compiled, parameters
        return None

    def _check_authorization(
        self, route: Route, event: dict[str, Any], request_id: str
    ) -> OutgoingResponse | None:
        if self._authorize is None:
            return _message_response(403, "Forbidden")
        try:
            context = self._authorize(route, event)
        except Exception as exc:
            logger.error(
                "authorizer failed",
                extra={"request_id": request_id, "error_type": type(exc).__name__},
            )
            return _server_error()
        if context is None:
            return _message_response(401, "Unauthorized")
        event["requestContext"]["authorizer"] = context
        return None

    def _run_lambda_authorizer(
        self,
        authorizer: LambdaAuthorizer,
        route: Route,
        event: dict[str, Any],
        request_id: str,
    ) -> OutgoingResponse | None:
        """Invoke the route's Lambda authorizer as API Gateway does; None lets the request through.

        A missing or empty identity source gets 401 without an invocation, a denial 403, and
        an authorizer that fails or returns another shape 500. An allowed request's event gets
        the authorizer's context as `requestContext.authorizer.lambda`. Results are cached
        per identity source values for the authorizer's TTL.
        """
        values = _identity_values(authorizer, event)
        if values is None:
            return _message_response(401, "Unauthorized")

        cache_key = (authorizer.name, values)
        with self._authorizer_lock:
            cached = self._authorizer_results.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            context = cached[1]
        else:
            try:
                context = self._invoke_authorizer(authorizer, route, event, values)
            except _InvalidAuthorizerResponse as exc:
                logger.error(
                    "authorizer failed",
                    extra={
                        "request_id": request_id,
                        "function": authorizer.function_logical_id,
                        "error_type": exc.error_type,
                    },
                )
                return _server_error()
            if authorizer.result_ttl_seconds > 0:
                with self._authorizer_lock:
                    expires = time.monotonic() + authorizer.result_ttl_seconds
                    self._authorizer_results[cache_key] = (expires, context)

        if context is None:
            return _message_response(403, "Forbidden")
        event["requestContext"]["authorizer"] = {"lambda": context}
        return None

    def _invoke_authorizer(
        self,
        authorizer: LambdaAuthorizer,
        route: Route,
        event: dict[str, Any],
        values: tuple[str, ...],
    ) -> dict[str, Any] | None:
        """Return the context of an allowing simple response, or None for a denial."""
        context = event["requestContext"]
        method = context["http"]["method"]
        route_path = self._strip_stage(event["rawPath"]) or event["rawPath"]
        authorizer_event: dict[str, Any] = {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{context['apiId']}/"
            f"{self._stage}/{method}{route_path}",
            "identitySource": list(values),
            "routeKey": route.route_key,
            "rawPath": event["rawPath"],
            "rawQueryString": event["rawQueryString"],
        }
        # The authorizer gets the request without its body.
        for name in ("cookies", "headers", "queryStringParameters", "requestContext"):
            if name in event:
                authorizer_event[name] = event[name]
        if "pathParameters" in event:
            authorizer_event["pathParameters"] = event["pathParameters"]

        try:
            result = self._invoke(authorizer.function_logical_id, authorizer_event)
        except Exception as exc:
            raise _InvalidAuthorizerResponse(type(exc).__name__) from exc
        if not isinstance(result, dict) or not isinstance(result.get("isAuthorized"), bool):
            raise _InvalidAuthorizerResponse("InvalidResponse")
        if not result["isAuthorized"]:
            return None
        allowed = result.get("context") or {}
        if not isinstance(allowed, dict):
            raise _InvalidAuthorizerResponse("InvalidResponse")
        return allowed

    def _build_event(
        self,
        request: IncomingRequest,
        route: Route,
        raw_path: str,
        raw_query: str,
        path_parameters: Mapping[str, str],
        request_id: str,
    ) -> dict[str, Any]:
        """Build the payload format 2.0 event in the field order of the API Gateway docs."""
        now = datetime.now(UTC)
        headers, cookies = _event_headers(request.headers)
        source_ip = self._source_ip(request, headers)
        headers["x-forwarded-for"] = (
            f"{headers['x-forwarded-for']}, {request.client_ip}"
            if "x-forwarded-for" in headers
            else request.client_ip
        )
        headers["x-forwarded-port"] = str(self._port_number())
        headers["x-forwarded-proto"] = "http"
        headers["x-amzn-trace-id"] = f"Root=1-{int(now.timestamp()):08x}-{secrets.token_hex(12)}"
        domain_name = headers.get("host", f"{self._host}:{self._port_number()}")

        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": raw_path,
            "rawQueryString": raw_query,
        }
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        query = _query_parameters(raw_query)
        if query:
            event["queryStringParameters"] = query
        event["requestContext"] = {
            "accountId": ACCOUNT_ID,
            "apiId": local_api_id(route.api_id_logical),
            "domainName": domain_name,
            "domainPrefix": domain_name.split(":", 1)[0].split(".", 1)[0],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": request.protocol,
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": self._stage,
            "time": _format_request_time(now),
            "timeEpoch": int(now.timestamp() * 1000),
        }

        body, is_base64 = _event_body(request.body, headers.get("content-type"))
        if body is not None:
            event["body"] = body
        if path_parameters:
            event["pathParameters"] = dict(path_parameters)
        event["isBase64Encoded"] = is_base64
        return event

    def _source_ip(self, request: IncomingRequest, headers: Mapping[str, str]) -> str:
        if not self._trust_forwarded_for or "x-forwarded-for" not in headers:
            return request.client_ip
        first = headers["x-forwarded-for"].split(",", 1)[0].strip()
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            return request.client_ip

    def _port_number(self) -> int:
        return self._server.server_address[1] if self._server is not None else self._port

    def _finish(
        self,
        request: IncomingRequest,
        route: Route | None,
        request_id: str,
        response: OutgoingResponse,
    ) -> OutgoingResponse:
        # Method, route key, status and request id only: paths, query strings, headers
        # and bodies can contain personal data.
        logger.info(
            "http request completed",
            extra={
                "http_method": request.method,
                "route_key": route.route_key if route is not None else None,
                "status_code": response.status,
                "request_id": request_id,
            },
        )
        headers = [*response.headers, ("apigw-requestid", request_id)]
        return OutgoingResponse(response.status, headers, response.body)


class _InvalidAuthorizerResponse(Exception):
    def __init__(self, error_type: str) -> None:
        super().__init__(f"authorizer failed: {error_type}")
        self.error_type = error_type


def _identity_values(
    authorizer: LambdaAuthorizer, event: Mapping[str, Any]
) -> tuple[str, ...] | None:
    """Return the values of the authorizer's identity sources, or None when one is missing or empty."""
    headers = event.get("headers") or {}
    query = event.get("queryStringParameters") or {}
    values: list[str] = []
    for location, name in authorizer.identity_sources:
        value = headers.get(name) if location == "header" else query.get(name)
        if not value:
            return None
        values.append(str(value))
    return tuple(values)


def _event_headers(raw_headers: Sequence[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Lower-case header names and join repeats with commas. Cookie moves into a cookie list."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in raw_headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    return headers, cookies


def _query_parameters(raw_query: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters


def _event_body(body: bytes, content_type: str | None) -> tuple[str | None, bool]:
    """Return the event's body and isBase64Encoded: text media types as text, the rest base64."""
    if not body:
        return None, False
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type.startswith("text/") or media_type in TEXT_MEDIA_TYPES:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            # Base64 keeps invalid UTF-8 lossless.
            pass
    return base64.b64encode(body).decode("ascii"), True


def _format_request_time(moment: datetime) -> str:
    # Built by hand because strftime's %b follows the process locale.
    month = _MONTHS[moment.month - 1]
    return f"{moment.day:02d}/{month}/{moment.year}:{moment:%H:%M:%S} +0000"


def _new_request_id() -> str:
    # HTTP API request ids look like "JKJaXmPLvHcESHA=": base64 of 10 random bytes.
    return base64.b64encode(secrets.token_bytes(10)).decode("ascii")


class _InvalidFunctionResponse(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(f"invalid function response field {field!r}")
        self.field = field


def _map_function_result(result: Any) -> OutgoingResponse:
    """Map a function result to HTTP like payload format 2.0 does.

    A dict with ``statusCode`` is a full response. Any other JSON value is returned as
    the body of a 200 ``application/json`` response.
    """
    if not isinstance(result, dict) or "statusCode" not in result:
        try:
            body = json.dumps(result, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise _InvalidFunctionResponse("body") from exc
        return OutgoingResponse(200, [("content-type", "application/json")], body)

    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise _InvalidFunctionResponse("statusCode")
    headers = _response_headers(result.get("headers"))
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(cookie, str) for cookie in cookies):
        raise _InvalidFunctionResponse("cookies")
    headers.extend(("set-cookie", cookie) for cookie in cookies)
    return OutgoingResponse(status, headers, _response_body(result))


def _response_headers(raw: Any) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise _InvalidFunctionResponse("headers")
    headers: list[tuple[str, str]] = []
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, str | int | float | bool):
            raise _InvalidFunctionResponse("headers")
        if any(character in f"{name}{value}" for character in "\r\n"):
            raise _InvalidFunctionResponse("headers")
        # The server computes the framing headers itself.
        if name.lower() in ("content-length", "transfer-encoding", "connection"):
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        headers.append((name, text))
    return headers


def _response_body(result: Mapping[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise _InvalidFunctionResponse("body")
    if result.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise _InvalidFunctionResponse("body") from exc
    return body.encode("utf-8")


def _message_response(status: int, message: str) -> OutgoingResponse:
    body = json.dumps({"message": message}, separators=(",", ":")).encode("utf-8")
    return OutgoingResponse(status, [("content-type", "application/json")], body)


def _server_error() -> OutgoingResponse:
    return _message_response(500, "Internal Server Error")


class _RequestFramingError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Listen backlog. socketserver's default of 5 made the kernel drop or reset connections
    # when 40 clients connected at once while handler threads held the GIL. API Gateway
    # accepts any number of concurrent clients, so this server queues far more than a test or
    # bench opens at once. Linux caps it at net.core.somaxconn.
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        api: LocalHttpApi,
    ) -> None:
        self.api = api
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints the traceback to stderr, and exception messages can contain
        # personal data, so only the exception type is logged.
        error = sys.exception()
        logger.error(
            "http connection failed",
            extra={"error_type": type(error).__name__ if error is not None else None},
        )


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "IDSentryLocalHttpApi"
    # Socket timeout in seconds, so that a stalled client cannot hold a thread forever.
    timeout = 60
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # The defaults write the request line, query string included, to stderr.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        # The arguments can contain the request line, so only the fact is logged.
        logger.warning("http connection error")

    def _serve(self) -> None:
        api = self.server.api
        raw_headers = list(self.headers.items())
        request = IncomingRequest(
            method=self.command,
            target=self.path,
            protocol=self.request_version,
            headers=raw_headers,
            body=b"",
            client_ip=self.client_address[0],
        )

        try:
            body = self._read_body()
        except _RequestFramingError as exc:
            self.close_connection = True
            self._write(api.reject(request, exc.status, exc.message))
            return

        self._write(api.handle(replace(request, body=body)))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _RequestFramingError(400, "Bad Request") from None
        if length < 0:
            raise _RequestFramingError(400, "Bad Request")
        if length > MAX_BODY_BYTES:
            self._drain(length)
            raise _RequestFramingError(413, "Request Entity Too Large")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _RequestFramingError(400, "Bad Request")
        return body

    def _read_chunked_body(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(_READ_CHUNK_BYTES)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _RequestFramingError(400, "Bad Request") from None
            if size < 0:
                raise _RequestFramingError(400, "Bad Request")
            if size == 0:
                self._skip_trailers()
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _RequestFramingError(413, "Request Entity Too Large")
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise _RequestFramingError(400, "Bad Request")
            chunks.append(chunk)
            self.rfile.readline(_READ_CHUNK_BYTES)

    def _skip_trailers(self) -> None:
        while self.rfile.readline(_READ_CHUNK_BYTES) not in (b"\r\n", b"\n", b""):
            pass

    def _drain(self, length: int) -> None:
        """Read and discard an oversized body so the client receives the 413 instead of a reset."""
        remaining = min(length, _DRAIN_LIMIT_BYTES)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, _READ_CHUNK_BYTES))
            if not chunk:
                return
            remaining -= len(chunk)

    def _write(self, response: OutgoingResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        # 204 and 304 responses carry no body, and a HEAD response only announces its length.
        bodiless_status = response.status in (204, 304)
        if not bodiless_status:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not bodiless_status and self.command != "HEAD":
            self.wfile.write(response.body)
