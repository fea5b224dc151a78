"""The local stack as fault scenarios drive it: virtual time, settling, DLQ replay via the CLI.

Retries in AWS come after a message's visibility timeout or the delay a handler set. Several
product rules count on that gap: a stale delivery claim, an expired subscription lease and an
exposure claim are taken over only after a minute or more. The harness keeps those
gaps without waiting for them. The runtime leaves failed messages hidden (no visibility
override), the harness notes when each would come back in AWS (the handler's
ChangeMessageVisibility, else the queue's VisibilityTimeout), and once the queues are idle it
moves a virtual clock to the earliest of those times and makes the due messages visible. A
message a handler sends with DelaySeconds is held by the harness and sent when the virtual
clock reaches its delay.
The handlers read that clock: `VirtualClock.install()` rebinds `utc_now` in the product's
modules, so every `clock=utc_now` dependency built afterwards and every direct `utc_now()` call
sees the moved time. The Twilio emulator's clock moves with it, so that the creation times it
reports stay comparable with the handlers' times; the other emulators keep real time, so the
Stripe webhook route, which checks the signature's timestamp against its clock, keeps real
time too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from infra.local.runtime import LocalRuntime, SettledBatch
from infra.local.service import LocalService, clear_cached_dependencies

LOG = logging.getLogger(__name__)

FINAL_SMS_STATUSES = frozenset({"delivered", "undelivered", "failed"})
# Real seconds the harness waits for the emulators to drain and call back.
PROVIDER_DEADLINE_S = 30.0
DLQ_OUTPUT_SUFFIX = "DLQUrl"
_DELAY_KEY = "idsentry_chaos_delay"
# Modules that compare their clock with an emulator's real-time clock (a webhook signature's
# timestamp, valid for 300 s), so the virtual clock would make them reject the emulator.
REAL_TIME_MODULES = frozenset({"idsentry.routes.stripe_routes"})


class HarnessError(RuntimeError):
    """The stack did not settle within the harness's bounds."""


class VirtualClock:
    """The handlers' clock: real UTC time plus an offset that the harness moves forward."""

    def __init__(self) -> None:
        self.offset_s = 0.0
        self._patched: list[tuple[ModuleType, Any]] = []

    def now(self) -> datetime:
        """Return the virtual time, timezone-aware in UTC."""
        return datetime.now(UTC) + timedelta(seconds=self.offset_s)

    def epoch(self) -> float:
        """Return the virtual time in seconds since the Unix epoch."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        """Move the virtual time forward by `seconds`."""
        if seconds < 0:
            raise ValueError("the virtual clock moves forward only")
        self.offset_s += seconds

    def install(self) -> None:
        """Rebind `utc_now` to this clock in every loaded product and handler module.

        Modules imported later take the rebound name from idsentry.clock. Dependencies cached
        before this call keep the real clock, so the caller clears them afterwards.
        """
        import importlib

        import idsentry.clock

        # Imported now, so that they bind the real utc_now before idsentry.clock is rebound.
        for name in REAL_TIME_MODULES:
            importlib.import_module(name)
        original = idsentry.clock.utc_now
        for name, module in list(sys.modules.items()):
            if not name.startswith(("idsentry", "idsentry_local_fn_")) or module is None:
                continue
            if name in REAL_TIME_MODULES:
                continue
            if getattr(module, "utc_now", None) is original:
                self._patched.append((module, original))
                module.utc_now = self.now  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        """Restore the real `utc_now` everywhere install() rebound it."""
        for module, original in self._patched:
            module.utc_now = original  # type: ignore[attr-defined]
        self._patched.clear()


@dataclass
class _Hidden:
    """A failed message waiting, on the virtual clock, until it would come back in AWS."""

    queue_url: str
    receipt_handle: str
    due: float


@dataclass
class _Delayed:
    """A message a handler sent with DelaySeconds, held until the virtual clock reaches `due`."""

    queue_url: str
    body: str
    due: float


class _EmptyBody:
    def stream(self, **_: Any) -> Any:
        yield b""


@dataclass
class SettleReport:
    """Counts of one settle() call."""

    passes: int = 0
    received: int = 0
    released: int = 0
    virtual_seconds: float = 0.0


@dataclass
class FaultStack:
    """A started LocalService prepared for fault scenarios (see the module docstring).

    `state_file` is the service's state file, which the `idsentry` CLI reads to replay DLQs.
    """

    service: LocalService
    state_file: Path
    clock: VirtualClock = field(default_factory=VirtualClock)
    # Deliveries of each message id to a handler, across every settle() call.
    deliveries: Counter[str] = field(default_factory=Counter)
    _hidden: dict[str, _Hidden] = field(default_factory=dict)
    _delayed: list[_Delayed] = field(default_factory=list)
    _deferrals: dict[str, int] = field(default_factory=dict)
    _visibility: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def runtime(self) -> LocalRuntime:
        assert self.service.stack is not None
        return self.service.stack.runtime

    def start(self) -> FaultStack:
        """Install the virtual clock, observe batches and leave failed messages hidden."""
        from idsentry.adapters import aws

        self.clock.install()
        # Dependencies built from now on capture the virtual clock, and fresh clients carry
        # the hooks installed below.
        clear_cached_dependencies()
        self.runtime.visibility_timeout_override = None
        self.runtime.add_batch_observer(self._settled)
        sqs = aws.client("sqs")
        for operation in ("ChangeMessageVisibility", "ChangeMessageVisibilityBatch"):
            sqs.meta.events.register(
                f"before-parameter-build.sqs.{operation}",
                self._note_deferral,
                unique_id=f"idsentry-chaos-{operation}",
            )
        sqs.meta.events.register(
            "before-parameter-build.sqs.SendMessage",
            self._note_delay,
            unique_id="idsentry-chaos-delay",
        )
        sqs.meta.events.register(
            "before-call.sqs.SendMessage", self._hold_delayed, unique_id="idsentry-chaos-hold"
        )
        for mapping in self.runtime.mappings:
            attributes = self.runtime.client("sqs").get_queue_attributes(
                QueueUrl=mapping.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            self._visibility[mapping.queue_url] = int(attributes["VisibilityTimeout"])
        return self

    def close(self) -> None:
        """Remove the observer and restore the real clock."""
        self.runtime.remove_batch_observer(self._settled)
        self.clock.uninstall()
        clear_cached_dependencies()

    # ------------------------------------------------------------------ virtual retries

    def _note_deferral(self, params: dict[str, Any], **_: Any) -> None:
        entries = params.get("Entries") or [params]
        with self._lock:
            for entry in entries:
                self._deferrals[str(entry["ReceiptHandle"])] = int(entry["VisibilityTimeout"])

    def _note_delay(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if params.get("DelaySeconds"):
            context[_DELAY_KEY] = params

    def _hold_delayed(
        self, context: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        """Hold a message sent with DelaySeconds until its delay passes; return SQS's response."""
        params = context.get(_DELAY_KEY)
        if params is None:
            return None
        text = str(params["MessageBody"])
        due = self.clock.epoch() + int(params["DelaySeconds"])
        with self._lock:
            self._delayed.append(_Delayed(str(params["QueueUrl"]), text, due))
        parsed = {
            "MessageId": str(uuid.uuid4()),
            "MD5OfMessageBody": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324 (SQS's)
            "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}},
        }
        return AWSResponse("https://127.0.0.1/", 200, {}, _EmptyBody()), parsed

    def _settled(self, batch: SettledBatch) -> None:
        now = self.clock.epoch()
        with self._lock:
            for message_id in batch.message_ids:
                self.deliveries[message_id] += 1
                self._hidden.pop(message_id, None)
            for message_id, receipt in batch.failed_receipts.items():
                wait = self._deferrals.pop(receipt, None)
                if wait is None:
                    wait = self._visibility.get(batch.queue_url, 30)
                self._hidden[message_id] = _Hidden(batch.queue_url, receipt, now + wait)

    def advance(self, seconds: float) -> None:
        """Move the virtual clock and the Twilio emulator's clock forward by `seconds`."""
        self.clock.advance(seconds)
        if self.service.twilio is not None:
            self.service.twilio.advance_clock(seconds)

    def hidden_count(self) -> int:
        """Return how many messages wait on the virtual clock: failed ones and delayed sends."""
        with self._lock:
            return len(self._hidden) + len(self._delayed)

    def _release_due(self) -> int:
        """Move the clock to the earliest retry or delayed send, and release all due by then."""
        with self._lock:
            waiting = [hidden.due for hidden in self._hidden.values()]
            waiting += [delayed.due for delayed in self._delayed]
            if not waiting:
                return 0
            wait = min(waiting) - self.clock.epoch()
            if wait > 0:
                self.advance(wait)
            now = self.clock.epoch()
            due = {key: value for key, value in self._hidden.items() if value.due <= now}
            for message_id in due:
                del self._hidden[message_id]
            sends = [delayed for delayed in self._delayed if delayed.due <= now]
            self._delayed = [delayed for delayed in self._delayed if delayed.due > now]

        sqs = self.runtime.client("sqs")
        for delayed in sends:
            sqs.send_message(QueueUrl=delayed.queue_url, MessageBody=delayed.body)
        for hidden in due.values():
            try:
                sqs.change_message_visibility(
                    QueueUrl=hidden.queue_url,
                    ReceiptHandle=hidden.receipt_handle,
                    VisibilityTimeout=0,
                )
            except ClientError as exc:
                # The message came back by itself (its real timeout passed) and was received.
                LOG.info(
                    "retry release skipped", extra={"error_code": exc.response["Error"]["Code"]}
                )
        return len(due) + len(sends)

    # ------------------------------------------------------------------ settling

    def settle(self, max_passes: int = 200) -> SettleReport:
        """Run the queues, the emulators and the retries until nothing is left to do.

        Failed messages come back in the order and at the virtual times AWS would return them,
        until they succeed or their redrive policy moves them to a DLQ.
        """
        report = SettleReport()
        started = self.clock.offset_s
        while report.passes < max_passes:
            report.passes += 1
            report.received += self.runtime.run_until_idle(max_rounds=500, deadline_s=120).received
            before = self._provider_activity()
            self.wait_for_providers()
            if self._provider_activity() != before:
                # Callbacks and webhooks may have queued work.
                again = self.runtime.run_until_idle(max_rounds=500, deadline_s=120).received
                report.received += again
                if again:
                    continue
            released = self._release_due()
            if not released:
                report.virtual_seconds = self.clock.offset_s - started
                return report
            report.released += released
        raise HarnessError(f"the stack did not settle within {max_passes} passes")

    def _provider_activity(self) -> tuple[int, ...]:
        """Return counts that change when an emulator sends a callback or a webhook."""
        assert self.service.twilio is not None
        callbacks = sum(self.service.twilio.callback_counts().values())
        shim = self.service.stripe_shim
        webhooks = len(shim.deliveries()) if shim is not None else 0
        return callbacks, webhooks

    def wait_for_providers(self, deadline_s: float = PROVIDER_DEADLINE_S) -> None:
        """Wait until the Twilio emulator has drained and called back, and Stripe has delivered."""
        twilio = self.service.twilio
        assert twilio is not None
        give_up = time.monotonic() + deadline_s
        while True:
            waiting = [
                message
                for message in twilio.messages()
                if message["status"] not in FINAL_SMS_STATUSES and not message["held_for_review"]
            ]
            if not waiting and twilio.wait_for_callbacks(0.05):
                break
            if time.monotonic() > give_up:
                raise HarnessError(f"{len(waiting)} SMS still queued after {deadline_s:.0f} s")
            time.sleep(0.02)
        if self.service.stripe_shim is not None:
            self.service.stripe_shim.flush()

    # ------------------------------------------------------------------ dead-letter queues

    def dead_letter_queues(self) -> dict[str, str]:
        """Return every DLQ of the stack by queue name, from the state file's outputs."""
        outputs = json.loads(self.state_file.read_text("utf-8"))["outputs"]
        return {
            url.rsplit("/", 1)[-1]: url
            for name, url in outputs.items()
            if name.endswith(DLQ_OUTPUT_SUFFIX)
        }

    def dead_letter_depths(self) -> dict[str, int]:
        """Return the number of messages in each DLQ that contains any."""
        sqs = self.runtime.client("sqs")
        depths = {}
        for name, url in self.dead_letter_queues().items():
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            count = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
            if count:
                depths[name] = count
        return depths

    def replay_dead_letters(self, run_cli: Callable[[list[str]], Any] | None = None) -> int:
        """Replay every non-empty DLQ with `idsentry dlq replay`; return how many messages moved."""
        run = run_cli or self.run_cli
        moved = 0
        for name in self.dead_letter_depths():
            document = run(["--json", "dlq", "replay", name])
            moved += int(document["moved"])
        return moved

    def run_cli(self, arguments: list[str]) -> Any:
        """Run the `idsentry` CLI against this stack and return its JSON output."""
        from click.testing import CliRunner

        from idsentry_cli.main import cli

        runner = CliRunner(env={"IDSENTRY_LOCAL_STATE": str(self.state_file)})
        result = runner.invoke(cli, arguments, prog_name="idsentry")
        if result.exit_code != 0:
            raise HarnessError(f"idsentry {' '.join(arguments)} failed: {result.output}")
        return json.loads(result.stdout)
