"""Webhook delivery for the local Stripe shim: one endpoint, signed at send time, with retries."""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import urlsplit

from idsentry.services.stripe_signature import sign
from infra.local.replay import STRIPE_WEBHOOKS, Replay

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10.0
# Seconds before each retry of a failed webhook delivery: retry n waits retry_delays[n - 1].
# Stripe keeps retrying with backoff for much longer, but a few short retries are enough to show
# at-least-once delivery locally.
DEFAULT_RETRY_DELAYS: Final = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery attempt. `status` is the HTTP status, or None when no response arrived."""

    event_id: str
    event_type: str
    attempt: int
    status: int | None


@dataclass(frozen=True)
class WebhookEndpoint:
    url: str
    secret: str
    events: frozenset[str] | None


@dataclass(frozen=True)
class _DeliveryJob:
    event_id: str
    event_type: str
    payload: bytes
    endpoint: WebhookEndpoint
    attempt: int = 1


class WebhookSender:
    """Sends events to the configured endpoint from one worker thread, signing at send time.

    Jobs wait in a queue ordered by due time. Shuffled jobs wait in a held list until
    `flush()`, which releases them in a random order. In replay mode (`set_replay`) every job
    is sent twice and held, and the held list is also released `replay.hold_seconds` after
    its first job arrived.
    """

    def __init__(self, retry_delays: Sequence[float], rng: random.Random) -> None:
        self._retry_delays = tuple(retry_delays)
        self._rng = rng
        self._condition = threading.Condition()
        self._endpoint: WebhookEndpoint | None = None
        self._duplicate = False
        self._shuffle = False
        self._delay_seconds = 0.0
        self._held_for_flush: list[_DeliveryJob] = []
        self._queue: list[tuple[float, int, _DeliveryJob]] = []
        self._sequence = itertools.count()
        self._in_flight = 0
        self._records: list[WebhookDelivery] = []
        self._unsent: Counter[str] = Counter()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._replay: Replay | None = None
        self._replay_random: random.Random | None = None
        self._release_at: float | None = None

    def start(self) -> None:
        with self._condition:
            self._stopping = False
        self._thread = threading.Thread(target=self._run, name="StripeShim-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker. Deliveries still queued or held are dropped, and their count is logged."""
        with self._condition:
            self._stopping = True
            dropped = len(self._queue) + len(self._held_for_flush)
            self._queue.clear()
            self._held_for_flush.clear()
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=WEBHOOK_TIMEOUT_SECONDS + 1)
            self._thread = None
        if dropped:
            logger.warning("webhook deliveries dropped at stop", extra={"count": dropped})

    def configure(self, endpoint: WebhookEndpoint) -> None:
        with self._condition:
            self._endpoint = endpoint

    def set_replay(self, replay: Replay | None) -> None:
        """Send every later delivery twice and shuffled, or (None) stop doing so."""
        with self._condition:
            self._replay = replay
            self._replay_random = replay.random("stripe_webhooks") if replay else None

    def set_options(self, *, duplicate: bool, shuffle: bool, delay_seconds: float) -> None:
        with self._condition:
            self._duplicate = duplicate
            self._shuffle = shuffle
            self._delay_seconds = delay_seconds

    def submit(self, event: Mapping[str, Any]) -> None:
        """Queue `event` for the endpoint, unless none is configured or it filters the type out."""
        event_id, event_type = str(event["id"]), str(event["type"])
        with self._condition:
            endpoint = self._endpoint
            if endpoint is None or (
                endpoint.events is not None and event_type not in endpoint.events
            ):
                return

            # Stripe sends the same payload on every attempt, and only the signature changes.
            payload = json.dumps({**event, "pending_webhooks": 1}, indent=2, ensure_ascii=False)
            job = _DeliveryJob(event_id, event_type, payload.encode("utf-8"), endpoint)
            deliveries = 2 if self._duplicate else 1
            if self._replay is not None:
                # Replay mode makes each of the story's deliveries a second time.
                self._replay.count(STRIPE_WEBHOOKS, deliveries)
                deliveries *= 2
                if self._release_at is None:
                    self._release_at = time.monotonic() + self._replay.hold_seconds
            for _ in range(deliveries):
                self._unsent[event_id] += 1
                if self._shuffle or self._replay is not None:
                    self._held_for_flush.append(job)
                else:
                    self._push(job, time.monotonic() + self._delay_seconds)
            self._condition.notify_all()

    def pending_webhooks(self, event_id: str) -> int:
        """Return 1 while a delivery of the event has not succeeded yet, else 0."""
        with self._condition:
            return 1 if self._unsent[event_id] > 0 else 0

    def records(self) -> list[WebhookDelivery]:
        with self._condition:
            return list(self._records)

    def flush(self, deadline: float) -> None:
        """Release held jobs in a random order, then wait until the queue is empty.

        Raises TimeoutError when jobs are still queued or in flight at `deadline` (monotonic).
        """
        with self._condition:
            self._release_held()
            drained = self._condition.wait_for(
                lambda: not self._queue and self._in_flight == 0,
                timeout=max(0.0, deadline - time.monotonic()),
            )
            if not drained:
                raise TimeoutError(
                    f"{len(self._queue) + self._in_flight} webhook deliveries were still "
                    "pending when flush() timed out"
                )

    def _release_held(self) -> None:
        """Queue the held jobs in a random order. Called with the condition held."""
        released, self._held_for_flush = self._held_for_flush, []
        self._release_at = None
        (self._replay_random or self._rng).shuffle(released)
        due = time.monotonic() + self._delay_seconds
        for job in released:
            self._push(job, due)
        self._condition.notify_all()

    def _push(self, job: _DeliveryJob, due: float) -> None:
        heapq.heappush(self._queue, (due, next(self._sequence), job))

    def _next_job(self) -> _DeliveryJob | None:
        with self._condition:
            while not self._stopping:
                now = time.monotonic()
                if self._release_at is not None and self._release_at <= now:
                    self._release_held()
                if self._queue and self._queue[0][0] <= now:
                    _, _, job = heapq.heappop(self._queue)
                    self._in_flight += 1
                    return job
                wake_times = [self._queue[0][0]] if self._queue else []
                if self._release_at is not None:
                    wake_times.append(self._release_at)
                self._condition.wait(timeout=min(wake_times) - now if wake_times else None)
            return None

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            status = self._send(job)
            self._finish(job, status)

    def _finish(self, job: _DeliveryJob, status: int | None) -> None:
        with self._condition:
            self._in_flight -= 1
            self._records.append(WebhookDelivery(job.event_id, job.event_type, job.attempt, status))
            if status is not None and 200 <= status < 300:
                self._unsent[job.event_id] -= 1
            elif job.attempt <= len(self._retry_delays):
                delay = self._retry_delays[job.attempt - 1]
                self._push(replace(job, attempt=job.attempt + 1), time.monotonic() + delay)
                logger.info(
                    "webhook delivery failed, retrying",
                    extra={"event_id": job.event_id, "attempt": job.attempt, "status": status},
                )
            else:
                logger.error(
                    "webhook delivery failed, no retries left",
                    extra={"event_id": job.event_id, "attempt": job.attempt, "status": status},
                )
            self._condition.notify_all()

    @staticmethod
    def _send(job: _DeliveryJob) -> int | None:
        split = urlsplit(job.endpoint.url)
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        # Signed immediately before sending, as Stripe signs each attempt.
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(job.payload, job.endpoint.secret, int(time.time())),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        # http.client talks to the socket directly, so no proxy from the environment applies.
        connection = http.client.HTTPConnection(
            split.hostname or "", split.port or 80, timeout=WEBHOOK_TIMEOUT_SECONDS
        )
        try:
            connection.request("POST", target, body=job.payload, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as exc:
            logger.warning(
                "webhook delivery got no response",
                extra={"event_id": job.event_id, "error_type": type(exc).__name__},
            )
            return None
        finally:
            connection.close()
