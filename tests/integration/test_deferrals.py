"""Deferred alert SMS against moto: idempotent deferral, due releases and racing releasers."""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.clock import epoch
from idsentry.ids import new_id
from idsentry.item_keys import DEFER_SK, deferral_pk
from idsentry.models.jobs import AlertJob
from idsentry.services.deferrals import (
    DEFERRED_INDEX_KEY,
    EXPIRES_AFTER_RELEASE_SECONDS,
    defer_alert_sms,
    release_due,
    release_sort_key,
)
from infra.local.service import LocalService
from tests.integration.conftest import table_item

pytestmark = pytest.mark.integration

# 23:00 in China on 2026-12-04. Quiet hours end at 08:00 there, 00:00 UTC on 2026-12-05.
NIGHT = epoch(datetime(2026, 12, 4, 15, 0, tzinfo=UTC))
MORNING = epoch(datetime(2026, 12, 5, 0, 0, tzinfo=UTC))
SUBSCRIBER = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"


def alert_job() -> AlertJob:
    alert_id = new_id("alt")
    return AlertJob(
        job_id=f"job_{alert_id}",
        subscriber_id=SUBSCRIBER,
        alert_id=alert_id,
        breach_name="ExampleShop2026",
    )


class HookedQueue(JobQueue):
    """A real queue that runs `before_send` once, before its first batch leaves."""

    def __init__(self, queue_url: str, client: Any) -> None:
        super().__init__(queue_url, client)
        self.url = queue_url
        self.before_send: Callable[[], object] | None = None
        self.batches = 0

    def send_many(self, jobs: Sequence[BaseModel]) -> None:
        self.batches += 1
        hook, self.before_send = self.before_send, None
        if hook is not None:
            hook()
        super().send_many(jobs)


class StaleIndexTable(MainTable):
    """The main table whose index still lists `stale` keys, as DynamoDB's index can after a delete."""

    def __init__(self, table_name: str, client: Any, stale: list[tuple[str, str]]) -> None:
        super().__init__(table_name, client)
        self._stale = stale

    def query_index(
        self, index: str, pk_value: str, sk_upto: str, limit: int
    ) -> list[dict[str, Any]]:
        found = super().query_index(index, pk_value, sk_upto, limit)
        stale = [{"pk": pk, "sk": sk} for pk, sk in self._stale]
        return (stale + found)[:limit]


@pytest.fixture
def table(local_service: LocalService) -> Iterator[MainTable]:
    assert local_service.stack is not None
    client = local_service.stack.runtime.client("dynamodb")
    yield MainTable("idsentry-local", client)
    # release_due reads every due job of the table, so no test may leave one behind.
    for page in client.get_paginator("scan").paginate(TableName="idsentry-local"):
        for item in page["Items"]:
            client.delete_item(TableName="idsentry-local", Key={"pk": item["pk"], "sk": item["sk"]})


@pytest.fixture
def sqs(local_service: LocalService) -> Any:
    assert local_service.stack is not None
    return local_service.stack.runtime.client("sqs")


@pytest.fixture
def queue(sqs: Any) -> HookedQueue:
    # A queue of the test's own, so no other job in the local stack is counted.
    url = sqs.create_queue(QueueName=f"deferral-test-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    return HookedQueue(url, sqs)


def queued_jobs(sqs: Any, queue: HookedQueue) -> list[AlertJob]:
    """Receive every message of the queue once, as alert jobs."""
    jobs: list[AlertJob] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=queue.url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=600,
            WaitTimeSeconds=0,
        )
        messages = response.get("Messages", [])
        if not messages:
            return jobs
        jobs.extend(AlertJob.model_validate_json(message["Body"]) for message in messages)


def deferred_keys(table: MainTable) -> set[str]:
    """Return the job ids the index lists as deferred, due or not."""
    items = table.query_index("gsi1", DEFERRED_INDEX_KEY, "9999999999~", 1000)
    return {str(item["pk"]).removeprefix("DEFER#") for item in items}


# ---------------------------------------------------------------------------- deferring


def test_defer_writes_item(table: MainTable) -> None:
    job = alert_job()

    written = defer_alert_sms(table, job, MORNING, NIGHT)

    item = table.get(deferral_pk(job.job_id), DEFER_SK)
    assert written is True
    assert item is not None
    assert item["gsi1pk"] == "DEFERRED"
    assert item["gsi1sk"] == f"{MORNING:010d}#{job.job_id}"
    assert AlertJob.model_validate_json(item["job"]) == job
    assert item["release_at"] == MORNING
    assert item["deferred_at"] == NIGHT
    assert item["expires_at"] == MORNING + EXPIRES_AFTER_RELEASE_SECONDS


def test_defer_twice_changes_nothing(local_service: LocalService, table: MainTable) -> None:
    job = alert_job()
    defer_alert_sms(table, job, MORNING, NIGHT)
    before = table_item(local_service, deferral_pk(job.job_id), DEFER_SK)

    again = defer_alert_sms(table, job, MORNING, NIGHT + 600)

    assert again is False
    assert table_item(local_service, deferral_pk(job.job_id), DEFER_SK) == before


def test_defer_new_release_moves_job(table: MainTable) -> None:
    job = alert_job()
    defer_alert_sms(table, job, MORNING, NIGHT)

    moved = defer_alert_sms(table, job, MORNING + 3600, NIGHT + 600)

    item = table.get(deferral_pk(job.job_id), DEFER_SK)
    assert moved is True
    assert item is not None
    assert item["gsi1sk"] == release_sort_key(MORNING + 3600, job.job_id)
    assert deferred_keys(table) == {job.job_id}


@pytest.mark.parametrize("release_at", [NIGHT, NIGHT - 1])
def test_defer_past_release_rejected(table: MainTable, release_at: int) -> None:
    job = alert_job()

    with pytest.raises(ValueError, match="release_at"):
        defer_alert_sms(table, job, release_at, NIGHT)

    assert table.get(deferral_pk(job.job_id), DEFER_SK) is None


# ---------------------------------------------------------------------------- releasing


def test_release_due_jobs_only(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    early, on_time, later = alert_job(), alert_job(), alert_job()
    defer_alert_sms(table, early, MORNING - 60, NIGHT)
    defer_alert_sms(table, on_time, MORNING, NIGHT)
    defer_alert_sms(table, later, MORNING + 1, NIGHT)

    released = release_due(table, queue, MORNING, limit=100)

    assert released == 2
    assert sorted(job.job_id for job in queued_jobs(sqs, queue)) == sorted(
        [early.job_id, on_time.job_id]
    )
    assert deferred_keys(table) == {later.job_id}


def test_release_before_due_sends_nothing(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    defer_alert_sms(table, alert_job(), MORNING, NIGHT)

    released = release_due(table, queue, MORNING - 1, limit=100)

    assert released == 0
    assert queued_jobs(sqs, queue) == []
    assert queue.batches == 0


def test_release_twice_sends_once(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    job = alert_job()
    defer_alert_sms(table, job, MORNING, NIGHT)

    first = release_due(table, queue, MORNING, limit=100)
    second = release_due(table, queue, MORNING + 60, limit=100)

    assert first == 1
    assert second == 0
    assert queued_jobs(sqs, queue) == [job]


def test_release_sends_batches(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    jobs = [alert_job() for _ in range(23)]
    for job in jobs:
        defer_alert_sms(table, job, MORNING, NIGHT)

    released = release_due(table, queue, MORNING, limit=100)

    assert released == 23
    # 23 jobs in SendMessageBatch calls of at most 10 messages.
    assert queue.batches == 3
    assert Counter(job.job_id for job in queued_jobs(sqs, queue)) == Counter(
        job.job_id for job in jobs
    )


def test_release_pages_up_to_limit(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    jobs = [alert_job() for _ in range(230)]
    for job in jobs:
        defer_alert_sms(table, job, MORNING, NIGHT)

    first = release_due(table, queue, MORNING, limit=150)
    left_after_first = len(deferred_keys(table))
    second = release_due(table, queue, MORNING, limit=150)

    assert first == 150
    assert left_after_first == 80
    assert second == 80
    assert deferred_keys(table) == set()
    assert sorted(job.job_id for job in queued_jobs(sqs, queue)) == sorted(
        job.job_id for job in jobs
    )


def test_release_in_due_order(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    late, early = alert_job(), alert_job()
    defer_alert_sms(table, late, MORNING - 10, NIGHT)
    defer_alert_sms(table, early, MORNING - 20, NIGHT)

    released = release_due(table, queue, MORNING, limit=1)

    assert released == 1
    assert queued_jobs(sqs, queue) == [early]
    assert deferred_keys(table) == {late.job_id}


def test_release_bad_limit_rejected(table: MainTable, queue: HookedQueue) -> None:
    with pytest.raises(ValueError, match="limit"):
        release_due(table, queue, MORNING, limit=0)


def test_expired_job_dropped(
    table: MainTable, queue: HookedQueue, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    job = alert_job()
    defer_alert_sms(table, job, MORNING, NIGHT)

    with caplog.at_level(logging.INFO, logger="idsentry.services.deferrals"):
        released = release_due(table, queue, MORNING + EXPIRES_AFTER_RELEASE_SECONDS, limit=100)

    assert released == 0
    assert queued_jobs(sqs, queue) == []
    assert deferred_keys(table) == set()
    messages = [record.getMessage() for record in caplog.records]
    assert "deferred job expired unsent" in messages


def test_invalid_job_left_in_place(
    table: MainTable, queue: HookedQueue, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    good = alert_job()
    defer_alert_sms(table, good, MORNING, NIGHT)
    table.put(
        {
            "pk": deferral_pk("job_broken"),
            "sk": DEFER_SK,
            "gsi1pk": DEFERRED_INDEX_KEY,
            "gsi1sk": release_sort_key(MORNING - 60, "job_broken"),
            "job": json.dumps({"kind": "alert", "job_id": "job_broken"}),
            "release_at": MORNING - 60,
            "expires_at": MORNING + EXPIRES_AFTER_RELEASE_SECONDS,
        }
    )

    with caplog.at_level(logging.ERROR, logger="idsentry.services.deferrals"):
        released = release_due(table, queue, MORNING, limit=100)

    assert released == 1
    assert queued_jobs(sqs, queue) == [good]
    assert deferred_keys(table) == {"job_broken"}
    (record,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert record.getMessage() == "deferred job invalid"
    assert record.__dict__["job_id"] == "job_broken"


def test_stale_index_entry_skipped(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    deleted_job = alert_job()
    stale_table = StaleIndexTable(
        table.name, table.client(), stale=[(deferral_pk(deleted_job.job_id), DEFER_SK)]
    )
    job = alert_job()
    defer_alert_sms(table, job, MORNING, NIGHT)

    released = release_due(stale_table, queue, MORNING, limit=100)

    assert released == 1
    assert queued_jobs(sqs, queue) == [job]


# ---------------------------------------------------------------------------- racing releasers


def test_concurrent_releasers_send_at_most_twice(
    table: MainTable, queue: HookedQueue, sqs: Any
) -> None:
    jobs = [alert_job() for _ in range(4)]
    for job in jobs:
        defer_alert_sms(table, job, MORNING, NIGHT)
    other_queue = HookedQueue(queue.url, sqs)
    other_released: list[int] = []

    # The second releaser runs whole after the first has read the jobs and before it sends.
    def other_releaser() -> None:
        other_released.append(release_due(table, other_queue, MORNING + 5, limit=100))

    queue.before_send = other_releaser
    released = release_due(table, queue, MORNING, limit=100)

    sent = Counter(job.job_id for job in queued_jobs(sqs, queue))
    assert other_released == [4]
    assert released == 0
    assert sent == Counter({job.job_id: 2 for job in jobs})
    assert deferred_keys(table) == set()


def test_releaser_racing_mid_run(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    jobs = [alert_job() for _ in range(25)]
    for job in jobs:
        defer_alert_sms(table, job, MORNING, NIGHT)
    other_queue = HookedQueue(queue.url, sqs)
    other_released: list[int] = []

    def start_other_after_first_batch() -> None:
        queue.before_send = lambda: other_released.append(
            release_due(table, other_queue, MORNING, limit=100)
        )

    # The first batch of 10 is sent and deleted; the other releaser runs before the second.
    queue.before_send = start_other_after_first_batch
    released = release_due(table, queue, MORNING, limit=100)

    sent = Counter(job.job_id for job in queued_jobs(sqs, queue))
    assert released == 10
    assert other_released == [15]
    assert sorted(sent) == sorted(job.job_id for job in jobs)
    assert sorted(sent.values()) == [1] * 10 + [2] * 15
    assert deferred_keys(table) == set()


def test_redeferred_job_survives_release(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    job = alert_job()
    defer_alert_sms(table, job, MORNING, NIGHT)

    # While the releaser sends, the job is deferred again to a later time (a new time zone).
    queue.before_send = lambda: defer_alert_sms(table, job, MORNING + 7200, MORNING)
    released = release_due(table, queue, MORNING, limit=100)

    assert released == 0
    assert deferred_keys(table) == {job.job_id}
    assert release_due(table, queue, MORNING + 7200, limit=100) == 1
    assert queued_jobs(sqs, queue) == [job, job]


def test_released_copies_identical(table: MainTable, queue: HookedQueue, sqs: Any) -> None:
    # The notifier's ledger key comes from the job's alert id, so a job queued twice is one
    # ledger entry and its second copy sends nothing.
    job = alert_job()
    defer_alert_sms(table, job, MORNING, NIGHT)
    other_queue = HookedQueue(queue.url, sqs)
    queue.before_send = lambda: release_due(table, other_queue, MORNING, limit=100)

    release_due(table, queue, MORNING, limit=100)

    first, second = queued_jobs(sqs, queue)
    assert first == second == job


# ---------------------------------------------------------------------------- scheduled function


def test_schedule_releases_due_job(local_service: LocalService, table: MainTable, sqs: Any) -> None:
    assert local_service.stack is not None
    runtime = local_service.stack.runtime
    queue_url = runtime.environment["NOTIFICATION_QUEUE_URL"]
    sqs.purge_queue(QueueUrl=queue_url)
    now = epoch(datetime.now(UTC))
    due, not_due = alert_job(), alert_job()
    defer_alert_sms(table, due, now - 60, now - 120)
    defer_alert_sms(table, not_due, now + 3600, now - 120)

    (result,) = runtime.fire_schedule("idsentry-local-notification-release")

    assert result == {"released": 1, "review_batches_published": 0}
    assert queued_jobs(sqs, HookedQueue(queue_url, sqs)) == [due]
    assert deferred_keys(table) == {not_due.job_id}


def test_schedule_sample_releases_nothing(local_service: LocalService, table: MainTable) -> None:
    assert local_service.stack is not None
    sample_path = Path(__file__).resolve().parents[2] / "events/schedule/notification_release.json"
    sample = json.loads(sample_path.read_text(encoding="utf-8"))

    result = local_service.stack.runtime.invoke("NotificationReleaseFunction", sample)

    assert result == {"released": 0, "review_batches_published": 0}
