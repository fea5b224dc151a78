"""In-process Lambda runtime: SQS event source mappings, schedules and direct invocations."""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from botocore.client import BaseClient

from infra.local.provision import (
    DUMMY_CREDENTIAL,
    EventSourceMappingSpec,
    FunctionSpec,
    ProvisionedStack,
    ScheduleSpec,
    ScheduleTarget,
    check_loopback,
)
from infra.local.replay import QUEUE_MESSAGES, Replay

LOG = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]

# Message attributes that Lambda copies into each SQS record's "attributes".
SQS_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
)

SQS_MAX_RECEIVE = 10
# How often run_until_idle looks again for replay copies that SQS still delays.
REPLAY_IDLE_POLL_S = 0.1


class LocalRuntimeError(Exception):
    """The local runtime cannot run a function, mapping or schedule as the template defines it."""


class EnvironmentConflictError(LocalRuntimeError):
    """Two functions give one environment variable different values."""


class NotIdleError(LocalRuntimeError):
    """The mapped queues kept delivering messages past the bounds of run_until_idle."""


class InvocationStopped(BaseException):
    """Raised inside a handler by a local fault hook to end the invocation with no response.

    Lambda ends an invocation that way when it times out or its process crashes, so the whole
    batch comes back. It derives from BaseException so that Powertools' batch processor does
    not record it as one record's failure and go on with the next record. Only the local
    reliability suite raises it.
    """


class LambdaContext:
    """The context object passed to a handler, with the fields of the Python runtime's."""

    def __init__(self, function: FunctionSpec, log_stream_name: str) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = function.log_group_name
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + function.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class BatchOutcome:
    """Counts for one receive-and-invoke step of an event source mapping."""

    received: int = 0
    succeeded: int = 0
    failed: int = 0
    test_events: int = 0


@dataclass(frozen=True)
class SettledBatch:
    """One batch an event source mapping delivered, as batch observers see it after settling."""

    mapping_logical_id: str
    function_logical_id: str
    queue_url: str
    message_ids: tuple[str, ...]
    failed_ids: frozenset[str]
    # Receipt handles of the failed messages, which stay in flight until they come back.
    failed_receipts: dict[str, str]
    # The invocation ended with no response: a handler crash, a timeout or InvocationStopped.
    stopped: bool


BatchObserver = Callable[[SettledBatch], None]


@dataclass
class IdleReport:
    """Totals of a run_until_idle call."""

    rounds: int
    received: int
    succeeded: int
    failed: int
    test_events: int


def _is_s3_test_event(body: str) -> bool:
    if '"s3:TestEvent"' not in body:
        return False
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return False
    return isinstance(document, dict) and document.get("Event") == "s3:TestEvent"


def _record_message_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Convert SQS API message attributes to the lower-camel-case shape of Lambda events."""
    converted = {}
    for name, value in attributes.items():
        binary = value.get("BinaryValue")
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode("ascii") if binary else None,
            "stringListValues": list(value.get("StringListValues", [])),
            "binaryListValues": [
                base64.b64encode(item).decode("ascii") for item in value.get("BinaryListValues", [])
            ],
            "dataType": value["DataType"],
        }
    return converted


def failed_message_ids(response: Any, message_ids: list[str]) -> set[str]:
    """Return the message ids that a ReportBatchItemFailures response marks as failed.

    The rules follow Lambda's documentation for SQS. No response, an empty response or an
    empty or null batchItemFailures list is a full success. An item without a valid
    itemIdentifier of this batch, or a response that is not an object, fails the whole batch.
    """
    if response is None or response == {}:
        return set()
    if not isinstance(response, dict):
        return set(message_ids)
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(message_ids)

    failed = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids)
        failed.add(identifier)
    return failed


class LocalRuntime:
    """Run the template's Lambda handlers in this process against the moto server.

    Creating the runtime sets os.environ: the union of every function's environment, the
    local endpoint and dummy credentials, then extra_environment. `close()` restores it.
    """

    def __init__(
        self,
        stack: ProvisionedStack,
        *,
        extra_environment: Mapping[str, str] | None = None,
        visibility_timeout_override: int | None = None,
        poll_wait_seconds: int = 1,
    ) -> None:
        self.stack = stack
        self.visibility_timeout_override = visibility_timeout_override
        self.poll_wait_seconds = poll_wait_seconds
        self.functions = stack.functions()
        self.mappings = stack.event_source_mappings()
        self.schedules = stack.schedules()

        self.environment = self._build_environment(extra_environment or {})
        self._saved_environment: dict[str, str | None] = {}
        self._apply_environment()
        self._add_layer_paths()

        self._sqs = stack.client("sqs")
        self._handlers: dict[str, Handler] = {}
        self._modules: dict[Path, ModuleType] = {}
        self._import_lock = threading.Lock()
        self._log_streams = {
            logical_id: f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
            for logical_id in self.functions
        }
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Local fault hooks of the reliability suite: batches to cut short, and observers.
        self._crashes: dict[str, list[int]] = {}
        self._crash_lock = threading.Lock()
        self._batch_observers: list[BatchObserver] = []

        # Replay mode (see set_replay): the messages already sent a second time, the copies
        # sent, and the copies not received yet.
        self.replay: Replay | None = None
        self._replay_lock = threading.Lock()
        self._replay_random: dict[str, random.Random] = {}
        self._replayed_ids: set[str] = set()
        self._copy_ids: set[str] = set()
        self._pending_copy_ids: set[str] = set()

    # ------------------------------------------------------------------ environment

    def _build_environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        environment: dict[str, str] = {}
        owners: dict[str, str] = {}
        for logical_id, function in self.functions.items():
            for name, value in function.environment.items():
                if name in environment and environment[name] != value:
                    raise EnvironmentConflictError(
                        f"environment variable {name} has different values in functions "
                        f"{owners[name]} and {logical_id}. All functions share one process "
                        "locally, so the template must give each name one meaning"
                    )
                environment[name] = value
                owners.setdefault(name, logical_id)

        environment.update(
            {
                "AWS_ENDPOINT_URL": self.stack.endpoint_url,
                "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
                "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
                "AWS_DEFAULT_REGION": self.stack.region,
                "AWS_REGION": self.stack.region,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
        )
        environment.update(extra)
        for name, value in environment.items():
            if name.startswith("AWS_ENDPOINT_URL"):
                check_loopback(value)
        return environment

    def _apply_environment(self) -> None:
        # A session token or profile from the caller's shell would override the dummy keys.
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
            self._saved_environment[name] = os.environ.pop(name, None)
        for name, value in self.environment.items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}

    def _add_layer_paths(self) -> None:
        for function in self.functions.values():
            for layer_dir in function.layer_dirs:
                path = str(layer_dir / "python")
                if path not in sys.path:
                    sys.path.insert(0, path)

    # ------------------------------------------------------------------ invocation

    def function_logical_id(self, name: str) -> str:
        """Return the logical id for a logical id, function name or function ARN."""
        if name in self.functions:
            return name
        return self.stack.function_logical_id(name)

    def load_handler(self, function_logical_id: str) -> Handler:
        """Import the function's handler module from its file (once) and return the handler."""
        if function_logical_id in self._handlers:
            return self._handlers[function_logical_id]
        function = self.functions.get(function_logical_id)
        if function is None:
            raise LocalRuntimeError(f"function {function_logical_id} is not in the template")
        if function.code_dir is None:
            raise LocalRuntimeError(
                f"function {function_logical_id} has no local CodeUri, and the local runtime "
                "runs only code from this repository"
            )

        module_path, dot, attribute = function.handler.rpartition(".")
        if not dot or not module_path or not attribute:
            raise LocalRuntimeError(
                f"function {function_logical_id}: Handler {function.handler!r} must be "
                "module.function"
            )
        file_path = (function.code_dir / (module_path.replace(".", "/") + ".py")).resolve()
        if not file_path.is_file():
            raise LocalRuntimeError(
                f"function {function_logical_id}: handler file {file_path} does not exist"
            )

        with self._import_lock:
            module = self._modules.get(file_path)
            if module is None:
                module = self._import_module(function, module_path, file_path)
                self._modules[file_path] = module
        handler = getattr(module, attribute, None)
        if not callable(handler):
            raise LocalRuntimeError(
                f"function {function_logical_id}: {file_path.name} has no callable {attribute}"
            )
        self._handlers[function_logical_id] = cast(Handler, handler)
        return self._handlers[function_logical_id]

    def _import_module(
        self, function: FunctionSpec, module_path: str, file_path: Path
    ) -> ModuleType:
        # Every function's module is app.py, so each gets a name of its own.
        # NOTE: the function's folder is not put on sys.path, so an app.py that imports a
        # sibling module (import models) fails here. Shared code belongs in the layer.
        folder = function.code_dir.name if function.code_dir else function.logical_id
        suffix = f"{folder}_{module_path}".replace(".", "_").replace("-", "_")
        module_name = f"idsentry_local_fn_{suffix}"
        spec = importlib.util.spec_from_file_location(module_name, file_path)
        if spec is None or spec.loader is None:
            raise LocalRuntimeError(f"function {function.logical_id}: cannot import {file_path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        return module

    def invoke(self, function_logical_id: str, event: Any) -> Any:
        """Invoke the function's handler with event, as a synchronous Lambda invocation.

        The event and the result pass through JSON as they do in Lambda. A handler exception
        propagates to the caller.
        """
        logical_id = self.function_logical_id(function_logical_id)
        handler = self.load_handler(logical_id)
        function = self.functions[logical_id]
        try:
            payload = json.loads(json.dumps(event))
        except (TypeError, ValueError) as exc:
            raise LocalRuntimeError(f"event for {logical_id} is not JSON serialisable") from exc

        context = LambdaContext(function, self._log_streams[logical_id])
        started = time.monotonic()
        try:
            result = handler(payload, context)
        except InvocationStopped:
            LOG.warning(
                "invocation stopped by a local fault hook",
                extra={"function": logical_id, "request_id": context.aws_request_id},
            )
            raise
        except Exception as exc:
            LOG.warning(
                "invocation failed",
                extra={
                    "function": logical_id,
                    "request_id": context.aws_request_id,
                    "error_type": type(exc).__name__,
                },
            )
            raise
        elapsed_s = time.monotonic() - started
        if elapsed_s > function.timeout_s:
            # NOTE: the local runtime does not stop a handler at its Timeout as Lambda does;
            # it only reports the overrun here.
            LOG.warning(
                "invocation ran past the function timeout",
                extra={"function": logical_id, "request_id": context.aws_request_id},
            )

        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise LocalRuntimeError(
                f"function {logical_id} returned a value that is not JSON serialisable"
            ) from exc

    # ------------------------------------------------------------------ replay mode

    def set_replay(self, replay: Replay | None) -> None:
        """Deliver every SQS message twice and shuffle each batch, or (None) stop doing so.

        Set it before `start()`. Each message a poll receives for the first time is sent to its
        queue once more, delayed by 0 to `replay.max_delay_seconds` seconds, so the copy
        arrives later and among other messages, as SQS's at-least-once delivery allows. The
        copy has a new MessageId, as a producer's retried send or a second EventBridge
        delivery has, so a consumer must recognise it by its content.
        """
        if self._threads:
            raise LocalRuntimeError("set_replay must be called before the pollers start")
        self.replay = replay

    def pending_replay_copies(self) -> int:
        """Return how many second copies were sent but not received yet."""
        with self._replay_lock:
            return len(self._pending_copy_ids)

    def _replay_batch(
        self, mapping: EventSourceMappingSpec, batch: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Send a second copy of each first-time message of the batch; return it shuffled."""
        assert self.replay is not None
        if mapping.queue_url.endswith(".fifo"):
            raise LocalRuntimeError(
                f"replay mode does not support the FIFO queue of mapping {mapping.logical_id}"
            )
        with self._replay_lock:
            rng = self._replay_random.setdefault(
                mapping.logical_id, self.replay.random(f"sqs:{mapping.logical_id}")
            )
            for message in batch:
                self._pending_copy_ids.discard(message["MessageId"])
            first_time = [
                message
                for message in batch
                if message["MessageId"] not in self._replayed_ids
                and message["MessageId"] not in self._copy_ids
            ]
            self._replayed_ids.update(message["MessageId"] for message in first_time)
            delays = [rng.randint(0, self.replay.max_delay_seconds) for _ in first_time]
            shuffled = list(batch)
            rng.shuffle(shuffled)

        for start in range(0, len(first_time), SQS_MAX_RECEIVE):
            chunk = first_time[start : start + SQS_MAX_RECEIVE]
            entries = []
            for index, message in enumerate(chunk):
                entry: dict[str, Any] = {
                    "Id": str(index),
                    "MessageBody": message["Body"],
                    "DelaySeconds": delays[start + index],
                }
                if message.get("MessageAttributes"):
                    entry["MessageAttributes"] = message["MessageAttributes"]
                entries.append(entry)
            response = self._sqs.send_message_batch(QueueUrl=mapping.queue_url, Entries=entries)
            if response.get("Failed"):
                raise LocalRuntimeError(
                    f"sending replay copies to {mapping.queue_url} failed: {response['Failed']}"
                )
            with self._replay_lock:
                for sent in response.get("Successful", []):
                    self._copy_ids.add(sent["MessageId"])
                    self._pending_copy_ids.add(sent["MessageId"])
            self.replay.count(QUEUE_MESSAGES, len(chunk))
        return shuffled

    # ------------------------------------------------------------------ SQS mappings

    def _receive(self, mapping: EventSourceMappingSpec, wait_seconds: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < mapping.batch_size:
            response = self._sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=min(SQS_MAX_RECEIVE, mapping.batch_size - len(messages)),
                WaitTimeSeconds=wait_seconds if not messages else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            if not received:
                break
            messages.extend(received)
        return messages

    def _sqs_record(
        self, mapping: EventSourceMappingSpec, message: dict[str, Any]
    ) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                name: attributes[name] for name in SQS_RECORD_ATTRIBUTES if name in attributes
            },
            "messageAttributes": _record_message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": mapping.event_source_arn,
            "awsRegion": self.stack.region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def _delete(self, queue_url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_MAX_RECEIVE):
            chunk = messages[start : start + SQS_MAX_RECEIVE]
            response = self._sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(chunk)
                ],
            )
            if response.get("Failed"):
                raise LocalRuntimeError(
                    f"deleting messages from {queue_url} failed: {response['Failed']}"
                )

    def _return_early(self, queue_url: str, messages: list[dict[str, Any]]) -> None:
        # NOTE: the override also replaces a delay the handler set with ChangeMessageVisibility,
        # so local retries can come before the handler's own wait. The fault scenarios set it
        # to None and keep retries in order on a virtual clock (infra/chaos/harness.py).
        if self.visibility_timeout_override is None or not messages:
            return
        for start in range(0, len(messages), SQS_MAX_RECEIVE):
            chunk = messages[start : start + SQS_MAX_RECEIVE]
            self._sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": message["ReceiptHandle"],
                        "VisibilityTimeout": self.visibility_timeout_override,
                    }
                    for index, message in enumerate(chunk)
                ],
            )

    def poll(self, mapping: EventSourceMappingSpec, wait_seconds: int = 0) -> BatchOutcome:
        """Receive one batch from the mapping's queue, invoke its function and settle the batch.

        Succeeded messages are deleted. Failed ones stay and come back after the visibility
        timeout (or visibility_timeout_override), and moto's redrive policy moves them to the
        DLQ after maxReceiveCount receives. s3:TestEvent messages are deleted unseen.
        """
        messages = self._receive(mapping, wait_seconds)
        outcome = BatchOutcome(received=len(messages))
        if not messages:
            return outcome

        test_events = [message for message in messages if _is_s3_test_event(message["Body"])]
        if test_events:
            self._delete(mapping.queue_url, test_events)
            outcome.test_events = len(test_events)
        batch = [message for message in messages if message not in test_events]
        if not batch:
            return outcome
        if self.replay is not None:
            batch = self._replay_batch(mapping, batch)

        message_ids = [message["MessageId"] for message in batch]
        records = [self._sqs_record(mapping, message) for message in batch]
        stopped = False
        try:
            response = self._invoke_batch(mapping.function_logical_id, records)
        except (Exception, InvocationStopped):
            # With no response (an exception, a crash or a timeout), Lambda retries every record.
            failed_ids = set(message_ids)
            stopped = True
        else:
            failed_ids = (
                failed_message_ids(response, message_ids)
                if mapping.report_batch_item_failures
                else set()
            )

        succeeded = [message for message in batch if message["MessageId"] not in failed_ids]
        failed = [message for message in batch if message["MessageId"] in failed_ids]
        self._delete(mapping.queue_url, succeeded)
        self._return_early(mapping.queue_url, failed)
        outcome.succeeded = len(succeeded)
        outcome.failed = len(failed)
        LOG.info(
            "sqs batch processed",
            extra={
                "function": mapping.function_logical_id,
                "mapping": mapping.logical_id,
                "message_ids": message_ids,
                "succeeded": outcome.succeeded,
                "failed": outcome.failed,
            },
        )
        settled = SettledBatch(
            mapping_logical_id=mapping.logical_id,
            function_logical_id=mapping.function_logical_id,
            queue_url=mapping.queue_url,
            message_ids=tuple(message_ids),
            failed_ids=frozenset(failed_ids),
            failed_receipts={message["MessageId"]: message["ReceiptHandle"] for message in failed},
            stopped=stopped,
        )
        for observer in list(self._batch_observers):
            observer(settled)
        return outcome

    def _invoke_batch(self, function_logical_id: str, records: list[dict[str, Any]]) -> Any:
        """Invoke the function with a batch, or with its first records only when a crash is armed."""
        with self._crash_lock:
            pending = self._crashes.get(function_logical_id)
            record_count = pending.pop(0) if pending else None
        if record_count is None:
            return self.invoke(function_logical_id, {"Records": records})

        LOG.warning(
            "invocation crashes after part of its batch (local fault hook)",
            extra={
                "function": function_logical_id,
                "records_run": min(record_count, len(records)),
                "records": len(records),
            },
        )
        if record_count > 0:
            self.invoke(function_logical_id, {"Records": records[:record_count]})
        raise InvocationStopped(f"{function_logical_id} crashed after {record_count} records")

    # ------------------------------------------------------------------ local fault hooks

    def crash_after_records(self, function_logical_id: str, records: int, times: int = 1) -> None:
        """Make the function's next `times` batches crash after their first `records` records.

        Those records run to completion, then the invocation ends with no response, as when
        the process dies, so Lambda retries the whole batch, the finished records included.
        Local only: the reliability suite uses it to check that redelivery changes nothing.
        """
        logical_id = self.function_logical_id(function_logical_id)
        if records < 0 or times < 0:
            raise ValueError("records and times must not be negative")
        with self._crash_lock:
            self._crashes.setdefault(logical_id, []).extend([records] * times)

    def pending_crashes(self, function_logical_id: str) -> int:
        """Return how many armed crashes of the function have not happened yet."""
        logical_id = self.function_logical_id(function_logical_id)
        with self._crash_lock:
            return len(self._crashes.get(logical_id, []))

    def cancel_crashes(self) -> None:
        """Disarm every crash that has not happened yet."""
        with self._crash_lock:
            self._crashes.clear()

    def add_batch_observer(self, observer: BatchObserver) -> None:
        """Call `observer` with every batch a mapping delivers, once the batch is settled."""
        self._batch_observers.append(observer)

    def remove_batch_observer(self, observer: BatchObserver) -> None:
        """Stop calling an observer that add_batch_observer added."""
        self._batch_observers.remove(observer)

    def _enabled_mappings(self) -> list[EventSourceMappingSpec]:
        return [mapping for mapping in self.mappings if mapping.enabled]

    def run_until_idle(self, max_rounds: int = 100, deadline_s: float = 60.0) -> IdleReport:
        """Poll every mapped queue in turn until a whole round receives nothing.

        Raises NotIdleError when messages still arrive after max_rounds rounds or deadline_s
        seconds. Messages hidden by their visibility timeout do not count as arrivals. In
        replay mode the queues are idle only once every second copy has been received, so a
        round that waits for a delayed copy does not count toward max_rounds.
        """
        if self._threads:
            raise LocalRuntimeError("run_until_idle cannot run while the pollers are started")
        started = time.monotonic()
        report = IdleReport(rounds=0, received=0, succeeded=0, failed=0, test_events=0)

        while True:
            report.rounds += 1
            round_received = 0
            for mapping in self._enabled_mappings():
                outcome = self.poll(mapping, wait_seconds=0)
                round_received += outcome.received
                report.received += outcome.received
                report.succeeded += outcome.succeeded
                report.failed += outcome.failed
                report.test_events += outcome.test_events
            elapsed_s = time.monotonic() - started
            waiting_for_copies = round_received == 0 and self.pending_replay_copies() > 0
            if waiting_for_copies and elapsed_s <= deadline_s:
                report.rounds -= 1
                time.sleep(REPLAY_IDLE_POLL_S)
                continue
            if round_received == 0 and not waiting_for_copies:
                return report

            if report.rounds >= max_rounds or elapsed_s > deadline_s:
                raise NotIdleError(
                    f"queues still delivered messages after {report.rounds} rounds and "
                    f"{elapsed_s:.1f} s (max_rounds={max_rounds}, deadline_s={deadline_s}). "
                    "A handler may keep re-sending messages"
                )

    def start(self) -> None:
        """Start one background poller thread per enabled mapping (long polling)."""
        if self._threads:
            raise LocalRuntimeError("the pollers are already started")
        self._stop.clear()
        for mapping in self._enabled_mappings():
            thread = threading.Thread(
                target=self._poll_forever,
                args=(mapping,),
                name=f"sqs-poller-{mapping.logical_id}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        LOG.info("sqs pollers started", extra={"pollers": len(self._threads)})

    def _poll_forever(self, mapping: EventSourceMappingSpec) -> None:
        while not self._stop.is_set():
            try:
                self.poll(mapping, wait_seconds=self.poll_wait_seconds)
            except Exception as exc:
                LOG.error(
                    "sqs poller failed, retrying in 1 s",
                    extra={"mapping": mapping.logical_id, "error_type": type(exc).__name__},
                )
                self._stop.wait(1)

    def stop(self) -> None:
        """Stop the background pollers and wait for their current batch to finish."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        if self._threads:
            LOG.info("sqs pollers stopped", extra={"pollers": len(self._threads)})
        self._threads = []

    def close(self) -> None:
        """Stop the pollers and restore the process environment."""
        self.stop()
        self._restore_environment()

    # ------------------------------------------------------------------ schedules

    def list_schedules(self) -> list[ScheduleSpec]:
        return list(self.schedules)

    def _schedule(self, name_or_logical_id: str) -> ScheduleSpec:
        for schedule in self.schedules:
            if name_or_logical_id in (schedule.logical_id, schedule.name):
                return schedule
        known = sorted(schedule.logical_id for schedule in self.schedules)
        raise KeyError(f"no schedule is named {name_or_logical_id} (known: {known})")

    def _schedule_event(
        self, schedule: ScheduleSpec, target: ScheduleTarget, at: datetime | None = None
    ) -> tuple[Any, str]:
        """Return the event a target receives, parsed and as the text the service sends."""
        now = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if target.input is not None:
            text = target.input
            if schedule.kind == "scheduler":
                context_values = {
                    "<aws.scheduler.schedule-arn>": schedule.arn,
                    "<aws.scheduler.scheduled-time>": now,
                    "<aws.scheduler.execution-id>": str(uuid.uuid4()),
                    "<aws.scheduler.attempt-number>": "1",
                }
                for placeholder, value in context_values.items():
                    text = text.replace(placeholder, value)
            try:
                return json.loads(text), text
            except json.JSONDecodeError:
                return text, text

        # Scheduler's default payload carries detail as the string "{}", while EventBridge
        # scheduled rules send an empty object.
        scheduler = schedule.kind == "scheduler"
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler" if scheduler else "aws.events",
            "account": self.stack.pseudo.account_id,
            "time": now,
            "region": self.stack.region,
            "resources": [schedule.arn],
            "detail": "{}" if scheduler else {},
        }
        return event, json.dumps(event)

    def schedule_event(self, function_logical_id: str) -> Any:
        """Return the event that the schedule targeting the function would deliver now."""
        for schedule in self.schedules:
            for target in schedule.targets:
                try:
                    target_id = self.stack.function_logical_id(target.arn)
                except KeyError:
                    continue
                if target_id == function_logical_id:
                    return self._schedule_event(schedule, target)[0]
        raise KeyError(f"no schedule targets the function {function_logical_id}")

    def fire_schedule(self, name_or_logical_id: str, at: datetime | None = None) -> list[Any]:
        """Deliver the schedule's event to each target now and return the function results.

        The event's time is `at` when given, so that a test can fire the schedule for a moment
        that does not move past midnight while it runs. A function target is invoked
        in-process. A queue target gets the message in moto, and its result is None.
        """
        schedule = self._schedule(name_or_logical_id)
        results: list[Any] = []
        for target in schedule.targets:
            event, text = self._schedule_event(schedule, target, at)
            queue_logical_id = self.stack.queue_logical_id(target.arn)
            if queue_logical_id is not None:
                self._sqs.send_message(
                    QueueUrl=self.stack.queue_url(queue_logical_id), MessageBody=text
                )
                results.append(None)
                continue
            try:
                function_logical_id = self.stack.function_logical_id(target.arn)
            except KeyError:
                raise LocalRuntimeError(
                    f"schedule {schedule.logical_id}: target {target.arn} is neither a function "
                    "nor a queue of this template"
                ) from None
            LOG.info(
                "schedule fired",
                extra={"schedule": schedule.logical_id, "function": function_logical_id},
            )
            results.append(self.invoke(function_logical_id, event))
        return results

    # ------------------------------------------------------------------ clients

    def client(self, service: str) -> BaseClient:
        """Create a boto3 client for service against the local moto server."""
        return self.stack.client(service)
