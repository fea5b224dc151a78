"""PutEvents requests per 10 exposure events, when one breach file finds many subscribers.

A local service of its own, without background pollers, gets `count` monitored subscribers,
each watching one synthetic ID number (a watch item under the current pepper version, as
verification writes it). A breach file in GB18030 lists those ID numbers with a manifest, and
the bench runs only the intake and ingest functions' queues until both are empty, so the
exposure events wait on the rules' queues and nothing downstream runs. botocore event handlers
count the PutEvents requests and their entries by detail type. The lower bound is one request
per 10 entries (EventBridge's limit per request).
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from typing import Any

from infra.bench.child import CallRecorder
from infra.bench.report import table
from infra.bench.request_counts import BenchFailedError
from infra.bench.service import BENCH_PARAMETERS, quiet_handler_logs
from infra.bench.workload import IdentityFactory
from infra.local.service import LocalService

DEFAULT_SUBSCRIBERS = 1000
ENTRIES_PER_REQUEST = 10
TARGET_RATIO = 1.05
INTAKE_FUNCTIONS = ("BreachIntakeFunction", "BreachIngestFunction")
EXPOSURE_DETECTED = "Exposure.Detected"
MAX_ROUNDS = 10_000
PROVENANCE = {
    "source": "Synthetic bench file; no real people",
    "legal_basis": "Bench data generated on this machine",
    "approved_by": "bench",
    "approved_at": "2026-12-05T08:00:00+08:00",
}


@dataclass(frozen=True)
class ExposureEventsBench:
    """The exposure events of one breach file, and the PutEvents requests that carried them."""

    subscribers: int
    events: int
    requests: int

    @property
    def lower_bound(self) -> int:
        return max(1, math.ceil(self.events / ENTRIES_PER_REQUEST))

    @property
    def ratio(self) -> float:
        return self.requests / self.lower_bound


def _seed_watchers(service: LocalService, count: int) -> list[str]:
    """Write `count` monitored subscribers, each watching one new ID number; return the numbers."""
    from idsentry.adapters.batch import BatchTable
    from idsentry.crypto import Pepper
    from idsentry.identifiers import canonical_id_number
    from idsentry.item_keys import watch_pk

    assert service.stack is not None
    runtime = service.stack.runtime
    pepper = Pepper.from_secret(service.pepper)
    factory = IdentityFactory()
    run = secrets.token_hex(4)
    numbers: list[str] = []
    items: list[dict[str, Any]] = []
    for index in range(count):
        number = canonical_id_number(factory.new().id_number)
        subscriber_id = f"sbr_events{run}{index:06d}"
        fingerprint = pepper.fingerprint("id_number", number)
        items += [
            {"pk": f"SUB#{subscriber_id}", "sk": "PROFILE", "monitored": True},
            {"pk": watch_pk("id_number", fingerprint), "sk": "WATCH", "subscriber_ids": {subscriber_id}},
        ]  # fmt: skip
        numbers.append(number)
    BatchTable(runtime.environment["TABLE_NAME"], runtime.client("dynamodb")).put_many(items)
    return numbers


def _breach_file(numbers: list[str]) -> tuple[bytes, bytes]:
    """Return the CSV data and the manifest of a breach that lists every number."""
    rows = ["姓名,身份证号"] + [f"测试用户,{number}" for number in numbers]
    manifest = {
        "breach": {
            "Name": f"BenchEvents{secrets.token_hex(4)}",
            "Title": "Bench events shop",
            "Domain": "events.example.com",
            "BreachDate": "2026-11-01",
            "DataClasses": ["Names", "Government issued IDs"],
            "IsVerified": True,
        },
        "encoding": "gb18030",
        "format": "csv",
        "columns": {"姓名": "name", "身份证号": "id_number"},
        "provenance": PROVENANCE,
    }
    data = ("\n".join(rows) + "\n").encode("gb18030")
    return data, json.dumps(manifest, ensure_ascii=False).encode("utf-8")


def _run_intake_queues(service: LocalService) -> None:
    """Poll the intake and ingest queues until a whole round receives nothing."""
    assert service.stack is not None
    runtime = service.stack.runtime
    mappings = [m for m in runtime.mappings if m.function_logical_id in INTAKE_FUNCTIONS]
    if len(mappings) != len(INTAKE_FUNCTIONS):
        raise BenchFailedError("the template maps no queue to the intake or ingest function")
    for _ in range(MAX_ROUNDS):
        if sum(runtime.poll(mapping, wait_seconds=0).received for mapping in mappings) == 0:
            return
    raise BenchFailedError(f"the intake queues still had messages after {MAX_ROUNDS} rounds")


def measure_exposure_events(count: int = DEFAULT_SUBSCRIBERS) -> ExposureEventsBench:
    """Ingest a breach file that finds `count` subscribers; count the events and requests."""
    service = LocalService(port=0, parameters=BENCH_PARAMETERS, background=False).start()
    try:
        quiet_handler_logs(service)
        assert service.stack is not None
        runtime = service.stack.runtime
        numbers = _seed_watchers(service, count)
        data, manifest = _breach_file(numbers)
        bucket = runtime.environment["INTAKE_BUCKET"]
        prefix = f"bench-events/{secrets.token_hex(4)}"
        s3 = runtime.client("s3")

        recorder = CallRecorder()
        recorder.install()
        try:
            with recorder.capture() as calls:
                s3.put_object(Bucket=bucket, Key=f"{prefix}/data.csv", Body=data)
                s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=manifest)
                _run_intake_queues(service)
        finally:
            recorder.active = False
            recorder.uninstall()
    finally:
        service.stop()

    requests = [
        call
        for call in calls
        if call["service"] == "events"
        and call["operation"] == "PutEvents"
        and EXPOSURE_DETECTED in call["summary"].get("detail_types", [])
    ]
    if any(call["summary"]["detail_types"] != [EXPOSURE_DETECTED] for call in requests):
        raise BenchFailedError("a PutEvents request mixed exposure events with other events")
    events = sum(int(call["summary"]["entries"]) for call in requests)
    if events != count:
        raise BenchFailedError(f"the breach file announced {events} exposures, expected {count}")
    return ExposureEventsBench(subscribers=count, events=events, requests=len(requests))


def exposure_events_section(bench: ExposureEventsBench) -> str:
    """Return the page's section on PutEvents requests per 10 exposure events."""
    met = "met" if bench.ratio <= TARGET_RATIO else "not met"
    return "\n".join(
        [
            "## Exposure events against the PutEvents lower bound",
            "",
            f"A local service of its own gets {bench.subscribers:,} monitored subscribers, each "
            "watching one synthetic ID number through a watch item under the current pepper "
            "version, as verification writes it. A breach file in GB18030 lists those numbers, "
            "and only the intake and ingest queues run, until both are empty, so nothing "
            "downstream of the events runs. botocore event handlers count the PutEvents "
            "requests that carried `Exposure.Detected` entries. The lower bound is one request "
            "per 10 entries, EventBridge's limit per request. The ingest function claims every "
            "exposure of a piece of the file first and then publishes their events together.",
            "",
            table(
                [
                    "operation",
                    "events",
                    "requests",
                    "lower bound",
                    "ratio",
                    "per 10 events",
                    "target",
                ],
                [
                    [
                        "`events:PutEvents`",
                        f"{bench.events:,}",
                        f"{bench.requests:,}",
                        f"{bench.lower_bound:,}",
                        f"{bench.ratio:.3f}×",
                        f"{bench.requests * ENTRIES_PER_REQUEST / bench.events:.2f}",
                        f"≤ {TARGET_RATIO:.2f}×: {met}",
                    ]
                ],
            ),
        ]
    )
