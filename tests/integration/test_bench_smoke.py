"""The bench's request counting and replay against the local service (no timing)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from infra.bench.child import CallRecorder
from infra.bench.replay import BENCH_KEY_PREFIX, build_plan, prepare_targets, recorded_tables
from infra.bench.report import request_count_section
from infra.bench.request_counts import UnitCalls, count_operations, measure_request_counts
from infra.bench.service import start_service
from infra.local.service import LocalService

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service() -> Iterator[LocalService]:
    started = start_service()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def units(service: LocalService) -> dict[str, UnitCalls]:
    return {unit.unit: unit for unit in measure_request_counts(service)}


def test_signup_counts_plausible(units: dict[str, UnitCalls]) -> None:
    cold = count_operations(units["signup"].cold)
    warm = count_operations(units["signup"].warm)

    assert cold["dynamodb:TransactWriteItems"] == 1
    assert cold["sqs:SendMessage"] == 1
    assert cold["dynamodb:BatchGetItem"] == 1
    assert cold["kms:GenerateDataKey"] == 1
    assert cold["secretsmanager:GetSecretValue"] == 1
    assert warm["secretsmanager:GetSecretValue"] == 0
    assert warm["dynamodb:TransactWriteItems"] == 1
    assert warm["sqs:SendMessage"] == 1


def test_verify_counts_plausible(units: dict[str, UnitCalls]) -> None:
    cold = count_operations(units["verify"].cold)
    warm = count_operations(units["verify"].warm)

    assert cold["dynamodb:TransactWriteItems"] == 1
    assert cold["events:PutEvents"] == 1
    assert cold["secretsmanager:GetSecretValue"] >= 1
    assert cold["kms:Decrypt"] == 1
    assert warm["kms:Decrypt"] == 0
    assert warm["secretsmanager:GetSecretValue"] == 0
    assert sum(warm.values()) < sum(cold.values())


def test_recorder_keeps_own_thread(service: LocalService) -> None:
    assert service.stack is not None
    queue_url = service.stack.runtime.functions["SignupFunction"].environment[
        "NOTIFICATION_QUEUE_URL"
    ]
    recorder = CallRecorder(thread_id=threading.get_ident())
    recorder.install()
    try:
        sqs = service.stack.runtime.client("sqs")
        other = threading.Thread(target=sqs.list_queues)
        other.start()
        other.join()
        sqs.get_queue_url(QueueName=queue_url.rsplit("/", 1)[1])
    finally:
        recorder.uninstall()

    assert [call["operation"] for call in recorder.calls] == ["GetQueueUrl"]
    assert recorder.calls[0]["status"] == 200
    assert recorder.calls[0]["attempts"] == 1


def test_report_lists_each_unit(units: dict[str, UnitCalls]) -> None:
    text = request_count_section(list(units.values()))

    assert "### Signup" in text
    assert "### Verification" in text
    assert "`dynamodb:TransactWriteItems`" in text
    assert "ratio cold" in text


def test_replay_touches_no_product_queue(
    service: LocalService, units: dict[str, UnitCalls]
) -> None:
    assert service.stack is not None
    runtime = service.stack.runtime
    sqs = runtime.client("sqs")
    product_queue = runtime.functions["SignupFunction"].environment["NOTIFICATION_QUEUE_URL"]
    calls = units["signup"].cold
    targets = prepare_targets(
        runtime.client("dynamodb"), sqs, runtime.client("events"), recorded_tables(calls)
    )
    plan = build_plan(calls, targets, runtime.client)
    sends = sum(1 for step in plan if step["service"] == "sqs")

    assert [step["service"] for step in plan] == [call["service"] for call in calls]
    assert sends == 1
    runtime.stop()
    try:
        product_before = _queued(sqs, product_queue)
        bench_before = _queued(sqs, targets.queue_url)
        for step in plan:
            getattr(runtime.client(step["service"]), step["method"])(**step["params"])
        product_after = _queued(sqs, product_queue)
        bench_after = _queued(sqs, targets.queue_url)
    finally:
        runtime.start()
    assert product_after == product_before
    assert bench_after == bench_before + sends


def test_replay_keys_are_bench_only(service: LocalService, units: dict[str, UnitCalls]) -> None:
    assert service.stack is not None
    runtime = service.stack.runtime
    calls = units["signup"].cold
    targets = prepare_targets(
        runtime.client("dynamodb"),
        runtime.client("sqs"),
        runtime.client("events"),
        recorded_tables(calls),
    )
    plan = build_plan(calls, targets, runtime.client)

    transaction = next(step for step in plan if step["method"] == "transact_write_items")
    for item in transaction["params"]["TransactItems"]:
        body = next(iter(item.values()))
        key = body.get("Item") or body["Key"]
        hash_name = targets.tables[body["TableName"]].hash_name
        assert key[hash_name]["S"].startswith(BENCH_KEY_PREFIX)


def _queued(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(count) for count in attributes.values())
