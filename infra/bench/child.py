"""One cold-start measurement in a fresh process: a Lambda function, its baseline or boto3 alone.

Run as `python -P child.py SPEC_PATH RESULT_PATH`. The spec (JSON) names the mode and its
inputs, and the result (JSON) contains the elapsed time, the AWS calls made and the
third-party modules loaded. This file imports only the standard library at module level, so
that nothing else is loaded before the timer starts. The bench process imports
`CallRecorder` from it too.

Every mode starts its timer before it installs the call recorder and imports anything else,
and stops it after the last AWS response, so the recorder's own cost is inside every figure.
A baseline spec may also name one SMS to send through the twilio SDK after the AWS calls,
because the notifier's first request sends one.
"""

from __future__ import annotations

import base64
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

# Top-level names that are ours or the runtime's, never third-party packages.
OWN_TOP_LEVEL = frozenset({"__main__", "app", "idsentry", "child"})
# Written to stderr when the timer starts, so that the bench counts only the `-X importtime`
# lines after it.
TIMER_STARTED = b"bench: timer started\n"
# A JSON spec cannot carry bytes, so a replayed parameter of type blob (a KMS ciphertext) is
# written as {BYTES_KEY: "<base64>"}.
BYTES_KEY = "__base64_bytes__"


class CallRecorder:
    """Record every AWS API call of botocore clients created while it is installed.

    `install()` wraps `botocore.session.Session.create_client`, through which every boto3 and
    botocore client is built, and registers three event handlers on each new client.
    `before-parameter-build` names the operation and summarises its parameters: table names,
    key counts and queue URLs, never item values. `before-send` counts HTTP attempts (retries
    included) and request body bytes, and `after-call` keeps the HTTP status. With
    `thread_id` set, only calls made on that thread are kept, so background pollers of the
    same process do not count.
    """

    def __init__(self, thread_id: int | None = None) -> None:
        self.thread_id = thread_id
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

    def _on_send(self, request: Any, **_: Any) -> None:
        if not self._kept() or not self.calls:
            return
        body = request.body
        size = len(body) if isinstance(body, bytes | str) else 0
        self.calls[-1]["attempts"] += 1
        self.calls[-1]["request_bytes"] += size

    def _on_response(self, http_response: Any, **_: Any) -> None:
        if not self._kept() or not self.calls:
            return
        self.calls[-1]["status"] = http_response.status_code

    @contextmanager
    def capture(self) -> Iterator[list[dict[str, Any]]]:
        """Collect the calls made inside the block into the yielded list."""
        start = len(self.calls)
        captured: list[dict[str, Any]] = []
        try:
            yield captured
        finally:
            captured.extend(self.calls[start:])


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
        return {"table": params.get("TableName")}
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
    recorder = CallRecorder()
    recorder.install()
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
        "calls": recorder.calls,
        "clients": recorder.clients,
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


def run_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """Import the same modules, create the same clients, replay the calls and send the SMS.

    The clients share one boto3 session, unless the spec sets session_per_client.
    """
    started = _start_timer()
    recorder = CallRecorder()
    recorder.install()
    for name in spec["modules"]:
        importlib.import_module(name)
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
        method = getattr(clients[call["service"]], call["method"])
        method(**decode_bytes(call["params"]))
    replayed = time.perf_counter()
    phases = {
        "import": imported - started,
        "clients": created - imported,
        "requests": replayed - created,
    }
    if "sms" in spec:
        _send_sms(spec["sms"])
        phases["sms"] = time.perf_counter() - replayed
    finished = time.perf_counter()

    return {
        "elapsed_s": finished - started,
        "phases": phases,
        "status": None,
        "calls": recorder.calls,
        "clients": recorder.clients,
        "modules": _third_party_modules(),
        "loaded": {},
    }


def run_boto3_only(spec: dict[str, Any]) -> dict[str, Any]:
    """Import boto3 and create one client, with no request."""
    started = _start_timer()
    recorder = CallRecorder()
    recorder.install()
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
