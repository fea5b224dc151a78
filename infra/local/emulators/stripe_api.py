"""Stripe API conventions the local shim speaks: errors, form encoding, typed parameters and lists."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from idsentry.money import UnknownCurrencyError, exponent
from infra.local.emulators.base import Request, Response, json_response

# Stripe's metadata limits (https://docs.stripe.com/api/metadata): 50 keys, keys up to 40
# characters, values up to 500 characters.
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 10
ID_ALPHABET: Final = string.ascii_letters + string.digits
FORM_KEY_PATTERN = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
INTEGER_PATTERN = re.compile(r"-?[0-9]{1,18}")
ID_SEGMENT = r"[A-Za-z0-9_]+"
CREATED_OPERATORS: Final = ("gt", "gte", "lt", "lte")

# A callable that stores and sends an event of a type with a copy of an object as `data.object`,
# then returns the event.
Emit = Callable[[str, Mapping[str, Any]], dict[str, Any]]
# A route handler gets the request, its parameters and the ids named in its path.
RouteHandler = Callable[[Request, "Params", Mapping[str, str]], dict[str, Any] | None]


def new_id(prefix: str, length: int = 24) -> str:
    """Return a Stripe-style id such as `price_1a2B...`, random enough never to repeat locally."""
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


# ---------------------------------------------------------------------------------------------
# Errors in Stripe's shape


class StripeApiError(Exception):
    """An error returned to the client as Stripe does: `{"error": {"type", "message", ...}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type

    def response(self) -> Response:
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
        return json_response(self.status, {"error": error})


class LocalStripeError(StripeApiError):
    """A call from the shim to localstripe returned a status other than 200.

    A client error keeps the `type` and `code` of localstripe's error body, so that a declined
    card stays a `card_error` with code `card_declined`.
    """

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        detail: str,
        error: Mapping[str, Any] | None = None,
    ) -> None:
        client_error = 400 <= status < 500
        error = error or {}
        code = error.get("code") if client_error else None
        error_type = error.get("type") if client_error else "api_error"
        super().__init__(
            status if client_error else 502,
            f"localstripe rejected {method} {path}: HTTP {status} {detail}",
            code=code if isinstance(code, str) else None,
            error_type=error_type if isinstance(error_type, str) else "invalid_request_error",
        )
        self.localstripe_status = status


def unknown_parameter(name: str) -> StripeApiError:
    return StripeApiError(400, f"Received unknown parameter: {name}", param=name)


def invalid_parameter(name: str, expected: str) -> StripeApiError:
    return StripeApiError(400, f"Invalid {name}: must be {expected}", param=name)


def missing_parameter(name: str) -> StripeApiError:
    return StripeApiError(
        400, f"Missing required param: {name}.", param=name, code="parameter_missing"
    )


def resource_missing(kind: str, object_id: str, param: str | None = None) -> StripeApiError:
    return StripeApiError(
        404 if param is None else 400,
        f"No such {kind}: '{object_id}'",
        param=param or "id",
        code="resource_missing",
    )


def unsupported_parameter(name: str) -> StripeApiError:
    return StripeApiError(
        400, f"The local Stripe shim does not support the parameter {name}.", param=name
    )


def unrecognized_route(method: str, path: str) -> StripeApiError:
    return StripeApiError(
        404,
        f"Unrecognized request URL ({method}: {path}). The local Stripe shim does not "
        "implement this route.",
    )


# ---------------------------------------------------------------------------------------------
# Stripe's form encoding: `a[b][0][c]=v` and `a[]=v`


def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build nested parameters from form pairs, as Stripe reads them.

    Bracketed keys become nested hashes, `name[]` appends to a list, and a hash whose keys are
    all digits (`line_items[0][price]`) becomes a list ordered by index. Raises StripeApiError
    naming the key when a key is malformed or set twice.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = FORM_KEY_PATTERN.fullmatch(key)
        if match is None:
            raise StripeApiError(400, f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        _insert_form_value(root, path, value, key)
    converted = _lists_from_indexes(root)
    assert isinstance(converted, dict)
    return converted


def _insert_form_value(root: dict[str, Any], path: list[str], value: str, key: str) -> None:
    node = root
    for position, segment in enumerate(path[:-1]):
        if path[position + 1] == "":
            # Only a trailing `[]` is accepted: `name[]` or `name[sub][]`.
            if position + 2 != len(path):
                raise StripeApiError(400, f"Invalid parameter name: {key}", param=key)
            values = node.setdefault(segment, [])
            if not isinstance(values, list):
                raise StripeApiError(400, f"Parameter {key} conflicts with another", param=key)
            values.append(value)
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise StripeApiError(400, f"Parameter {key} conflicts with another", param=key)
        node = child

    last = path[-1]
    if last == "" or last in node:
        raise StripeApiError(400, f"Parameter {key} is set more than once", param=key)
    node[last] = value


def _lists_from_indexes(node: Any) -> Any:
    if isinstance(node, list):
        return [_lists_from_indexes(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {name: _lists_from_indexes(value) for name, value in node.items()}
    if converted and all(name.isdigit() for name in converted):
        return [converted[name] for name in sorted(converted, key=int)]
    return converted


def encode_form(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested parameters into form pairs the way stripe-python encodes them."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        key = f"{prefix}[{name}]" if prefix else str(name)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend(encode_form(value, key))
        elif isinstance(value, list | tuple):
            pairs.extend(encode_form({str(i): item for i, item in enumerate(value)}, key))
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        else:
            pairs.append((key, str(value)))
    return pairs


def request_params(request: Request) -> dict[str, Any]:
    """Return the request's parameters: the query for GET and DELETE, else the form body."""
    if request.method in ("GET", "DELETE"):
        return parse_form(query_pairs(request))

    content_type = request.headers.get("Content-Type") or ""
    if content_type.startswith("application/json"):
        try:
            document = json.loads(request.body.decode("utf-8")) if request.body else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StripeApiError(400, "Invalid JSON request body") from exc
        if not isinstance(document, dict):
            raise StripeApiError(400, "The JSON request body must be an object")
        return document
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StripeApiError(400, "The request body is not valid UTF-8") from exc
    return parse_form(parse_qsl(text, keep_blank_values=True))


def query_pairs(request: Request) -> list[tuple[str, str]]:
    return [(name, value) for name, values in request.query.items() for value in values]


class Params:
    """Typed reads of one level of nested request parameters, with errors naming the field."""

    def __init__(self, values: Mapping[str, Any], prefix: str = "") -> None:
        self.values = values
        self.prefix = prefix

    def label(self, name: str) -> str:
        return f"{self.prefix}[{name}]" if self.prefix else name

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        known = set(allowed)
        for name in self.values:
            if name not in known:
                raise unknown_parameter(self.label(name))

    def text(self, name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise missing_parameter(self.label(name))
            return None
        if not isinstance(value, str):
            raise invalid_parameter(self.label(name), "a string")
        if len(value) > max_length:
            raise invalid_parameter(self.label(name), f"at most {max_length} characters")
        return value

    def required_text(self, name: str, *, max_length: int = 5000) -> str:
        value = self.text(name, required=True, max_length=max_length)
        assert value is not None
        return value

    def choice(self, name: str, choices: Iterable[str], *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        allowed = list(choices)
        if value is not None and value not in allowed:
            raise invalid_parameter(self.label(name), "one of " + ", ".join(allowed))
        return value

    def integer(self, name: str, *, minimum: int, required: bool = False) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise missing_parameter(self.label(name))
            return None
        if isinstance(value, bool):
            raise invalid_parameter(self.label(name), "an integer")
        if isinstance(value, str):
            if INTEGER_PATTERN.fullmatch(value) is None:
                raise invalid_parameter(self.label(name), "an integer")
            value = int(value)
        if not isinstance(value, int) or value < minimum:
            raise invalid_parameter(self.label(name), f"an integer of at least {minimum}")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value is True
        if value not in ("true", "false"):
            raise invalid_parameter(self.label(name), "true or false")
        return bool(value == "true")

    def child(self, name: str) -> Params | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, Mapping):
            raise invalid_parameter(self.label(name), "a hash")
        return Params(value, self.label(name))

    def children(self, name: str) -> list[Params] | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise invalid_parameter(self.label(name), "an array of hashes")
        return [Params(item, f"{self.label(name)}[{index}]") for index, item in enumerate(value)]

    def texts(self, name: str, *, max_items: int = 100) -> list[str] | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid_parameter(self.label(name), "an array of strings")
        if len(value) > max_items:
            raise invalid_parameter(self.label(name), f"an array of at most {max_items} strings")
        return list(value)

    def metadata(self, name: str = "metadata") -> dict[str, str]:
        """Read Stripe metadata. A key posted with an empty value is left out, because Stripe unsets it."""
        value = self.values.get(name)
        if value is None or value == "":
            return {}
        label = self.label(name)
        if not isinstance(value, Mapping):
            raise invalid_parameter(label, "a hash of strings")
        if len(value) > MAX_METADATA_KEYS:
            raise invalid_parameter(label, f"a hash of at most {MAX_METADATA_KEYS} keys")
        metadata: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(item, str | int) or isinstance(item, bool):
                raise invalid_parameter(f"{label}[{key}]", "a string")
            if len(key) > MAX_METADATA_KEY_LENGTH:
                raise invalid_parameter(
                    f"{label}[{key}]", f"a key of at most {MAX_METADATA_KEY_LENGTH} characters"
                )
            if len(str(item)) > MAX_METADATA_VALUE_LENGTH:
                raise invalid_parameter(
                    f"{label}[{key}]", f"at most {MAX_METADATA_VALUE_LENGTH} characters"
                )
            if str(item):
                metadata[str(key)] = str(item)
        return metadata


def read_expand(params: Params, supported: Iterable[str]) -> list[str]:
    """Return the `expand` paths, rejecting any the shim cannot expand."""
    paths = params.texts("expand") or []
    allowed = set(supported)
    for path in paths:
        if path not in allowed:
            raise StripeApiError(
                400,
                f"expand of {path!r} is not supported by the local Stripe shim",
                param="expand",
            )
    return paths


def read_http_url(params: Params, name: str) -> str | None:
    value = params.text(name, max_length=5000)
    if value is None:
        return None
    split = urlsplit(value)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise invalid_parameter(params.label(name), "an absolute http or https URL")
    return value


def read_currency(params: Params, name: str = "currency") -> str:
    currency = params.required_text(name, max_length=3).lower()
    try:
        exponent(currency)
    except UnknownCurrencyError as exc:
        raise invalid_parameter(params.label(name), "a currency code Stripe supports") from exc
    return currency


def api_key_from(headers: Message) -> str | None:
    """Return the secret key from Bearer or Basic authorization, as localstripe accepts it."""
    scheme, _, credential = (headers.get("Authorization") or "").partition(" ")
    key = ""
    if scheme == "Bearer":
        key = credential.strip()
    elif scheme == "Basic":
        try:
            key = base64.b64decode(credential, validate=True).decode("utf-8").split(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return key if key.startswith("sk_") and len(key) > len("sk_") else None


def paginate(
    objects: Sequence[dict[str, Any]], params: Params, url: str, kind: str
) -> dict[str, Any]:
    """Return one page of `objects` (already newest first) as a Stripe list object."""
    limit = params.integer("limit", minimum=1)
    limit = DEFAULT_LIST_LIMIT if limit is None else min(limit, MAX_LIST_LIMIT)
    starting_after = params.text("starting_after")
    ending_before = params.text("ending_before")
    if starting_after is not None and ending_before is not None:
        raise StripeApiError(
            400,
            "You may only specify one of starting_after and ending_before.",
            param="ending_before",
        )

    ids = [str(item["id"]) for item in objects]
    if starting_after is not None:
        if starting_after not in ids:
            raise resource_missing(kind, starting_after, "starting_after")
        start = ids.index(starting_after) + 1
        page = list(objects[start : start + limit])
        has_more = start + limit < len(objects)
    elif ending_before is not None:
        if ending_before not in ids:
            raise resource_missing(kind, ending_before, "ending_before")
        end = ids.index(ending_before)
        page = list(objects[max(0, end - limit) : end])
        has_more = end - limit > 0
    else:
        page = list(objects[:limit])
        has_more = limit < len(objects)
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def read_created(params: Params) -> Callable[[int], bool]:
    """Return a test of `created` times from the list filter `created` (an integer or gt/gte/lt/lte)."""
    value = params.values.get("created")
    if value is None or value == "":
        return lambda _: True
    if not isinstance(value, Mapping):
        exact = params.integer("created", minimum=0)
        return lambda created: created == exact

    bounds = Params(value, "created")
    bounds.reject_unknown(CREATED_OPERATORS)
    limits = {name: bounds.integer(name, minimum=0) for name in CREATED_OPERATORS}

    def matches(created: int) -> bool:
        gt, gte, lt, lte = (limits[name] for name in CREATED_OPERATORS)
        return (
            (gt is None or created > gt)
            and (gte is None or created >= gte)
            and (lt is None or created < lt)
            and (lte is None or created <= lte)
        )

    return matches


@dataclass(frozen=True)
class ApiRoute:
    """A Stripe API route that the shim serves itself; `name` is the path as it is logged."""

    method: str
    pattern: re.Pattern[str]
    name: str
    handler: RouteHandler


def api_route(method: str, path: str, handler: RouteHandler) -> ApiRoute:
    """Build a route from a path whose `<name>` segments become ids passed to the handler."""
    pattern = re.compile(re.sub(r"<([a-z_]+)>", rf"(?P<\1>{ID_SEGMENT})", path))
    return ApiRoute(method, pattern, path, handler)
