"""Notification throughput under the Twilio emulator's rate limit: alerts sent by SMS and e-mail.

The bench seeds confirmed alerts with the product's own crypto helpers and adapters: subscriber
profile, identifiers, data key, exposure, alert and breach record. It puts one `AlertJob` per
alert on the notification queue, and several worker processes consume the queue as concurrent
notifier Lambda instances would (`notify_worker.py`). Each worker receives batches the size of
the template's event source mapping, calls `process_job` on every job, deletes the jobs that
finished and hands the others back to the queue for a retry.

The workers call `process_job` rather than the notifier's handler for two reasons. The handler
builds its dependencies with the real clock, while the bench's clock is fixed at 10:00 in
Asia/Shanghai, so that quiet hours never hold an SMS back, whatever the time of the run. And the
local runtime polls each queue from one thread of the bench process, which also serves the HTTP
API and the emulators, so it cannot run instances side by side. moto runs in a process of its
own (`infra.local.moto_app`), so that its work has a core of its own.

The main figure is the number of segments that the Twilio emulator delivered per second, from
the first message it accepted to the last one it delivered, against the emulator's configured
rate. The others count duplicates and losses per channel and the ledger state of every message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from infra.bench.request_counts import BenchFailedError
from infra.bench.service import BENCH_PARAMETERS
from infra.bench.workload import IdentityFactory
from infra.local.service import LocalService

if TYPE_CHECKING:
    from idsentry.crypto import Pepper

NOTIFIER_FUNCTION = "NotifierFunction"
DEFAULT_ALERTS = 1000
# Lambda's SQS event source starts with five concurrent pollers, each invoking one instance.
DEFAULT_WORKERS = 5
DEFAULT_SEGMENTS_PER_SECOND = 10.0
RATE_TARGET = 0.9
# Both severities get an SMS and an e-mail, and the bench alternates them.
SEVERITIES = ("high", "critical")
FINAL_SMS_STATUSES = frozenset({"delivered", "undelivered", "failed"})
WORKER = Path(__file__).resolve().with_name("notify_worker.py")
WORKER_START_DEADLINE_S = 120.0
WORKER_STOP_DEADLINE_S = 30.0
SETTLE_DEADLINE_S = 60.0
# Time allowed beyond the ideal drain time of the seeded SMS before the bench gives up.
DRAIN_GRACE_S = 120.0
# The workers' deadline: a fixed part plus a generous time per job.
PROCESSING_DEADLINE_S = 60.0
PROCESSING_S_PER_JOB = 0.5
# The key table has no sort key, so its items go out as raw BatchWriteItem requests.
KEY_WRITES_PER_BATCH = 25
BREACH_NAME = "BenchNotifyShop"
# The identifiers each exposure matched. The alert names the ID number, and the SMS window
# is keyed by the mobile number's fingerprint.
MATCHED_KINDS = ("id_number", "mobile")
BREACH_MODEL = {
    "Name": BREACH_NAME,
    "Title": "Bench Notify Shop",
    "Domain": "shop.example.com",
    "BreachDate": "2026-10-01",
    "AddedDate": "2026-11-01T00:00:00Z",
    "ModifiedDate": "2026-11-01T00:00:00Z",
    "PwnCount": 1000,
    "Description": "A made-up breach for the notification bench.",
    "DataClasses": ["Names", "Government issued IDs", "Phone numbers", "Email addresses"],
    "IsVerified": True,
}
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class SeededAlert:
    """One confirmed alert of one seeded subscriber, with the addresses the bench checks."""

    subscriber_id: str
    alert_id: str
    severity: str
    mobile: str
    email: str
    job: Any


@dataclass
class JobTally:
    """The events that the worker processes reported, gathered by the reader threads."""

    expected: set[str]
    outcomes: dict[str, str] = field(default_factory=dict)
    receives: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    ready: int = 0
    first_receive_s: float | None = None
    last_outcome_s: float | None = None
    first_send_s: float | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, event: dict[str, Any]) -> None:
        """Apply one event line of a worker process."""
        with self.changed:
            kind = event.get("event")
            if kind == "ready":
                self.ready += 1
            elif kind == "received":
                self.receives[event["job_id"]] += 1
                self.first_receive_s = _earliest(self.first_receive_s, event["at"])
            elif kind == "settled":
                self.outcomes.setdefault(event["job_id"], event["outcome"])
                self.last_outcome_s = max(self.last_outcome_s or 0.0, event["at"])
            elif kind == "retry":
                self.retries[event["error"]] += 1
            elif kind == "first_send":
                self.first_send_s = _earliest(self.first_send_s, event["at"])
            self.changed.notify_all()

    @property
    def finished(self) -> bool:
        return self.expected <= self.outcomes.keys()


def _earliest(current: float | None, candidate: float) -> float:
    return candidate if current is None else min(current, candidate)


@dataclass
class NotificationResult:
    """Every figure of one notification run."""

    alerts: int
    workers: int
    batch_size: int
    segments_per_second: float
    seed_s: float
    processing_s: float
    drain_s: float
    segments: int
    counted_segments: int
    sms_messages: int
    sms_delivered: int
    sms_statuses: Counter[str]
    segments_per_message: Counter[int]
    encodings: Counter[str]
    sms_duplicates: int
    sms_lost: int
    email_messages: int
    email_duplicates: int
    email_lost: int
    ledger_not_sent: int
    load_average: float
    outcomes: Counter[str]
    redeliveries: int
    retries: Counter[str]

    @property
    def rate(self) -> float:
        """Segments delivered per second, from the first accepted message to the last delivery."""
        return self.counted_segments / self.drain_s if self.drain_s > 0 else 0.0

    @property
    def ratio(self) -> float:
        return self.rate / self.segments_per_second


def bench_moment(day: date | None = None) -> datetime:
    """Return 10:00 in Asia/Shanghai on `day` (default: today there), in UTC."""
    day = day or datetime.now(SHANGHAI).date()
    return datetime.combine(day, time_of_day(10, 0), SHANGHAI).astimezone(UTC)


def seed_alerts(service: LocalService, count: int, now: int) -> list[SeededAlert]:
    """Write `count` subscribers, each with one confirmed high or critical alert, and the breach.

    Every subscriber has a new mobile number and e-mail address, a data key wrapped by KMS, and
    the items the notifier reads: profile, preferences, the ID number and mobile identifiers,
    exposure and alert. The items go out through BatchWriteItem, because the signup path takes
    seconds per subscriber.
    """
    from idsentry.adapters.batch import BatchTable
    from idsentry.adapters.keys import DataKeyStore
    from idsentry.crypto import Pepper
    from idsentry.identifiers import canonical_email, canonical_id_number, canonical_mobile
    from idsentry.models.jobs import AlertJob
    from idsentry.services.alerts import alert_id_for
    from idsentry.services.hibp_catalogue import breach_item
    from idsentry.settings import CoreSettings, load_settings

    assert service.stack is not None
    runtime = service.stack.runtime
    settings = load_settings(CoreSettings)
    dynamodb = runtime.client("dynamodb")
    pepper = Pepper.from_secret(service.pepper)
    # A store of its own, so that the notifier's stores start without these keys cached.
    keys = DataKeyStore(
        settings.key_table_name, settings.data_key_arn, dynamodb=dynamodb, kms=runtime.client("kms")
    )
    factory = IdentityFactory()
    run = uuid.uuid4().hex[:8]

    items: list[dict[str, Any]] = [breach_item(BREACH_MODEL)]
    wrapped_keys: list[dict[str, Any]] = []
    seeded: list[SeededAlert] = []
    for index in range(count):
        identity = factory.new()
        subscriber_id = f"sbr_bench{run}{index:06d}"
        # The factory's numbers start with 138. The seeded ones start with 199, so no seeded
        # number is one that a bench signup used, in its SMS window or at the emulator.
        identifiers = {
            "mobile": canonical_mobile("+86199" + identity.mobile.removeprefix("+86138")),
            "email": canonical_email(f"notify-{run}-{index}@example.com"),
            "id_number": canonical_id_number(identity.id_number),
        }
        data_key, key_write = keys.prepare(subscriber_id)
        wrapped_keys.append(key_write.body["Item"])
        keys.forget(subscriber_id)

        severity = SEVERITIES[index % len(SEVERITIES)]
        alert_id = alert_id_for(subscriber_id, BREACH_NAME)
        items.extend(
            _subscriber_items(subscriber_id, data_key, identifiers, pepper, severity, alert_id, now)
        )
        job = AlertJob(
            job_id=f"job_{alert_id}",
            subscriber_id=subscriber_id,
            alert_id=alert_id,
            breach_name=BREACH_NAME,
        )
        seeded.append(
            SeededAlert(
                subscriber_id=subscriber_id,
                alert_id=alert_id,
                severity=severity,
                mobile=identifiers["mobile"],
                email=identifiers["email"],
                job=job,
            )
        )

    for start in range(0, len(wrapped_keys), KEY_WRITES_PER_BATCH):
        chunk = wrapped_keys[start : start + KEY_WRITES_PER_BATCH]
        response = dynamodb.batch_write_item(
            RequestItems={
                settings.key_table_name: [{"PutRequest": {"Item": item}} for item in chunk]
            }
        )
        if response.get("UnprocessedItems"):
            raise BenchFailedError("the key table left data keys of seeded subscribers unwritten")
    BatchTable(settings.table_name, dynamodb).put_many(items)
    return seeded


def _subscriber_items(
    subscriber_id: str,
    data_key: bytes,
    identifiers: dict[str, str],
    pepper: Pepper,
    severity: str,
    alert_id: str,
    now: int,
) -> list[dict[str, Any]]:
    """Return the main-table items of one subscriber with a confirmed alert, as signup writes them."""
    from idsentry.crypto import encrypt_field
    from idsentry.identifiers import IdentifierKind, mask

    pk = f"SUB#{subscriber_id}"
    profile = {
        "pk": pk,
        "sk": "PROFILE",
        "subscriber_id": subscriber_id,
        "status": "active",
        "plan": "monthly",
        "locale": "zh-CN",
        "monitored": True,
        "mobile_enc": encrypt_field(data_key, subscriber_id, identifiers["mobile"]),
        "email_enc": encrypt_field(data_key, subscriber_id, identifiers["email"]),
        "email_fp": str(pepper.fingerprint("email", identifiers["email"])),
        "email_confirmed_at": now,
        "created_at": now,
    }
    preferences = {"pk": pk, "sk": "PREFS", "timezone": "Asia/Shanghai", "created_at": now}
    identifier_items = [
        {
            "pk": pk,
            "sk": f"IDENT#{kind}",
            "kind": kind,
            "fingerprints": {fp.version: fp.value for fp in pepper.fingerprints(kind, value)},
            "value_enc": encrypt_field(data_key, subscriber_id, value),
            "masked": mask(IdentifierKind(kind), value),
            "confirmed": True,
            "added_at": now,
        }
        for kind, value in identifiers.items()
        if kind in MATCHED_KINDS
    ]
    exposure = {
        "pk": pk,
        "sk": f"EXPOSURE#{BREACH_NAME}",
        "breach_name": BREACH_NAME,
        "found_by": "dataset",
        "found_at": now,
        "matched_kinds": set(MATCHED_KINDS),
        "announced": True,
    }
    alert = {
        "pk": pk,
        "sk": f"ALERT#{BREACH_NAME}",
        "alert_id": alert_id,
        "breach_name": BREACH_NAME,
        "severity": severity,
        "confidence": "high",
        "severity_rule": "bench",
        "confidence_rule": "bench",
        "status": "confirmed",
        "created_at": now,
    }
    return [profile, preferences, *identifier_items, exposure, alert]


@contextmanager
def pollers_paused(service: LocalService) -> Iterator[None]:
    """Stop the runtime's queue pollers, so that only the bench's workers take notification jobs.

    The pollers restart afterwards when the service runs them (`background=True`).
    """
    assert service.stack is not None
    runtime = service.stack.runtime
    runtime.stop()
    try:
        yield
    finally:
        if service.background:
            runtime.start()


def wait_until_drained(service: LocalService, deadline_s: float = SETTLE_DEADLINE_S) -> None:
    """Wait until the emulator has no message left to drain and no status callback to send."""
    assert service.twilio is not None
    give_up = time.monotonic() + deadline_s
    while True:
        waiting = [
            message
            for message in service.twilio.messages()
            if message["status"] not in FINAL_SMS_STATUSES and not message["held_for_review"]
        ]
        if not waiting and service.twilio.wait_for_callbacks(0.1):
            return
        if time.monotonic() > give_up:
            raise BenchFailedError(
                f"the Twilio emulator still had {len(waiting)} messages to drain, or status "
                f"callbacks to send, after {deadline_s:.0f} s"
            )
        time.sleep(0.1)


def _wait_for_delivery(
    service: LocalService, mobiles: set[str], segments_per_second: float
) -> tuple[list[dict[str, Any]], float]:
    """Return the messages to `mobiles` once none is left to drain, and when that was seen.

    The polls come closer together as the queue shortens, so that the time returned is at
    most about 10 ms after the last delivery. Between polls the emulator's lock is free.
    """
    assert service.twilio is not None
    give_up: float | None = None
    while True:
        messages = [message for message in service.twilio.messages() if message["to"] in mobiles]
        observed = time.monotonic()
        waiting = [
            message
            for message in messages
            if message["status"] not in FINAL_SMS_STATUSES and not message["held_for_review"]
        ]
        if not waiting:
            return messages, observed

        drain_s = sum(message["num_segments"] for message in waiting) / segments_per_second
        if give_up is None:
            give_up = observed + drain_s + DRAIN_GRACE_S
        if observed > give_up:
            raise BenchFailedError(
                f"{len(waiting)} alert SMS were still queued at the Twilio emulator "
                f"{DRAIN_GRACE_S:.0f} s after they should have been delivered"
            )
        time.sleep(min(5.0, max(0.01, drain_s / 4)))


def worker_environment(service: LocalService, workdir: Path) -> dict[str, str]:
    """Return the notifier's environment for a worker process, pointed at the local service.

    Nothing is inherited from the bench process, so no credential, proxy or profile of the
    caller's shell reaches the workers. Every endpoint and base URL must be on loopback.
    """
    from infra.local.provision import check_loopback

    assert service.stack is not None
    runtime = service.stack.runtime
    function = runtime.functions[NOTIFIER_FUNCTION]
    environment = dict(runtime.environment)
    environment.update(
        {
            "PYTHONPATH": os.pathsep.join(str(layer / "python") for layer in function.layer_dirs),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "LANG": "C.UTF-8",
            "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
        }
    )
    for name, value in environment.items():
        if name.startswith("AWS_ENDPOINT_URL") or name.endswith("_BASE_URL"):
            check_loopback(value)
    if "TWILIO_BASE_URL" not in environment:
        raise BenchFailedError("TWILIO_BASE_URL is not set, so the workers would call Twilio")
    return environment


def _read_events(stream: IO[str], tally: JobTally) -> None:
    for line in stream:
        if line.startswith("{"):
            tally.record(json.loads(line))


@contextmanager
def worker_processes(
    service: LocalService, count: int, spec: dict[str, Any], tally: JobTally, workdir: Path
) -> Iterator[None]:
    """Start `count` worker processes, wait until each is ready, and stop them after the block.

    A worker stops when its standard input closes. Raises BenchFailedError when a worker exits
    early or is not ready within WORKER_START_DEADLINE_S.
    """
    environment = worker_environment(service, workdir)
    command = [sys.executable, "-P", str(WORKER), json.dumps(spec)]
    processes: list[subprocess.Popen[str]] = []
    readers: list[threading.Thread] = []
    logs = [workdir / f"worker-{index}.stderr" for index in range(count)]
    try:
        for log in logs:
            with log.open("w", encoding="utf-8") as stderr:
                process = subprocess.Popen(  # noqa: S603 (this interpreter and a script of this repository)
                    command,
                    env=environment,
                    cwd=workdir,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                )
            processes.append(process)
            assert process.stdout is not None
            reader = threading.Thread(
                target=_read_events, args=(process.stdout, tally), name="bench-worker-events"
            )
            reader.start()
            readers.append(reader)

        with tally.changed:
            ready = tally.changed.wait_for(
                lambda: (
                    tally.ready == count or any(process.poll() is not None for process in processes)
                ),
                timeout=WORKER_START_DEADLINE_S,
            )
        if not ready or tally.ready != count:
            raise BenchFailedError(
                f"{count - tally.ready} of {count} notifier workers did not start:\n" + _tail(logs)
            )
        yield
    finally:
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()
        for process in processes:
            try:
                process.wait(timeout=WORKER_STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for reader in readers:
            reader.join()

    failed = [process.returncode for process in processes if process.returncode != 0]
    if failed:
        raise BenchFailedError(f"notifier workers exited with {failed}:\n" + _tail(logs))


def _tail(logs: Sequence[Path]) -> str:
    """Return the end of the first non-empty worker log."""
    for log in logs:
        text = log.read_text(encoding="utf-8") if log.exists() else ""
        if text.strip():
            return text[-4000:]
    return "(no output)"


def _wait_for_outcomes(tally: JobTally, deadline_s: float) -> None:
    """Wait until every job has an outcome, or raise BenchFailedError after deadline_s."""
    with tally.changed:
        finished = tally.changed.wait_for(lambda: tally.finished, timeout=deadline_s)
    if not finished:
        missing = len(tally.expected - tally.outcomes.keys())
        raise BenchFailedError(
            f"{missing} alert jobs had no outcome after {deadline_s:.0f} s; retries by error: "
            f"{dict(tally.retries)}"
        )


def measure_notifications(
    service: LocalService, alerts: int = DEFAULT_ALERTS, workers: int = DEFAULT_WORKERS
) -> NotificationResult:
    """Seed `alerts` alerts, send their jobs through the notification queue and measure delivery.

    The emulator's rate is the service's `sms_segments_per_second`. The queue pollers of the
    service are paused meanwhile. Raises BenchFailedError when a step cannot finish. Call
    `check_delivery` on the result for duplicates and losses.
    """
    from idsentry.adapters.batch import BatchTable
    from idsentry.adapters.queue import JobQueue
    from idsentry.clock import epoch
    from idsentry.settings import CoreSettings, load_settings

    assert service.stack is not None and service.twilio is not None
    runtime = service.stack.runtime
    mapping = next(
        (m for m in runtime.mappings if m.function_logical_id == NOTIFIER_FUNCTION), None
    )
    if mapping is None:
        raise BenchFailedError(f"the template maps no queue to {NOTIFIER_FUNCTION}")
    sqs = runtime.client("sqs")
    rate = service.sms_segments_per_second
    moment = bench_moment()

    with (
        pollers_paused(service),
        tempfile.TemporaryDirectory(prefix="idsentry-bench-notify-") as workdir,
    ):
        wait_until_drained(service)
        seed_started = time.perf_counter()
        seeded = seed_alerts(service, alerts, epoch(moment))
        seed_s = time.perf_counter() - seed_started

        tally = JobTally(expected={alert.job.job_id for alert in seeded})
        spec = {
            "queue_url": mapping.queue_url,
            "batch_size": mapping.batch_size,
            "clock": moment.isoformat(),
        }
        with worker_processes(service, workers, spec, tally, Path(workdir)):
            # The machine may run other work, which slows moto and the bench process.
            load_average = os.getloadavg()[0]
            JobQueue(mapping.queue_url, sqs).send_many([alert.job for alert in seeded])
            _wait_for_outcomes(tally, PROCESSING_DEADLINE_S + alerts * PROCESSING_S_PER_JOB)

        mobiles = {alert.mobile for alert in seeded}
        messages, drained_at = _wait_for_delivery(service, mobiles, rate)
        service.twilio.wait_for_callbacks(SETTLE_DEADLINE_S)

    if tally.first_send_s is None or not messages:
        raise BenchFailedError("the Twilio emulator accepted no alert SMS")
    addresses = {alert.email for alert in seeded}
    emails = [
        email["to"][0]
        for email in service.sent_emails()
        if len(email["to"]) == 1 and email["to"][0] in addresses
    ]
    settings = load_settings(CoreSettings)
    ledger_keys = [
        (f"NOTIFY#alert:{alert.alert_id}", channel)
        for alert in seeded
        for channel in ("sms", "email")
    ]
    ledger = BatchTable(settings.table_name, runtime.client("dynamodb")).get_many(ledger_keys)

    return _result(
        seeded=seeded,
        messages=messages,
        emails=emails,
        ledger_states=[ledger.get(key, {}).get("state") for key in ledger_keys],
        tally=tally,
        load_average=load_average,
        timing={
            "seed_s": seed_s,
            "processing_s": (tally.last_outcome_s or 0.0) - (tally.first_receive_s or 0.0),
            "drain_s": drained_at - tally.first_send_s,
        },
        workers=workers,
        batch_size=mapping.batch_size,
        segments_per_second=rate,
    )


def _result(
    *,
    seeded: Sequence[SeededAlert],
    messages: list[dict[str, Any]],
    emails: list[str],
    ledger_states: list[str | None],
    tally: JobTally,
    load_average: float,
    timing: dict[str, float],
    workers: int,
    batch_size: int,
    segments_per_second: float,
) -> NotificationResult:
    """Count duplicates and losses per channel and the segments the emulator delivered."""
    per_number = Counter(message["to"] for message in messages)
    delivered = {message["to"] for message in messages if message["status"] == "delivered"}
    per_address = Counter(emails)
    segments = sum(int(message["num_segments"]) for message in messages)
    # The emulator waits a message's segments / rate after sending it, so the time from the
    # first acceptance to the last delivery covers every segment but the last message's.
    counted = segments - int(messages[-1]["num_segments"])

    return NotificationResult(
        alerts=len(seeded),
        workers=workers,
        batch_size=batch_size,
        segments_per_second=segments_per_second,
        seed_s=timing["seed_s"],
        processing_s=timing["processing_s"],
        drain_s=timing["drain_s"],
        segments=segments,
        counted_segments=counted,
        sms_messages=len(messages),
        sms_delivered=sum(1 for message in messages if message["status"] == "delivered"),
        sms_statuses=Counter(message["status"] for message in messages),
        segments_per_message=Counter(int(message["num_segments"]) for message in messages),
        encodings=Counter(message["encoding"] for message in messages),
        sms_duplicates=sum(count - 1 for count in per_number.values()),
        sms_lost=sum(1 for alert in seeded if alert.mobile not in delivered),
        email_messages=len(emails),
        email_duplicates=sum(count - 1 for count in per_address.values()),
        email_lost=sum(1 for alert in seeded if alert.email not in per_address),
        ledger_not_sent=sum(1 for state in ledger_states if state != "sent"),
        load_average=load_average,
        outcomes=Counter(tally.outcomes.values()),
        redeliveries=sum(tally.receives.values()) - len(tally.receives),
        retries=Counter(tally.retries),
    )


def check_delivery(result: NotificationResult) -> None:
    """Raise BenchFailedError when a message went out twice, never arrived, or is not `sent`."""
    problems = [
        f"{count} {label}"
        for count, label in (
            (result.sms_duplicates, "duplicate SMS"),
            (result.email_duplicates, "duplicate e-mails"),
            (result.sms_lost, "alerts without a delivered SMS"),
            (result.email_lost, "alerts without an e-mail"),
            (result.ledger_not_sent, "ledger records not in state sent"),
        )
        if count
    ]
    if problems:
        raise BenchFailedError(
            f"the notification bench over {result.alerts} alerts found " + ", ".join(problems)
        )


def start_notification_service(segments_per_second: float) -> LocalService:
    """Start a local service whose Twilio emulator drains `segments_per_second`, without pollers."""
    return LocalService(
        port=0,
        parameters=BENCH_PARAMETERS,
        sms_segments_per_second=segments_per_second,
        background=False,
        moto_process=True,
    ).start()


def run_notification_bench(
    alerts: int = DEFAULT_ALERTS,
    workers: int = DEFAULT_WORKERS,
    segments_per_second: float = DEFAULT_SEGMENTS_PER_SECOND,
) -> NotificationResult:
    """Start a service of its own, measure and stop it. Raise BenchFailedError on any loss."""
    from infra.bench.service import quiet_handler_logs

    service = start_notification_service(segments_per_second)
    try:
        quiet_handler_logs(service)
        result = measure_notifications(service, alerts, workers)
    finally:
        service.stop()
    check_delivery(result)
    return result
