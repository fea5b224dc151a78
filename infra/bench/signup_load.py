"""Signup throughput and latency over the local HTTP stack under concurrent clients, for `make bench`.

The bench starts a local service of its own, with moto in a process of its own and no queue
pollers, so that the signup function's work is the only work of the run. A bench thread takes
the code jobs off the queue. The abuse limits are set through the template parameters to
exactly the number of signups the run sends. Every client connects from 127.0.0.1 without the
local-only forwarding header, so all of them share one per-address counter, and the daily code
budget counts every signup too.

Three runs, in this order, after a few untimed signups that load the handler:

- one client sending signups one after another (the single-client baseline);
- the clients at once against `GET /v1/checkout/success`, a route of the same signup function
  that makes no AWS request (the trivial-route baseline);
- the clients at once sending signups, each with a new mobile number and ID number.

Each client is a thread of the bench process with its own HTTP connection (`requests.Session`),
which also serves the HTTP API and runs the handlers. A run stops at its request count or, for
new requests, at its deadline. Latency is measured per request from before sending to after the
whole response is read. Throughput is completed requests over the span from the first request's
start to the last one's end. After the runs, the bench checks that each accepted signup left its
signup item and a code job on the notification queue, and fails when one did not.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import requests

from infra.bench.report import table
from infra.bench.request_counts import BenchFailedError
from infra.bench.service import quiet_handler_logs
from infra.bench.workload import IdentityFactory, signup_body
from infra.local.service import LocalService

DEFAULT_CLIENTS = 50
DEFAULT_REQUESTS = 500
DEFAULT_DEADLINE_S = 300.0
SEQUENTIAL_REQUESTS = 50
WARMUP_REQUESTS = 5
TRIVIAL_PATH = "/v1/checkout/success"
CONSENT_VERSIONS = dict.fromkeys(
    ("terms", "sensitive_personal_information", "cross_border_transfer"), "2026-12-01"
)
TABLE = "idsentry-local"
# A request that has not finished by then counts as an error with status 0.
REQUEST_TIMEOUT_S = 120.0

# (method, path, JSON body or None) of one request of a run.
RequestSpec = tuple[str, str, dict[str, Any] | None]


@dataclass(frozen=True)
class RequestTiming:
    """One request: when it started (perf_counter seconds), how long it took, what it got."""

    started_s: float
    elapsed_s: float
    status: int
    error_code: str | None = None
    # The `signup_id` of an accepted signup's response.
    signup_id: str | None = None


@dataclass(frozen=True)
class LoadRun:
    """The timings of one run of `clients` concurrent clients."""

    label: str
    clients: int
    requested: int
    expected_status: int
    timings: list[RequestTiming]
    deadline_hit: bool

    @property
    def completed(self) -> int:
        return len(self.timings)

    @property
    def span_s(self) -> float:
        """Seconds from the first request's start to the last one's end."""
        if not self.timings:
            return 0.0
        first = min(timing.started_s for timing in self.timings)
        last = max(timing.started_s + timing.elapsed_s for timing in self.timings)
        return last - first

    @property
    def throughput(self) -> float:
        """Completed requests per second over the run's span."""
        return self.completed / self.span_s if self.span_s > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """Return the nearest-rank percentile of the latencies in seconds (0.5 is the median)."""
        latencies = sorted(timing.elapsed_s for timing in self.timings)
        if not latencies:
            return 0.0
        rank = max(math.ceil(fraction * len(latencies)), 1)
        return latencies[rank - 1]

    @property
    def mean_latency_s(self) -> float:
        if not self.timings:
            return 0.0
        return sum(timing.elapsed_s for timing in self.timings) / len(self.timings)

    @property
    def errors(self) -> Counter[str]:
        """Requests without the expected status, by status and error code (0: no response)."""
        return Counter(
            f"{timing.status} {timing.error_code or ''}".strip()
            for timing in self.timings
            if timing.status != self.expected_status
        )


@dataclass
class SignupLoadResult:
    """The three runs, the limits they ran under and the end-state checks."""

    concurrent: LoadRun
    sequential: LoadRun
    trivial: LoadRun
    limits: dict[str, int]
    deadline_s: float
    accepted: int = 0
    # Accepted signups without their signup item or code job.
    lost: int = 0
    # Signup items and code jobs of requests that got an error, for example a 500 after the
    # transaction had committed.
    stored_after_error: int = 0
    jobs_after_error: int = 0
    duplicate_jobs: int = 0
    # Status and error code of one more signup once every planned one was stored, for example
    # "429 limit.ip", or "not sent".
    over_limit: str = ""
    load_average: float = 0.0


def run_clients(
    base_url: str,
    specs: list[RequestSpec],
    clients: int,
    deadline_s: float,
    *,
    label: str,
    expected_status: int,
) -> LoadRun:
    """Send `specs` from `clients` threads at once, each taking the next spec until none is left.

    A client sends no new request once `deadline_s` seconds have passed since the start.
    """
    next_index = itertools.count()
    index_lock = threading.Lock()
    timings: list[RequestTiming] = []
    timings_lock = threading.Lock()
    barrier = threading.Barrier(clients)
    deadline_hit = threading.Event()
    stop_at = time.perf_counter() + deadline_s

    def client() -> None:
        with requests.Session() as session:
            barrier.wait()
            while True:
                with index_lock:
                    index = next(next_index)
                if index >= len(specs):
                    return
                if time.perf_counter() > stop_at:
                    deadline_hit.set()
                    return
                timing = _send(session, base_url, specs[index])
                with timings_lock:
                    timings.append(timing)

    threads = [
        threading.Thread(target=client, name=f"bench-client-{number}", daemon=True)
        for number in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadRun(label, clients, len(specs), expected_status, timings, deadline_hit.is_set())


def _send(session: requests.Session, base_url: str, spec: RequestSpec) -> RequestTiming:
    method, path, body = spec
    started = time.perf_counter()
    try:
        response = session.request(
            method, f"{base_url}{path}", json=body, timeout=REQUEST_TIMEOUT_S
        )
        content = response.content
    except requests.RequestException:
        return RequestTiming(started, time.perf_counter() - started, 0, "no_response")
    elapsed = time.perf_counter() - started

    if response.status_code == 202:
        signup_id = _json_field(content, "signup_id")
        return RequestTiming(started, elapsed, 202, signup_id=signup_id)
    error_code = _json_field(content, "error", "code") if response.status_code >= 400 else None
    return RequestTiming(started, elapsed, response.status_code, error_code)


def _json_field(content: bytes, *path: str) -> str | None:
    """Return the string at `path` in a JSON object body, or None when there is none."""
    try:
        value: Any = json.loads(content)
    except ValueError:
        return None
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return str(value) if value is not None else None


def _signup_specs(factory: IdentityFactory, count: int) -> list[RequestSpec]:
    return [
        ("POST", "/v1/signups", signup_body(factory.new(), CONSENT_VERSIONS)) for _ in range(count)
    ]


def _stored_signup_ids(service: LocalService) -> set[str]:
    assert service.stack is not None
    client = service.stack.runtime.client("dynamodb")
    stored: set[str] = set()
    for page in client.get_paginator("scan").paginate(
        TableName=TABLE,
        FilterExpression="begins_with(pk, :prefix) AND sk = :signup",
        ExpressionAttributeValues={":prefix": {"S": "SIGNUP#"}, ":signup": {"S": "SIGNUP"}},
        ProjectionExpression="pk",
    ):
        stored.update(item["pk"]["S"].removeprefix("SIGNUP#") for item in page["Items"])
    return stored


class JobCollector:
    """A thread that receives and deletes the notification queue's messages as they arrive.

    It counts the code jobs by signup id. Keeping the queue short keeps the runs about signup:
    moto computes every queue attribute, counting the queued messages, on each SendMessage, so
    a queue that grew by 500 jobs would make each later signup's SendMessage slower.
    """

    def __init__(self, service: LocalService) -> None:
        assert service.stack is not None
        self.jobs: Counter[str] = Counter()
        self._sqs = service.stack.runtime.client("sqs")
        self._queue_url = service.stack.runtime.environment["NOTIFICATION_QUEUE_URL"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-job-collector", daemon=True)

    def start(self) -> JobCollector:
        self._thread.start()
        return self

    def stop(self) -> Counter[str]:
        """Stop after the queue is empty and return the code jobs by signup id."""
        self._stop.set()
        self._thread.join()
        return self.jobs

    def _run(self) -> None:
        while True:
            received = self._receive()
            if not received and self._stop.is_set():
                return

    def _receive(self) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            self.jobs[str(json.loads(message["Body"]).get("signup_id"))] += 1
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(messages)
                ],
            )
        return len(messages)


def run_signup_load_bench(
    clients: int = DEFAULT_CLIENTS,
    requests_count: int = DEFAULT_REQUESTS,
    deadline_s: float = DEFAULT_DEADLINE_S,
    *,
    sequential_requests: int = SEQUENTIAL_REQUESTS,
    warmup_requests: int = WARMUP_REQUESTS,
) -> SignupLoadResult:
    """Start a local service with limits for this run, measure the three runs and check the state."""
    signups = warmup_requests + sequential_requests + requests_count
    limits = {"SignupsPerIpPerHour": signups, "SmsOtpDailyBudget": signups}
    factory = IdentityFactory()

    service = LocalService(port=0, parameters=limits, background=False, moto_process=True).start()
    collector = JobCollector(service).start()
    package_logger = logging.getLogger("idsentry")
    level = package_logger.level
    try:
        assert service.stack is not None
        # Loading a handler the first time in a process sets the package logger's level.
        for function_logical_id in service.stack.runtime.functions:
            service.stack.runtime.load_handler(function_logical_id)
        level = package_logger.level
        quiet_handler_logs(service)
        base_url = service.base_url
        load_average = os.getloadavg()[0]
        warmup = run_clients(
            base_url,
            [*_signup_specs(factory, warmup_requests), ("GET", TRIVIAL_PATH, None)],
            1,
            deadline_s,
            label="warm-up",
            expected_status=202,
        )
        statuses = Counter(timing.status for timing in warmup.timings)
        if statuses != Counter({202: warmup_requests, 200: 1}):
            raise BenchFailedError(f"unexpected warm-up responses by status: {dict(statuses)}")
        sequential = run_clients(
            base_url,
            _signup_specs(factory, sequential_requests),
            1,
            deadline_s,
            label="signups, one client",
            expected_status=202,
        )
        trivial = run_clients(
            base_url,
            [("GET", TRIVIAL_PATH, None)] * requests_count,
            clients,
            deadline_s,
            label=f"`GET {TRIVIAL_PATH}`, {clients} clients",
            expected_status=200,
        )
        concurrent = run_clients(
            base_url,
            _signup_specs(factory, requests_count),
            clients,
            deadline_s,
            label=f"signups, {clients} clients",
            expected_status=202,
        )

        accepted = {
            timing.signup_id
            for run in (warmup, sequential, concurrent)
            for timing in run.timings
            if timing.signup_id is not None
        }
        stored = _stored_signup_ids(service)
        over_limit = "not sent"
        if len(stored) == signups:
            # Every planned signup used the per-address counter, so it is at its limit.
            with requests.Session() as session:
                probe = _send(session, base_url, _signup_specs(factory, 1)[0])
            over_limit = f"{probe.status} {probe.error_code or ''}".strip()
    finally:
        jobs = collector.stop()
        service.stop()
        # The handlers' INFO records stay off only for this run, not for a caller's later work.
        package_logger.setLevel(level)

    result = SignupLoadResult(
        concurrent=concurrent,
        sequential=sequential,
        trivial=trivial,
        limits=limits,
        deadline_s=deadline_s,
        accepted=len(accepted),
        lost=len(
            {signup_id for signup_id in accepted if signup_id not in stored or not jobs[signup_id]}
        ),
        stored_after_error=len(stored - accepted),
        jobs_after_error=sum(
            count for signup_id, count in jobs.items() if signup_id not in accepted
        ),
        duplicate_jobs=sum(max(count - 1, 0) for count in jobs.values()),
        over_limit=over_limit,
        load_average=load_average,
    )
    if result.lost:
        raise BenchFailedError(
            f"of {result.accepted} accepted signups, {result.lost} lack their signup item or "
            "code job"
        )
    if over_limit not in ("not sent", "429 limit.ip"):
        raise BenchFailedError(
            f"a signup beyond the per-address limit got {over_limit!r}, not 429 limit.ip"
        )
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _errors_text(run: LoadRun) -> str:
    errors = run.errors
    if not errors:
        return "0"
    details = ", ".join(f"{key}: {count}" for key, count in sorted(errors.items()))
    return f"{sum(errors.values())} ({details})"


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline > 0 else "n/a"


def signup_load_section(result: SignupLoadResult) -> str:
    """Return the page's section on signups under concurrent clients."""
    concurrent, sequential, trivial = result.concurrent, result.sequential, result.trivial
    clients = concurrent.clients
    figures = table(
        ["figure", "value", "baseline", "ratio"],
        [
            [
                f"signups per second, {clients} clients vs `GET {TRIVIAL_PATH}` at "
                f"{trivial.clients} clients",
                f"{concurrent.throughput:.1f}/s",
                f"{trivial.throughput:.1f}/s",
                _ratio(concurrent.throughput, trivial.throughput),
            ],
            [
                f"signups per second, {clients} clients vs one client",
                f"{concurrent.throughput:.1f}/s",
                f"{sequential.throughput:.1f}/s",
                _ratio(concurrent.throughput, sequential.throughput),
            ],
            [
                f"p50 latency, {clients} clients vs one client",
                _ms(concurrent.percentile(0.5)),
                _ms(sequential.percentile(0.5)),
                _ratio(concurrent.percentile(0.5), sequential.percentile(0.5)),
            ],
            [
                f"p99 latency, {clients} clients vs one client",
                _ms(concurrent.percentile(0.99)),
                _ms(sequential.percentile(0.99)),
                _ratio(concurrent.percentile(0.99), sequential.percentile(0.99)),
            ],
            ["errors (responses other than 202)", _errors_text(concurrent), "0", ""],
        ],
    )
    runs = table(
        [
            "run",
            "clients",
            "requests sent",
            "span",
            "per second",
            "p50",
            "p99",
            "max",
            "errors",
        ],
        [
            [
                run.label,
                str(run.clients),
                f"{run.completed} of {run.requested}"
                + (" (deadline reached)" if run.deadline_hit else ""),
                f"{run.span_s:.1f} s",
                f"{run.throughput:.1f}",
                _ms(run.percentile(0.5)),
                _ms(run.percentile(0.99)),
                _ms(run.percentile(1.0)),
                _errors_text(run),
            ]
            for run in (concurrent, sequential, trivial)
        ],
    )
    limits = ", ".join(f"`{name}` {value}" for name, value in result.limits.items())
    return "\n".join(
        [
            "## Signups under concurrent clients",
            "",
            f"{clients} clients on 127.0.0.1 send {concurrent.requested} `POST /v1/signups` "
            "requests through the local HTTP API, each with a new mobile number and ID number. "
            "Each client is a thread of the bench process with its own keep-alive connection "
            "and sends its next request when the previous response has arrived. The bench "
            "process also serves the HTTP API and runs the signup function, one thread per "
            "request. moto runs in a process of its own and serves DynamoDB requests one at a "
            "time. The queue pollers "
            "are off, so no notifier competes for the CPU; a thread of the bench receives and "
            "deletes the code jobs as they arrive, because moto counts the queued messages on "
            "every SendMessage. Every client connects from 127.0.0.1 without the local-only forwarding "
            f"header, so the run's abuse limits are set through the template parameters to the "
            f"number of signups it sends: {limits}. A few untimed signups load the handler "
            "first.",
            "",
            "The baselines come from the same service in the same run: one client sending "
            f"{sequential.requested} signups one after another, and the same {trivial.clients} "
            f"clients sending {trivial.requested} `GET {TRIVIAL_PATH}` requests, a route of the "
            "signup function that makes no AWS request, so that the first ratio is what the "
            "signup's own work costs on top of the HTTP API and the local runtime. Throughput is "
            "completed requests over the span from the first request's start to the last "
            "response; latency runs from before sending to the end of the response, and p99 is "
            "the nearest-rank percentile. Each run stops sending at its request count or after "
            f"{result.deadline_s:g} s.",
            "",
            figures,
            "",
            runs,
            "",
            _queueing_text(concurrent),
            "",
            _end_state_text(result),
        ]
    )


def _queueing_text(run: LoadRun) -> str:
    """Return the sentence that relates the concurrent run's latency to its throughput."""
    if run.throughput <= 0:
        return "The concurrent run completed no request."
    return (
        "Each client sends its next request only after the response, so the latency at "
        f"{run.clients} clients is mostly waiting: by Little's law about {run.clients} / "
        f"{run.throughput:.1f} per second = {run.clients / run.throughput * 1000:.0f} ms, "
        f"against a measured mean of {run.mean_latency_s * 1000:.0f} ms."
    )


def _end_state_text(result: SignupLoadResult) -> str:
    """Return the paragraph on the stack's state after the runs and on the limit probe."""
    sentences = [
        f"After the runs, {result.accepted} signups had been accepted, each with its signup item "
        "and a code job on the notification queue (the bench fails otherwise)."
    ]
    if result.duplicate_jobs:
        sentences.append(
            f"{result.duplicate_jobs} code jobs were on the queue twice. The handler sends each "
            "once, so botocore retried a SendMessage whose first attempt had reached moto; the "
            "notifier's ledger records each code SMS under its code id and sends it once."
        )
    if result.stored_after_error or result.jobs_after_error:
        sentences.append(
            f"Requests that got an error left {result.stored_after_error} signup items and "
            f"{result.jobs_after_error} code jobs, because a handler that fails after its "
            "transaction committed leaves the pending signup, and the counters it used, behind."
        )
    if result.over_limit == "not sent":
        sentences.append(
            "Not every planned signup was stored, so the per-address counter was below its "
            "limit and the bench sent no signup beyond it."
        )
    else:
        sentences.append(
            f"One more signup from 127.0.0.1 got `{result.over_limit}`, so the per-address "
            "limit was in force."
        )
    sentences.append(
        f"The 1-minute load average before the runs was {result.load_average:.2f}. The clients, "
        "the HTTP API, the handlers and moto share this machine's cores, so the figures are a "
        "lower bound for a deployment, where Lambda runs concurrent requests in separate "
        "instances."
    )
    return " ".join(sentences)
