"""One cold-start measurement in a fresh process: a Lambda function, its baseline or boto3 alone.

Run as `python -P child.py SPEC_PATH RESULT_PATH`. The spec (JSON) names the mode and its
inputs, and the result (JSON) contains the elapsed time, the AWS calls made, the other HTTP
requests (to the Stripe, Twilio and HIBP emulators) and the third-party modules loaded. This
file imports only the standard library at module level, so that nothing else is loaded
before the timer starts. The bench process imports `CallRecorder` from it too.

Every mode starts its timer before it installs the recorders and imports anything else, and
stops it after the last response, so the recorders' own cost is inside every figure. A
baseline spec may also name provider requests to send again after the AWS calls, and one SMS
to send through the twilio SDK, because the notifier's first request sends one.
"""

from __future__ import annotations

import base64
import gc
import importlib
import json
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BYTES_KEY = "__base64_bytes__"
# Top-level names that are ours or the runtime's, never third-party packages.
OWN_TOP_LEVEL = frozenset({"__main__", "app", "idsentry", "child"})
# Written to stderr when the timer starts, so that the bench counts only the `-X importtime`
# lines after it.
TIMER_STARTED = b"bench: timer started\n"
# A JSON spec cannot carry bytes, so a replayed parameter of type blob (a KMS ciphertext) is
# written as {BYTES_KEY: "<base64>"}.


class CallRecorder:
    """Record every AWS API call of botocore clients created while it is installed.

    `install()` wraps `botocore.session.Session.create_client`, through which every boto3 and
    botocore client is built, and registers three event handlers on each new client.
    `before-parameter-build` names the operation and summarises its parameters: table names,
    key counts and queue URLs, never item values. `before-send` counts HTTP attempts (retries
    included) and request body bytes, and `after-call` keeps the HTTP status. With
    `thread_id` set, only calls made on that thread are kept, so background pollers of the
    same process do not count. With `shapes` set, each DynamoDB call also keeps the shapes of
    its parameters and of the items it returned (`params_shape`, `response_shapes`), from which
    the cold-start bench builds a baseline that sends requests of the same structure.
    """

    def __init__(self, thread_id: int | None = None, *, shapes: bool = False) -> None:
        self.thread_id = thread_id
        self.shapes = shapes
        self.active = True
        self.calls: list[dict[str, Any]] = []
        self.clients: list[str] = []
        self._original: Callable[..., Any] | None = None

    def _kept(self) -> bool:
        return self.active and (self.thread_id is None or threading.get_ident() == self.thread_id)

    def install(self) -> None:
        """Wrap client creation so that every later client reports its calls here."""
        import botocore.session

        original = botocore.session.Session.create_client
        self._original = original
        recorder = self

        def create_client(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
            client = original(session, service_name, *args, **kwargs)
            if recorder._kept():
                recorder.clients.append(service_name)
            recorder.watch(client)
            return client

        botocore.session.Session.create_client = create_client

    def uninstall(self) -> None:
        """Restore client creation; clients created meanwhile keep reporting while active."""
        import botocore.session

        if self._original is not None:
            botocore.session.Session.create_client = self._original
            self._original = None

    def watch(self, client: Any) -> None:
        """Register the recording handlers on one client."""
        events = client.meta.events
        events.register("before-parameter-build", self._on_parameters)
        events.register("before-send", self._on_send)
        events.register("after-call", self._on_response)

    def _on_parameters(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self._kept():
            return
        service = model.service_model.service_name
        self.calls.append(
            {
                "service": service,
                "operation": model.name,
                "summary": summarize(service, model.name, params),
                "attempts": 0,
                "request_bytes": 0,
                "status": None,
            }
        )
        if self.shapes and service == "dynamodb":
            self.calls[-1]["shape"] = params_shape(model.name, params)

    def _on_send(self, request: Any, **_: Any) -> None:
        if not self._kept() or not self.calls:
            return
        body = request.body
        size = len(body) if isinstance(body, bytes | str) else 0
        self.calls[-1]["attempts"] += 1
        self.calls[-1]["request_bytes"] += size

    def _on_response(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        if not self._kept() or not self.calls:
            return
        call = self.calls[-1]
        call["status"] = http_response.status_code
        call["error_code"] = (parsed.get("Error") or {}).get("Code") if parsed else None
        # The header, because reading `content` would consume a streamed body (S3 GetObject).
        length = http_response.headers.get("content-length")
        call["response_bytes"] = int(length) if length and length.isdigit() else 0
        call["returned"] = returned_items(model.name, parsed or {})
        if "shape" in call:
            call["returned_shapes"] = response_shapes(model.name, parsed or {})

    @contextmanager
    def capture(self) -> Iterator[list[dict[str, Any]]]:
        """Collect the calls made inside the block into the yielded list."""
        start = len(self.calls)
        captured: list[dict[str, Any]] = []
        try:
            yield captured
        finally:
            captured.extend(self.calls[start:])


class ProviderRecorder:
    """Record the HTTP requests that go to hosts other than the AWS endpoint.

    The Stripe, Twilio and HIBP clients all send through urllib3 (the stripe SDK's
    RequestsClient, the twilio SDK and the HIBP adapter use requests), so wrapping
    `HTTPConnectionPool.urlopen` records every provider request. botocore sends through urllib3
    too, so requests to `aws_endpoint` (host:port) are left out. Each record keeps the method,
    the URL, the headers and the body (base64), which the same-work process sends again.
    """

    def __init__(self, aws_endpoint: str | None) -> None:
        self.aws_endpoint = aws_endpoint
        self.calls: list[dict[str, Any]] = []
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        """Wrap urllib3's `urlopen` so that every later provider request is recorded here."""
        from urllib3.connectionpool import HTTPConnectionPool

        original = HTTPConnectionPool.urlopen
        self._original = original
        recorder = self

        def urlopen(
            pool: Any, method: str, url: str, body: Any = None, *args: Any, **kw: Any
        ) -> Any:
            response = original(pool, method, url, body, *args, **kw)
            endpoint = f"{pool.host}:{pool.port}"
            if endpoint != recorder.aws_endpoint:
                headers = kw.get("headers") or (args[0] if args else None) or {}
                recorder.calls.append(
                    {
                        "method": method,
                        "url": f"{pool.scheme}://{endpoint}{url}",
                        "headers": {str(name): str(value) for name, value in headers.items()},
                        "body": _encoded_body(body),
                        "status": response.status,
                    }
                )
            return response

        HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign,assignment]


def _encoded_body(body: Any) -> str | None:
    if body is None:
        return None
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes):
        raise TypeError(f"a provider request body of type {type(body).__name__} cannot be replayed")
    return base64.b64encode(body).decode("ascii")


def aws_endpoint() -> str | None:
    """Return host:port of AWS_ENDPOINT_URL, or None when it is not set."""
    from urllib.parse import urlsplit

    url = os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        return None
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.hostname}:{parts.port or default_port}"


def returned_items(operation: str, parsed: dict[str, Any]) -> int:
    """Return how many DynamoDB items a read returned, or 0 for any other operation."""
    if operation in ("Query", "Scan"):
        return int(parsed.get("Count", 0))
    if operation == "GetItem":
        return 1 if parsed.get("Item") else 0
    if operation == "BatchGetItem":
        return sum(len(items) for items in (parsed.get("Responses") or {}).values())
    if operation == "TransactGetItems":
        return sum(1 for response in parsed.get("Responses") or [] if response.get("Item"))
    return 0


# ---------------------------------------------------------------------------- request shapes
#
# The cold-start baseline should make the requests that the function made. moto's time for a
# request depends on its structure: an item of twelve attributes with nested maps takes longer
# to store, read and serialise than one padded string of the same size. An update expression
# with a condition takes longer to evaluate than a plain SET. A shape keeps the
# structure and replaces the content:
#
# - a string becomes as many `x` as its UTF-8 bytes, a number as many `1` as its digits and
#   signs, a binary value as many zero bytes;
# - the members of a set become distinct values of the same sizes (DynamoDB rejects
#   duplicates);
# - lists and maps keep their length and keys, with each member replaced in turn; booleans and
#   nulls stay as they are.
#
# Attribute names, expressions and other request options are kept: they come from the code,
# not from subscribers. A binary value is written as {BYTES_KEY: base64}, so that a shape
# survives the JSON that carries it between the bench's processes.

# Request parameters that contain attribute values, and those kept as they are.
_ITEM_PARAMETERS = ("Item", "Key")
_KEPT_PARAMETERS = (
    "TableName",
    "IndexName",
    "ProjectionExpression",
    "ExpressionAttributeNames",
    "UpdateExpression",
    "ConditionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ConsistentRead",
    "ReturnValues",
    "ReturnValuesOnConditionCheckFailure",
    "ScanIndexForward",
    "Limit",
    "Select",
)


def _bytes(size: int, number: int = 0) -> dict[str, str]:
    # `number` big-endian, padded with zero bytes to `size` (longer if it does not fit).
    raw = number.to_bytes(max(size, (number.bit_length() + 7) // 8), "big")
    return {BYTES_KEY: base64.b64encode(raw).decode("ascii")}


def _distinct_string(size: int, number: int) -> str:
    return str(number).rjust(size, "x")


def _distinct_number(size: int, number: int) -> str:
    return str(10 ** max(size - 1, len(str(number))) + number)


def value_shape(value: dict[str, Any]) -> dict[str, Any]:
    """Return the shape of one typed attribute value ({"S": ...}, {"M": ...} and so on)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return {"S": "x" * len(content.encode("utf-8"))}
    if kind == "N":
        return {"N": "1" * len(content)}
    if kind == "B":
        return {"B": _bytes(len(content))}
    if kind == "SS":
        return {
            "SS": [
                _distinct_string(len(member.encode("utf-8")), number)
                for number, member in enumerate(content)
            ]
        }
    if kind == "NS":
        return {
            "NS": [_distinct_number(len(member), number) for number, member in enumerate(content)]
        }
    if kind == "BS":
        return {"BS": [_bytes(len(member), number + 1) for number, member in enumerate(content)]}
    if kind == "L":
        return {"L": [value_shape(member) for member in content]}
    if kind == "M":
        return {"M": item_shape(content)}
    return {kind: content}


def item_shape(item: dict[str, Any]) -> dict[str, Any]:
    """Return the shape of an item or key: each attribute's value replaced by its shape."""
    return {name: value_shape(value) for name, value in item.items()}


def _request_shape(params: dict[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {name: params[name] for name in _KEPT_PARAMETERS if name in params}
    for name in _ITEM_PARAMETERS:
        if name in params:
            shape[name] = item_shape(params[name])
    if "ExpressionAttributeValues" in params:
        shape["ExpressionAttributeValues"] = item_shape(params["ExpressionAttributeValues"])
    return shape


def _write_request_shape(request: dict[str, Any]) -> dict[str, Any]:
    """Return the shape of one BatchWriteItem request: a put's item or a delete's key."""
    ((kind, body),) = request.items()
    name = "Item" if kind == "PutRequest" else "Key"
    return {kind: {name: item_shape(body[name])}}


def params_shape(operation: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """Return the shape of a DynamoDB request's parameters, or None for an unknown operation."""
    if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"):
        return _request_shape(params)
    if operation == "BatchGetItem":
        return {
            "RequestItems": {
                table: _request_shape(entry) | {"Keys": [item_shape(key) for key in entry["Keys"]]}
                for table, entry in params.get("RequestItems", {}).items()
            }
        }
    if operation == "BatchWriteItem":
        return {
            "RequestItems": {
                table: [_write_request_shape(request) for request in requests]
                for table, requests in params.get("RequestItems", {}).items()
            }
        }
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return {
            "TransactItems": [
                {kind: _request_shape(body) for kind, body in entry.items()}
                for entry in params.get("TransactItems", [])
            ]
        }
    return None


def response_shapes(operation: str, parsed: dict[str, Any]) -> Any:
    """Return the shapes of the items a DynamoDB response carried, or None if it carried none.

    A list for GetItem, Query, Scan and TransactGetItems (None where a transaction's item was
    missing), a dict of lists per table for BatchGetItem, and a one-item list of the returned
    attributes for writes with ReturnValues.
    """
    if operation == "GetItem":
        return [item_shape(parsed["Item"])] if parsed.get("Item") else []
    if operation in ("Query", "Scan"):
        return [item_shape(item) for item in parsed.get("Items") or []]
    if operation == "BatchGetItem":
        return {
            table: [item_shape(item) for item in items]
            for table, items in (parsed.get("Responses") or {}).items()
        }
    if operation == "TransactGetItems":
        return [
            item_shape(response["Item"]) if response.get("Item") else None
            for response in parsed.get("Responses") or []
        ]
    if operation in ("PutItem", "UpdateItem", "DeleteItem") and parsed.get("Attributes"):
        return [item_shape(parsed["Attributes"])]
    return None


def summarize(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """Return what a replay needs to know about one call's parameters: names and counts only."""
    if service == "dynamodb":
        if operation in ("BatchGetItem", "BatchWriteItem"):
            request_items = params.get("RequestItems", {})
            counts = {
                table: len(entry["Keys"]) if operation == "BatchGetItem" else len(entry)
                for table, entry in request_items.items()
            }
            return {"tables": counts}
        if operation in ("TransactWriteItems", "TransactGetItems"):
            items = []
            for item in params.get("TransactItems", []):
                kind, body = next(iter(item.items()))
                items.append([kind, body["TableName"]])
            return {"items": items}
        if operation in ("Query", "Scan"):
            return {"table": params.get("TableName"), "index": params.get("IndexName")}
        return {"table": params.get("TableName")}
    if service == "s3":
        return {
            "bucket": params.get("Bucket"),
            "key": params.get("Key") or params.get("Prefix"),
            "sse": params.get("ServerSideEncryption"),
            "kms_key": params.get("SSEKMSKeyId"),
            "objects": len((params.get("Delete") or {}).get("Objects") or []),
        }
    if service == "sesv2":
        return {
            "from": params.get("FromEmailAddress"),
            "configuration_set": params.get("ConfigurationSetName"),
            "reason": params.get("Reason"),
        }
    if service == "kms":
        return {"key_id": params.get("KeyId"), "key_spec": params.get("KeySpec")}
    if service == "secretsmanager":
        return {"secret_id": params.get("SecretId")}
    if service == "sqs":
        return {"queue_url": params.get("QueueUrl"), "entries": len(params.get("Entries", []))}
    if service == "events":
        entries = params.get("Entries", [])
        return {
            "entries": len(entries),
            "buses": sorted({entry.get("EventBusName", "default") for entry in entries}),
            "detail_types": sorted({str(entry.get("DetailType")) for entry in entries}),
        }
    return {}


class _Context:
    """The fields of the Lambda context object that the handlers and Powertools read."""

    def __init__(self, function: dict[str, Any]) -> None:
        self.function_name = function["name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = function["arn"]
        self.memory_limit_in_mb = function["memory_mb"]
        self.aws_request_id = function["request_id"]
        self.log_group_name = f"/aws/lambda/{function['name']}"
        self.log_stream_name = "bench"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + function["timeout_s"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _third_party_modules() -> list[str]:
    """Return the loaded modules that come from site-packages, in `sys.modules` order."""
    roots = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    third_party_tops: set[str] = set()
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        location = getattr(module, "__file__", None)
        if top in OWN_TOP_LEVEL or location is None or "." in name:
            continue
        if any(str(location).startswith(root) for root in roots):
            third_party_tops.add(top)
    return [name for name in list(sys.modules) if name.partition(".")[0] in third_party_tops]


def _start_timer() -> float:
    os.write(2, TIMER_STARTED)
    return time.perf_counter()


def run_function(spec: dict[str, Any]) -> dict[str, Any]:
    """Import the function from its directory as Lambda does and serve one event."""
    started = _start_timer()
    recorder = CallRecorder(shapes=spec.get("record_shapes", False))
    recorder.install()
    providers = ProviderRecorder(aws_endpoint())
    providers.install()
    app = importlib.import_module(spec["handler_module"])
    handler = getattr(app, spec["handler_function"])
    imported = time.perf_counter()
    response = handler(spec["event"], _Context(spec["function"]))
    finished = time.perf_counter()

    return {
        "elapsed_s": finished - started,
        "phases": {"import": imported - started, "first_request": finished - imported},
        "status": response.get("statusCode") if isinstance(response, dict) else None,
        "batch_item_failures": _batch_item_failures(response),
        "response": response,
        "calls": recorder.calls,
        "clients": recorder.clients,
        "provider_calls": providers.calls,
        "modules": _third_party_modules(),
        "loaded": {name: name in sys.modules for name in spec.get("check_loaded", [])},
    }


def _batch_item_failures(response: Any) -> int | None:
    """Return how many records an SQS handler's response reports as failed, or None."""
    if not isinstance(response, dict) or "batchItemFailures" not in response:
        return None
    return len(response["batchItemFailures"] or [])


def decode_bytes(value: Any) -> Any:
    """Return value with every {BYTES_KEY: "<base64>"} replaced by the bytes it encodes."""
    if isinstance(value, dict):
        if set(value) == {BYTES_KEY}:
            return base64.b64decode(value[BYTES_KEY])
        return {key: decode_bytes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_bytes(item) for item in value]
    return value


def _send_sms(sms: dict[str, Any]) -> None:
    """Send one SMS through the twilio SDK to the Twilio emulator at sms["base_url"]."""
    from twilio.rest import Client

    client = Client(sms["account_sid"], sms["auth_token"])
    client.api.base_url = sms["base_url"]
    client.region = None
    client.edge = None
    client.messages.create(
        to=sms["to"], messaging_service_sid=sms["messaging_service_sid"], body=sms["body"]
    )


def _send_provider_requests(calls: list[dict[str, Any]]) -> None:
    """Send each recorded provider request again, with its method, URL, headers and body.

    The Idempotency-Key header is left out, so that Stripe does the request's work again
    rather than return the response it stored for the function's request.
    """
    import requests

    with requests.Session() as session:
        session.trust_env = False
        for call in calls:
            body = call.get("body")
            headers = {
                name: value
                for name, value in call["headers"].items()
                if name.lower() != "idempotency-key"
            }
            session.request(
                call["method"],
                call["url"],
                headers=headers,
                data=base64.b64decode(body) if body is not None else None,
                timeout=30,
            )


def _replay(client: Any, call: dict[str, Any]) -> None:
    """Make one replayed call; a call planned to fail must fail with its error code."""
    from botocore.exceptions import ClientError

    expected = call.get("error_code")
    try:
        getattr(client, call["method"])(**decode_bytes(call["params"]))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != expected:
            raise
        return
    if expected:
        raise RuntimeError(f"the replayed {call['method']} succeeded, expected {expected}")


def run_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """Import the same modules, create the same clients, replay the calls and send the SMS.

    The clients share one boto3 session, unless the spec sets session_per_client. The
    provider requests of the spec ("provider_calls") go out after the AWS calls.
    """
    started = _start_timer()
    recorder = CallRecorder()
    recorder.install()
    providers = ProviderRecorder(aws_endpoint())
    providers.install()
    for name in spec["modules"]:
        importlib.import_module(name)
    # Each function's module freezes the objects of its initialisation (idsentry.instance),
    # so the baseline freezes those of its imports: later collections skip them in both.
    gc.freeze()
    imported = time.perf_counter()

    import boto3.session
    from botocore.config import Config

    config = Config(**spec["client_config"])
    shared = None if spec["session_per_client"] else boto3.session.Session()
    clients = {}
    for service in spec["clients"]:
        session = shared or boto3.session.Session()
        clients[service] = session.client(service, config=config)
    created = time.perf_counter()
    for call in spec["calls"]:
        _replay(clients[call["service"]], call)
    replayed = time.perf_counter()
    phases = {
        "import": imported - started,
        "clients": created - imported,
        "requests": replayed - created,
    }
    if "sms" in spec:
        _send_sms(spec["sms"])
        phases["sms"] = time.perf_counter() - replayed
    if spec.get("provider_calls"):
        provider_started = time.perf_counter()
        _send_provider_requests(spec["provider_calls"])
        phases["providers"] = time.perf_counter() - provider_started
    finished = time.perf_counter()

    return {
        "elapsed_s": finished - started,
        "phases": phases,
        "status": None,
        "calls": recorder.calls,
        "clients": recorder.clients,
        "provider_calls": providers.calls,
        "modules": _third_party_modules(),
        "loaded": {},
    }


def run_boto3_only(spec: dict[str, Any]) -> dict[str, Any]:
    """Import boto3 and create one client, with no request."""
    started = _start_timer()
    recorder = CallRecorder()
    recorder.install()
    providers = ProviderRecorder(aws_endpoint())
    providers.install()
    import boto3

    imported = time.perf_counter()
    boto3.client(spec["service"])
    finished = time.perf_counter()

    return {
        "elapsed_s": finished - started,
        "phases": {"import": imported - started, "clients": finished - imported},
        "status": None,
        "calls": recorder.calls,
        "clients": recorder.clients,
        "provider_calls": providers.calls,
        "modules": _third_party_modules(),
        "loaded": {},
    }


MODES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "function": run_function,
    "baseline": run_baseline,
    "boto3": run_boto3_only,
}


def main(argv: list[str]) -> int:
    """Run the mode the spec names and write its result file."""
    if len(argv) != 3:
        print("usage: child.py SPEC_PATH RESULT_PATH", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    for entry in reversed(spec.get("sys_path", [])):
        sys.path.insert(0, entry)

    result = MODES[spec["mode"]](spec)
    Path(argv[2]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
