"""One consumer of the notification queue in its own process, as one notifier Lambda instance.

Run as `python -P notify_worker.py SPEC_JSON` by `infra.bench.notifications`, in the notifier's
environment with the layer on PYTHONPATH. The spec names the queue, the batch size and the
fixed time that the bench clock returns. The worker receives batches, runs `process_job` on each job
with the notifier's own dependencies and that clock, deletes the jobs that finished and makes
the others visible again after a second, so that a later receive retries them, as a partial
batch failure does.

It writes one JSON line per event on stdout ("ready", "received", "settled", "retry", and
"first_send" with the monotonic time its first successful SMS send began), and stops when its
standard input closes. This file imports only the standard library and `idsentry`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

SQS_MAX_RECEIVE = 10
RETRY_VISIBILITY_S = 1
LONG_POLL_S = 1


class Reporter:
    """Write events as JSON lines on stdout, one whole line at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields})
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


class TimedSms:
    """An SmsSender that reports when its first successful send began, around the real one."""

    def __init__(self, sender: Any, reporter: Reporter) -> None:
        self._sender = sender
        self._reporter = reporter
        self._reported = False

    def send(
        self, to: str, body: str, status_callback: str | None, validity_seconds: int | None = None
    ) -> str:
        started = time.monotonic()
        message_id: str = self._sender.send(to, body, status_callback, validity_seconds)
        if not self._reported:
            self._reported = True
            self._reporter.emit("first_send", at=started)
        return message_id

    def status(self, message_id: str) -> str | None:
        result: str | None = self._sender.status(message_id)
        return result

    def find_sent(self, to: str, body: str, since: int) -> str | None:
        found: str | None = self._sender.find_sent(to, body, since)
        return found


class QueueWorker:
    """Receive notification jobs in batches and process each one until `stop` is set."""

    def __init__(
        self,
        deps: Any,
        sqs: Any,
        queue_url: str,
        batch_size: int,
        reporter: Reporter,
        stop: threading.Event,
    ) -> None:
        from pydantic import TypeAdapter

        from idsentry.models.jobs import NotificationJob

        self.deps = deps
        self.sqs = sqs
        self.queue_url = queue_url
        self.batch_size = min(batch_size, SQS_MAX_RECEIVE)
        self.reporter = reporter
        self.stop = stop
        self.jobs: TypeAdapter[Any] = TypeAdapter(NotificationJob)

    def run(self) -> None:
        """Receive and process batches until `stop` is set."""
        while not self.stop.is_set():
            try:
                self._receive_batch()
            except Exception as exc:
                # When a receive or delete fails, its jobs come back after their visibility timeout.
                self.reporter.emit("retry", error=f"worker {type(exc).__name__}")
                self.stop.wait(RETRY_VISIBILITY_S)

    def _receive_batch(self) -> None:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=LONG_POLL_S,
        )
        finished = [message for message in response.get("Messages", []) if self._process(message)]
        if not finished:
            return

        deleted = self.sqs.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(finished)
            ],
        )
        for failure in deleted.get("Failed", []):
            self.reporter.emit("retry", error=f"delete {failure.get('Code', 'failed')}")

    def _process(self, message: dict[str, Any]) -> bool:
        """Run one job and return whether it finished, whatever its outcome, or must be retried."""
        from idsentry.services.notify import process_job

        job = self.jobs.validate_json(message["Body"])
        self.reporter.emit("received", job_id=job.job_id, at=time.monotonic())
        try:
            outcome = process_job(self.deps, job)
        except Exception as exc:
            # Lambda retries a record whose processing raised, whatever the error.
            self.reporter.emit("retry", error=type(exc).__name__)
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=RETRY_VISIBILITY_S,
            )
            return False

        self.reporter.emit("settled", job_id=job.job_id, outcome=outcome, at=time.monotonic())
        return True


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    """Return a clock that always returns `moment`."""

    def clock() -> datetime:
        return moment

    return clock


def _stop_on_end_of_input(stop: threading.Event) -> None:
    for _ in sys.stdin:
        pass
    stop.set()


def main(argv: list[str]) -> int:
    """Build the notifier's dependencies with the bench clock, report ready, and consume jobs."""
    if len(argv) != 2:
        print("usage: notify_worker.py SPEC_JSON", file=sys.stderr)
        return 2
    spec = json.loads(argv[1])

    from idsentry.adapters.aws import client
    from idsentry.routes.jobs import notifier_deps

    reporter = Reporter()
    base = notifier_deps()
    # Created on first use, as the notifier's own SMS sender is, so that reading the Twilio
    # secret stays part of the first job.
    sms = functools.cache(lambda: TimedSms(base.sms(), reporter))
    deps = dataclasses.replace(
        base, sms=sms, clock=fixed_clock(datetime.fromisoformat(spec["clock"]))
    )
    stop = threading.Event()
    threading.Thread(target=_stop_on_end_of_input, args=(stop,), daemon=True).start()
    worker = QueueWorker(deps, client("sqs"), spec["queue_url"], spec["batch_size"], reporter, stop)

    reporter.emit("ready")
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
