"""Parse API Gateway HTTP API payload format 2.0 events and build their responses."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from idsentry import jsontext

DEFAULT_STAGE = "$default"

_LANGUAGE_TAG = re.compile(r"\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_QUALITY = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")


def _frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


class RequestBodyError(ValueError):
    """A request body that cannot be used: missing, not UTF-8, not JSON, or not a JSON object.

    ``code`` is one of ``missing``, ``invalid_encoding``, ``invalid_json`` and
    ``not_an_object``, so that callers can pick a localised message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.field = "body"
        self.code = code


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP API request as a handler receives it, with ``path`` free of any stage prefix."""

    method: str
    route_key: str
    path: str
    path_parameters: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    source_ip: str
    request_id: str
    stage: str
    cookies: tuple[str, ...] = ()
    authorizer: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def header(self, name: str) -> str | None:
        """Return a header value by case-insensitive name, or None when absent."""
        return self.headers.get(name.lower())

    def json(self) -> dict[str, Any]:
        """Decode the body as a JSON object, or raise RequestBodyError when it is not one."""
        if not self.body:
            raise RequestBodyError("missing", "invalid body: the request body is empty")
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestBodyError("invalid_encoding", "invalid body: not UTF-8 text") from None
        try:
            value = jsontext.loads(text, parse_constant=_reject_constant)
        except ValueError:
            raise RequestBodyError("invalid_json", "invalid body: not valid JSON") from None
        if not isinstance(value, dict):
            raise RequestBodyError("not_an_object", "invalid body: expected a JSON object")
        return value


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, although Python's decoder accepts them by default.
    raise ValueError(f"invalid JSON constant {name}")


def parse_http_event(event: Mapping[str, Any]) -> HttpRequest:
    """Build an HttpRequest from an HTTP API payload format 2.0 event.

    Works for the ``$default`` stage and for named stages, whose ``rawPath`` starts with
    ``/{stage}``. Raise ValueError naming the field for any other event shape or for a
    body flagged as base64 that does not decode.
    """
    version = event.get("version")
    if version != "2.0":
        raise ValueError(
            f"invalid event: version is {version!r}, expected '2.0' "
            "(an API Gateway HTTP API event with payload format 2.0)"
        )
    context = _mapping(event, "requestContext")
    http = _mapping(context, "http", "requestContext.http")
    raw_path = _string(event, "rawPath")
    stage = _string(context, "stage", "requestContext.stage")

    headers = {name.lower(): value for name, value in _string_values(event, "headers").items()}
    body = _decode_body(event)
    return HttpRequest(
        method=_string(http, "method", "requestContext.http.method").upper(),
        route_key=_string(event, "routeKey"),
        path=_strip_stage(raw_path, stage),
        path_parameters=_frozen(_string_values(event, "pathParameters")),
        query=_frozen(_string_values(event, "queryStringParameters")),
        headers=_frozen(headers),
        body=body,
        source_ip=_string(http, "sourceIp", "requestContext.http.sourceIp"),
        request_id=_string(context, "requestId", "requestContext.requestId"),
        stage=stage,
        cookies=tuple(str(cookie) for cookie in event.get("cookies") or ()),
        authorizer=_frozen(_optional_mapping(context, "authorizer")),
    )


def _strip_stage(raw_path: str, stage: str) -> str:
    # A request through a custom domain has no stage in rawPath, so strip only a real prefix.
    if stage == DEFAULT_STAGE:
        return raw_path
    prefix = f"/{stage}"
    if raw_path == prefix:
        return "/"
    if raw_path.startswith(prefix + "/"):
        return raw_path[len(prefix) :]
    return raw_path


def _decode_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise ValueError(f"invalid event: body must be a string, got {type(body).__name__}")
    if event.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            raise ValueError(
                "invalid event: body is flagged isBase64Encoded but is not base64"
            ) from None
    return body.encode("utf-8")


def _mapping(source: Mapping[str, Any], key: str, name: str | None = None) -> Mapping[str, Any]:
    value = source.get(key)
    if not isinstance(value, Mapping):
        raise ValueError(f"invalid event: {name or key} is missing or not an object")
    return value


def _optional_mapping(source: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = source.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"invalid event: {key} must be an object")
    return value


def _string_values(source: Mapping[str, Any], key: str) -> dict[str, str]:
    return {str(name): str(value) for name, value in _optional_mapping(source, key).items()}


def _string(source: Mapping[str, Any], key: str, name: str | None = None) -> str:
    value = source.get(key)
    if not isinstance(value, str):
        raise ValueError(f"invalid event: {name or key} is missing or not a string")
    return value


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Build a payload format 2.0 response with a UTF-8 JSON body.

    Responses carry ``cache-control: no-store`` by default because they contain personal
    state. ``headers`` override the defaults by case-insensitive name.
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"invalid status {status!r}: expected an integer from 100 to 599")
    merged = {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-store",
    }
    for name, value in (headers or {}).items():
        merged[name.lower()] = value
    return {
        "statusCode": status,
        "headers": merged,
        "body": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def accept_language(headers: Mapping[str, str]) -> list[str]:
    """Return the language tags of an Accept-Language header, highest q-value first.

    Ties keep the header's order. Parts with a malformed tag or q-value are skipped, and
    so are tags with ``q=0``, which means "not acceptable" (RFC 9110, section 12.5.4).
    """
    value = next((text for name, text in headers.items() if name.lower() == "accept-language"), "")
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(value.split(",")):
        tag, *parameters = (piece.strip() for piece in part.split(";"))
        if not _LANGUAGE_TAG.fullmatch(tag):
            continue
        quality = _quality(parameters)
        if quality is None or quality == 0:
            continue
        weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def _quality(parameters: list[str]) -> float | None:
    """Return the q-value of one Accept-Language part, 1.0 by default, or None if malformed."""
    if not parameters:
        return 1.0
    if len(parameters) > 1:
        return None
    name, _, text = parameters[0].partition("=")
    if name.strip().lower() != "q" or not _QUALITY.fullmatch(text.strip()):
        return None
    return float(text)
