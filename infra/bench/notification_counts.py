"""AWS requests of one alert notification job, counted in process like the other units.

Two subscribers are seeded with a confirmed critical alert each (critical alerts go out in quiet
hours too, so the counts do not depend on the hour of the run). The notifier serves one job in
an SQS event, cold after the cached clients, secrets and data keys are cleared, then the other
job warm. Each job sends an SMS to the Twilio emulator and an e-mail through SES; the bench
waits until both reached their outboxes, so a job that failed halfway fails the bench.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from infra.bench.child import CallRecorder
from infra.bench.coldstart import sqs_event
from infra.bench.notifications import seed_alerts
from infra.bench.request_counts import BenchFailedError, UnitCalls
from infra.local.service import LocalService

NOTIFIER_FUNCTION = "NotifierFunction"
DELIVERY_DEADLINE_S = 30.0


def _critical_alerts(service: LocalService, now: int) -> list[Any]:
    # seed_alerts alternates high and critical; the odd ones are critical.
    seeded = seed_alerts(service, 4, now)
    critical = [alert for alert in seeded if alert.severity == "critical"]
    if len(critical) < 2:
        raise BenchFailedError("seeding gave fewer than two critical alerts")
    return critical[:2]


def _queue_arn(service: LocalService) -> str:
    assert service.stack is not None
    mapping = next(
        (m for m in service.stack.runtime.mappings if m.function_logical_id == NOTIFIER_FUNCTION),
        None,
    )
    if mapping is None:
        raise BenchFailedError(f"the template maps no queue to {NOTIFIER_FUNCTION}")
    return mapping.event_source_arn


def _wait_for_sms(service: LocalService, mobile: str) -> None:
    assert service.twilio is not None
    give_up = time.monotonic() + DELIVERY_DEADLINE_S
    while time.monotonic() < give_up:
        if any(message["to"] == mobile for message in service.twilio.messages()):
            return
        time.sleep(0.05)
    raise BenchFailedError(f"no alert SMS reached the emulator within {DELIVERY_DEADLINE_S:.0f} s")


def measure_notification_counts(service: LocalService) -> UnitCalls:
    """Serve one cold and one warm alert job through the notifier; return each one's calls."""
    from idsentry.clock import epoch, utc_now
    from infra.local.service import clear_cached_dependencies

    assert service.stack is not None
    runtime = service.stack.runtime
    queue_arn = _queue_arn(service)
    recorder = CallRecorder(thread_id=threading.get_ident())
    calls: list[list[dict[str, Any]]] = []

    alerts = _critical_alerts(service, epoch(utc_now()))
    recorder.install()
    try:
        clear_cached_dependencies()
        for alert in alerts:
            event = sqs_event(alert.job.model_dump_json(), queue_arn)
            with recorder.capture() as job_calls:
                response = runtime.invoke(NOTIFIER_FUNCTION, event)
            if response.get("batchItemFailures"):
                raise BenchFailedError(
                    f"the notifier failed the bench alert job: {json.dumps(response)}"
                )
            calls.append(job_calls)
    finally:
        recorder.active = False
        recorder.uninstall()

    for alert in alerts:
        _wait_for_sms(service, alert.mobile)
    return UnitCalls("notification", calls[0], calls[1])
