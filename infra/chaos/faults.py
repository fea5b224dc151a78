"""Fault injectors of the reliability suite: AWS errors and partial batches, provider faults, crashes.

Every injector is a context manager. Entering it arms the fault, leaving it heals the fault, and
the object it yields counts the faults it actually injected (`injected`), which is the figure a
scenario records. A scenario reads: inject, run the flow, heal, run until idle, replay the DLQs,
check the end state.

AWS faults attach botocore event handlers to one client, normally a process-wide client of
`idsentry.adapters.aws` that the handlers in the local runtime use. They return their response
before any request is sent, so botocore's own retries never see them. An injected throttling
error is therefore one that reached the product, as after botocore gave up. Unless `any_thread` is set, a fault
applies only to calls from the thread that armed it, which is the thread that runs
`run_until_idle`; webhook handlers served by the local HTTP API on other threads are left alone.

Provider faults arm the Twilio emulator and the Stripe shim and count through their
`injected_faults()`. Crashes after part of a batch are armed on the local runtime
(`LocalRuntime.crash_after_records`); a Lambda timeout at a chosen call is `stop_invocation`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from infra.local.emulators.stripe_shim import StripeShim
from infra.local.emulators.twilio import TwilioEmulator
from infra.local.runtime import InvocationStopped, LocalRuntime, SettledBatch

LOG = logging.getLogger(__name__)

Params = Mapping[str, Any]
Match = Callable[[Params], bool]

DYNAMODB_THROTTLING = "ProvisionedThroughputExceededException"
# DynamoDB's error for requests over the table's or account's request rate (on-demand tables).
DYNAMODB_REQUEST_THROTTLING = "ThrottlingException"
# SES v2 returns HTTP 429 TooManyRequestsException when the sending rate is exceeded.
SES_THROTTLING = "TooManyRequestsException"
_CONTEXT_KEY = "idsentry_chaos"


def _service_id(client: Any) -> str:
    return str(client.meta.service_model.service_id.hyphenize())


def _operations(operations: str | Iterable[str]) -> tuple[str, ...]:
    return (operations,) if isinstance(operations, str) else tuple(operations)


class _EmptyBody:
    """The raw body of a response made up by a fault: botocore reads it through stream()."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


@dataclass
class AwsErrorFault:
    """Fail `count` matching calls of `operations` with an AWS error response.

    With `every` above 1, only every `every`-th matching call fails, which spreads the faults
    over a whole flow instead of spending them on its first calls.
    """

    client: Any
    operations: tuple[str, ...]
    count: int
    code: str
    status: int = 400
    message: str = "The request rate is too high (injected by the reliability suite)."
    match: Match | None = None
    any_thread: bool = False
    every: int = 1
    injected: int = 0
    matched: int = 0
    _thread: int = field(default_factory=threading.get_ident)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _unique: str = field(default_factory=lambda: uuid.uuid4().hex)

    def install(self) -> None:
        """Register the handlers on the client's event system."""
        service = _service_id(self.client)
        for operation in self.operations:
            self.client.meta.events.register(
                f"before-parameter-build.{service}.{operation}",
                self._decide,
                unique_id=f"{self._unique}-decide-{operation}",
            )
            self.client.meta.events.register(
                f"before-call.{service}.{operation}",
                self._respond,
                unique_id=f"{self._unique}-respond-{operation}",
            )

    def remove(self) -> None:
        """Unregister the handlers; calls after this reach the server again."""
        service = _service_id(self.client)
        for operation in self.operations:
            self.client.meta.events.unregister(
                f"before-parameter-build.{service}.{operation}",
                unique_id=f"{self._unique}-decide-{operation}",
            )
            self.client.meta.events.unregister(
                f"before-call.{service}.{operation}",
                unique_id=f"{self._unique}-respond-{operation}",
            )

    def _decide(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if not self.any_thread and threading.get_ident() != self._thread:
            return
        if self.match is not None and not self.match(params):
            return
        with self._lock:
            self.matched += 1
            if self.injected >= self.count or self.matched % self.every:
                return
            self.injected += 1
        context.setdefault(_CONTEXT_KEY, set()).add(self._unique)

    def _respond(
        self, model: Any, context: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self._unique not in context.get(_CONTEXT_KEY, ()):
            return None
        LOG.warning(
            "aws error injected",
            extra={"operation": model.name, "error_code": self.code, "injected": self.injected},
        )
        response = AWSResponse("https://127.0.0.1/", self.status, {}, _EmptyBody())
        parsed = {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": self.status, "HTTPHeaders": {}},
        }
        return response, parsed


@contextmanager
def aws_errors(
    client: Any,
    operations: str | Iterable[str],
    count: int,
    *,
    code: str,
    status: int = 400,
    match: Match | None = None,
    any_thread: bool = False,
    every: int = 1,
) -> Iterator[AwsErrorFault]:
    """Fail the next `count` calls of `operations` with error `code`, and heal on exit.

    `match` gets each call's API parameters (as the caller passed them) and picks the calls to
    fail, for example the writes to one partition. `every` fails only every n-th of them.
    """
    fault = AwsErrorFault(
        client,
        _operations(operations),
        count,
        code,
        status,
        match=match,
        any_thread=any_thread,
        every=every,
    )
    fault.install()
    try:
        yield fault
    finally:
        fault.remove()


def dynamodb_throttling(
    client: Any,
    operations: str | Iterable[str],
    count: int,
    *,
    code: str = DYNAMODB_THROTTLING,
    match: Match | None = None,
    every: int = 1,
) -> Any:
    """Throttle `count` DynamoDB calls of `operations` (ProvisionedThroughputExceeded)."""
    return aws_errors(client, operations, count, code=code, match=match, every=every)


def ses_throttling(client: Any, count: int) -> Any:
    """Throttle the next `count` SES v2 SendEmail calls with HTTP 429 TooManyRequestsException."""
    return aws_errors(client, "SendEmail", count, code=SES_THROTTLING, status=429)


@dataclass
class UnprocessedFault:
    """Leave half of each of `count` batch requests unprocessed, as DynamoDB may.

    The withheld writes are not sent and the withheld keys are not read. The response names
    them in `UnprocessedItems` or `UnprocessedKeys`, as DynamoDB does under load. A request of
    one item cannot be split and is left alone. `every` splits only every n-th request.
    """

    client: Any
    count: int
    every: int = 1
    injected: int = 0
    matched: int = 0
    items_withheld: int = 0
    _thread: int = field(default_factory=threading.get_ident)
    _unique: str = field(default_factory=lambda: uuid.uuid4().hex)

    def _events(self) -> list[tuple[str, Callable[..., Any]]]:
        service = _service_id(self.client)
        return [
            (f"before-parameter-build.{service}.BatchWriteItem", self._withhold_writes),
            (f"after-call.{service}.BatchWriteItem", self._report_writes),
            (f"before-parameter-build.{service}.BatchGetItem", self._withhold_keys),
            (f"after-call.{service}.BatchGetItem", self._report_keys),
        ]

    def install(self) -> None:
        """Register the handlers on the client's event system."""
        for index, (event, handler) in enumerate(self._events()):
            self.client.meta.events.register(event, handler, unique_id=f"{self._unique}-{index}")

    def remove(self) -> None:
        """Unregister the handlers."""
        for index, (event, _) in enumerate(self._events()):
            self.client.meta.events.unregister(event, unique_id=f"{self._unique}-{index}")

    def _take(self, size: int) -> bool:
        if threading.get_ident() != self._thread or size < 2 or self.injected >= self.count:
            return False
        self.matched += 1
        if self.matched % self.every:
            return False
        self.injected += 1
        return True

    def _withhold_writes(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        requests = params.get("RequestItems") or {}
        if not self._take(sum(len(writes) for writes in requests.values())):
            return
        withheld: dict[str, list[Any]] = {}
        for table, writes in requests.items():
            keep = max(1, len(writes) // 2)
            if writes[keep:]:
                withheld[table] = writes[keep:]
                requests[table] = writes[:keep]
        self.items_withheld += sum(len(writes) for writes in withheld.values())
        context[f"{_CONTEXT_KEY}-writes"] = withheld

    def _report_writes(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        withheld = context.get(f"{_CONTEXT_KEY}-writes")
        if not withheld or "Error" in parsed:
            return
        unprocessed = parsed.setdefault("UnprocessedItems", {})
        for table, writes in withheld.items():
            unprocessed.setdefault(table, []).extend(writes)

    def _withhold_keys(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        requests = params.get("RequestItems") or {}
        if not self._take(sum(len(request.get("Keys", [])) for request in requests.values())):
            return
        withheld: dict[str, dict[str, Any]] = {}
        for table, request in requests.items():
            keys = request.get("Keys", [])
            keep = max(1, len(keys) // 2)
            if keys[keep:]:
                withheld[table] = {**request, "Keys": keys[keep:]}
                request["Keys"] = keys[:keep]
        self.items_withheld += sum(len(request["Keys"]) for request in withheld.values())
        context[f"{_CONTEXT_KEY}-keys"] = withheld

    def _report_keys(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        withheld = context.get(f"{_CONTEXT_KEY}-keys")
        if not withheld or "Error" in parsed:
            return
        unprocessed = parsed.setdefault("UnprocessedKeys", {})
        for table, request in withheld.items():
            unprocessed[table] = request


@contextmanager
def unprocessed_items(client: Any, count: int, every: int = 1) -> Iterator[UnprocessedFault]:
    """Leave part of `count` BatchWriteItem or BatchGetItem requests unprocessed."""
    fault = UnprocessedFault(client, count, every)
    fault.install()
    try:
        yield fault
    finally:
        fault.remove()


@dataclass
class StopFault:
    """End the invocation at a chosen call, as Lambda ends one that reached its timeout.

    The first matching call raises InvocationStopped instead of reaching the server. Until the
    runtime has settled that batch, every later call on the client from the same thread raises
    too, so cleanup code (a `finally` that frees a lease) cannot run, as it cannot when Lambda
    stops a process.
    """

    runtime: LocalRuntime
    client: Any
    operation: str
    match: Match | None
    times: int = 1
    injected: int = 0
    _stopped_thread: int | None = None
    _thread: int = field(default_factory=threading.get_ident)
    _unique: str = field(default_factory=lambda: uuid.uuid4().hex)

    def install(self) -> None:
        """Register the handler on the client and the batch observer on the runtime."""
        self.client.meta.events.register(
            f"before-parameter-build.{_service_id(self.client)}",
            self._check,
            unique_id=self._unique,
        )
        self.runtime.add_batch_observer(self._settled)

    def remove(self) -> None:
        """Unregister the handler and the observer."""
        self.client.meta.events.unregister(
            f"before-parameter-build.{_service_id(self.client)}", unique_id=self._unique
        )
        self.runtime.remove_batch_observer(self._settled)

    def _check(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        thread = threading.get_ident()
        if self._stopped_thread == thread:
            raise InvocationStopped("the invocation already timed out")
        if thread != self._thread or model.name != self.operation or self.injected >= self.times:
            return
        if self.match is not None and not self.match(params):
            return
        self.injected += 1
        self._stopped_thread = thread
        LOG.warning("invocation timeout injected", extra={"operation": model.name})
        raise InvocationStopped(f"timed out at {model.name}")

    def _settled(self, batch: SettledBatch) -> None:
        if batch.stopped:
            self._stopped_thread = None


@contextmanager
def stop_invocation(
    runtime: LocalRuntime, client: Any, operation: str, match: Match | None = None, times: int = 1
) -> Iterator[StopFault]:
    """Time out the invocation that makes the next matching `operation` call, `times` times."""
    fault = StopFault(runtime, client, operation, match, times)
    fault.install()
    try:
        yield fault
    finally:
        fault.remove()


@dataclass
class CrashFault:
    """Crashes after part of a batch, armed on the local runtime for one function."""

    runtime: LocalRuntime
    function: str
    armed: int
    injected: int = 0


@contextmanager
def crash_after_records(
    runtime: LocalRuntime, function: str, records: int, times: int = 1
) -> Iterator[CrashFault]:
    """Crash the function's next `times` batches after their first `records` records."""
    runtime.crash_after_records(function, records, times)
    fault = CrashFault(runtime, function, times)
    try:
        yield fault
    finally:
        fault.injected = fault.armed - runtime.pending_crashes(function)
        runtime.cancel_crashes()


@dataclass
class ProviderFault:
    """Faults armed on an emulator; `injected` is what it counted between arming and healing."""

    kinds: tuple[str, ...]
    injected: int = 0


def _delta(before: Mapping[Any, int], after: Mapping[Any, int], kinds: Iterable[Any]) -> int:
    return sum(after.get(kind, 0) - before.get(kind, 0) for kind in kinds)


@contextmanager
def twilio_errors(twilio: TwilioEmulator, count: int, status: int) -> Iterator[ProviderFault]:
    """Fail the next `count` message creates with 429 (20429, too many requests) or a 5xx."""
    fault = ProviderFault((f"http_{status}",))
    before = twilio.injected_faults()
    twilio.fail_next_creates(count, status)
    try:
        yield fault
    finally:
        twilio.fail_next_creates(0, status)
        fault.injected = _delta(before, twilio.injected_faults(), fault.kinds)


@contextmanager
def twilio_stalls(
    twilio: TwilioEmulator, count: int, seconds: float, *, created: bool
) -> Iterator[ProviderFault]:
    """Hold the next `count` create responses past the client's timeout; see stall_next_creates."""
    fault = ProviderFault(("stall" if created else "stall_dropped",))
    before = twilio.injected_faults()
    twilio.stall_next_creates(count, seconds, created=created)
    try:
        yield fault
    finally:
        twilio.stall_next_creates(0, seconds)
        fault.injected = _delta(before, twilio.injected_faults(), fault.kinds)


@contextmanager
def twilio_queue_overflow(twilio: TwilioEmulator, count: int) -> Iterator[ProviderFault]:
    """Overflow the sender queue on the next `count` creates (21611, or 30001 after creation)."""
    fault = ProviderFault(("overflow",))
    before = twilio.injected_faults()
    twilio.overflow_next_creates(count)
    try:
        yield fault
    finally:
        twilio.overflow_next_creates(0)
        fault.injected = _delta(before, twilio.injected_faults(), fault.kinds)


@contextmanager
def stripe_errors(
    shim: StripeShim, count: int, status: int, route: str | None = None
) -> Iterator[ProviderFault]:
    """Fail the next `count` Stripe API requests of `route` with 429 or 500."""
    fault = ProviderFault((str(status),))
    before = shim.injected_faults()
    shim.fail_next(count, status, route)
    try:
        yield fault
    finally:
        after = shim.injected_faults()
        fault.injected = after.get(status, 0) - before.get(status, 0)
        # Failures not used up would fail later requests, so they are disarmed.
        shim.clear_failures()
