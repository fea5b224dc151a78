"""The bench's request counting, replay, intake, cold-start and notification measurements on tiny
inputs (no timing)."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from botocore.exceptions import ClientError

from infra.bench import intake_child
from infra.bench.child import CallRecorder, decode_bytes, item_shape
from infra.bench.coldstart import ColdStartBench, ColdStartResult
from infra.bench.coldstart_report import function_section, other_functions_section
from infra.bench.first_requests import all_first_requests, first_requests
from infra.bench.first_requests.api_routes import SignInRequest, twilio_status_event
from infra.bench.intake import (
    BreachFile,
    IntakeResults,
    TemplateFacts,
    breach_file,
    local_result,
    measure_memory,
    measure_ratio,
    request_figures,
)
from infra.bench.intake_report import intake_section
from infra.bench.memory_aws import MemoryDynamoClient, apply_update
from infra.bench.notification_counts import measure_notification_counts
from infra.bench.notifications import (
    NotificationResult,
    bench_moment,
    check_delivery,
    measure_notifications,
)
from infra.bench.replay import BENCH_KEY_PREFIX, build_plan, prepare_targets, recorded_tables
from infra.bench.report import notification_section, request_count_section
from infra.bench.request_counts import (
    BenchFailedError,
    UnitCalls,
    check_one_message_per_delivery,
    count_operations,
    measure_request_counts,
    measure_webhook_counts,
    stripe_events_queue_url,
)
from infra.bench.service import start_service
from infra.bench.workload import stripe_delivery
from infra.local.service import LocalService

pytestmark = pytest.mark.integration

INTAKE_ROWS = 400
CHECK_JOBS = 23
NOTIFY_ALERTS = 20
NOTIFY_WORKERS = 2
# Small enough that the tiny file makes several chunks.
SMALL_CHUNK_BYTES = 16 << 10


@pytest.fixture(scope="module")
def service() -> Iterator[LocalService]:
    started = start_service()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def units(service: LocalService) -> dict[str, UnitCalls]:
    return {unit.unit: unit for unit in measure_request_counts(service)}


@pytest.fixture(scope="module")
def webhook(service: LocalService) -> UnitCalls:
    return measure_webhook_counts(service)


@pytest.fixture(scope="module")
def notification(service: LocalService) -> UnitCalls:
    return measure_notification_counts(service)


def test_notification_sends_one_email_per_job(notification: UnitCalls) -> None:
    cold = count_operations(notification.cold)
    warm = count_operations(notification.warm)

    assert cold["sesv2:SendEmail"] == 1
    assert warm["sesv2:SendEmail"] == 1
    assert cold["dynamodb:BatchGetItem"] == 1
    assert cold["secretsmanager:GetSecretValue"] == 2
    assert warm["secretsmanager:GetSecretValue"] == 0


def test_report_lists_notification(notification: UnitCalls) -> None:
    section = request_count_section([notification])

    assert "One alert notification" in section
    assert "`sesv2:SendEmail`" in section


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


def test_webhook_cold_one_enqueue(webhook: UnitCalls) -> None:
    cold = count_operations(webhook.cold)
    dynamodb = [name for name in cold if name.startswith("dynamodb:")]

    assert cold["sqs:SendMessage"] == 1
    assert dynamodb == []
    assert cold["secretsmanager:GetSecretValue"] == 1


def test_webhook_warm_one_enqueue(webhook: UnitCalls) -> None:
    warm = count_operations(webhook.warm)
    dynamodb = [name for name in warm if name.startswith("dynamodb:")]

    assert warm["sqs:SendMessage"] == 1
    assert dynamodb == []
    assert warm["secretsmanager:GetSecretValue"] == 0


def test_webhook_leaves_no_message(service: LocalService, webhook: UnitCalls) -> None:
    assert service.stack is not None
    sqs = service.stack.runtime.client("sqs")
    queue_url = stripe_events_queue_url(service)
    redrive = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    dlq_arn = json.loads(redrive["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
    dlq_url = sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[1])["QueueUrl"]

    assert _queued(sqs, queue_url) == 0
    assert _queued(sqs, dlq_url) == 0


def test_enqueue_check_rejects_missing() -> None:
    with pytest.raises(BenchFailedError, match="expected one per delivery"):
        check_one_message_per_delivery(["evt_bench1", "evt_bench2"], ["evt_bench1"])
    with pytest.raises(BenchFailedError, match="1 with an event id the bench did not send"):
        check_one_message_per_delivery(["evt_bench1"], ["evt_other"])


def test_delivery_signed_over_body() -> None:
    from idsentry.services.stripe_signature import SignatureError, verify

    event = stripe_delivery("evt_bench1", "whsec_bench")
    body = event["body"].encode("utf-8")
    header = event["headers"]["stripe-signature"]

    assert json.loads(body)["id"] == "evt_bench1"
    verify(body, header, ["whsec_bench"], int(time.time()))
    with pytest.raises(SignatureError):
        verify(body, header, ["whsec_other"], int(time.time()))


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


def test_report_lists_webhook(webhook: UnitCalls) -> None:
    text = request_count_section([webhook])

    assert "### Stripe webhook delivery" in text
    assert "`sqs:SendMessage`" in text
    assert "dynamodb:" not in text


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


@pytest.fixture(scope="module")
def small_breach(tmp_path_factory: pytest.TempPathFactory) -> BreachFile:
    return breach_file(INTAKE_ROWS, cache=tmp_path_factory.mktemp("bench-data"))


@pytest.fixture(scope="module")
def intake(
    service: LocalService, small_breach: BreachFile, tmp_path_factory: pytest.TempPathFactory
) -> IntakeResults:
    """Every intake measurement on the tiny file; the local one on the module's service."""
    workdir = tmp_path_factory.mktemp("intake")
    facts = TemplateFacts(
        chunk_bytes=SMALL_CHUNK_BYTES,
        retention_days=30,
        ingest_memory_mb=1769,
        ingest_concurrency=50,
    )
    ratio = measure_ratio(small_breach, 2, workdir)
    memory = measure_memory(small_breach, facts, workdir)
    assert service.stack is not None
    runtime = service.stack.runtime
    runtime.stop()
    try:
        measured = intake_child.measure_local(
            service, small_breach.data, small_breach.manifest, check_jobs=CHECK_JOBS, deadline_s=60
        )
    finally:
        runtime.start()
    local = local_result(small_breach, CHECK_JOBS, measured)
    return IntakeResults(
        facts=facts,
        ratio=ratio,
        memory=memory,
        local=local,
        requests=request_figures(memory, local, CHECK_JOBS),
        check_jobs=CHECK_JOBS,
        elapsed_s=0.0,
    )


def test_intake_ratio_counts_values(intake: IntakeResults, small_breach: BreachFile) -> None:
    expected = sum(small_breach.expected["values_accepted"].values())

    assert intake.ratio.values == expected
    assert len(intake.ratio.ingest_s) == 2
    assert intake.ratio.ratio > 0
    assert intake.ratio.profile


def test_intake_memory_several_chunks(intake: IntakeResults) -> None:
    detail = intake.memory.detail
    write_sizes = {int(size): count for size, count in detail["index_write_sizes"].items()}
    per_chunk_bound = sum(math.ceil(entries / 25) for entries in detail["chunk_entries"])

    assert intake.memory.chunks > 1
    assert detail["chunk_outcomes"] == {"done": intake.memory.chunks}
    assert max(write_sizes) <= 25
    assert sum(write_sizes.values()) == per_chunk_bound
    assert sum(detail["chunk_batch_sizes"]) == intake.memory.chunks
    assert detail["deleted"] == ["bench/manifest.json", "bench/data.csv"]


def test_intake_local_one_chunk(intake: IntakeResults, small_breach: BreachFile) -> None:
    assert intake.local.chunks == 1
    assert intake.local.rows_read == small_breach.expected["rows_read"]
    assert intake.local.index_entries == sum(small_breach.expected["distinct"].values())


def test_intake_requests_near_bound(intake: IntakeResults) -> None:
    figures = {(figure.operation, figure.source): figure for figure in intake.requests}
    sends = [figure for figure in intake.requests if figure.operation == "sqs:SendMessageBatch"]

    assert len(figures) == 5
    assert [(figure.units, figure.requests) for figure in sends] == [(CHECK_JOBS, 3)]
    for figure in intake.requests:
        assert figure.lower_bound <= figure.requests <= figure.lower_bound + intake.memory.chunks


def test_intake_report_sections(intake: IntakeResults) -> None:
    text = intake_section(intake)

    assert "### Ingestion CPU per breach record" in text
    assert "### AWS requests against the batching lower bound" in text
    assert "### Rows per second and peak memory" in text
    assert "`sqs:SendMessageBatch`" in text
    assert "ru_maxrss" in text


def test_memory_client_rejects_oversize() -> None:
    client = MemoryDynamoClient("bench")
    puts = [
        {"PutRequest": {"Item": {"pk": {"S": f"k{number}"}, "sk": {"S": "s"}}}}
        for number in range(26)
    ]
    keys = [{"pk": {"S": f"k{number}"}, "sk": {"S": "s"}} for number in range(101)]

    with pytest.raises(ClientError, match="26 writes"):
        client.batch_write_item(RequestItems={"bench": puts})
    with pytest.raises(ClientError, match="names one key twice"):
        client.batch_write_item(RequestItems={"bench": [puts[0], puts[0]]})
    with pytest.raises(ClientError, match="101 keys"):
        client.batch_get_item(RequestItems={"bench": {"Keys": keys}})
    assert client.write_sizes == []
    assert client.get_sizes == []


def test_memory_update_set_and_add() -> None:
    item: dict[str, Any] = {"pk": "p", "sk": "s", "rows_read": 2}

    apply_update(
        item,
        "SET #status = :done ADD rows_read :read, chunks_done :one",
        {":done": "done", ":read": 3, ":one": 1},
        {"#status": "status"},
    )

    assert item == {"pk": "p", "sk": "s", "rows_read": 5, "status": "done", "chunks_done": 1}
    with pytest.raises(NotImplementedError):
        apply_update(item, "SET a = if_not_exists(a, :x)", {":x": 1}, {})


def test_breach_file_cached(small_breach: BreachFile) -> None:
    again = breach_file(INTAKE_ROWS, cache=small_breach.data.parent.parent)

    assert again.generated_s is None
    assert again.data == small_breach.data
    assert Path(again.manifest).is_file()


@pytest.fixture(scope="module")
def notified(service: LocalService) -> NotificationResult:
    return measure_notifications(service, alerts=NOTIFY_ALERTS, workers=NOTIFY_WORKERS)


def test_notify_each_alert_once(notified: NotificationResult) -> None:
    assert notified.sms_messages == NOTIFY_ALERTS
    assert notified.sms_duplicates == 0
    assert notified.email_messages == NOTIFY_ALERTS
    assert notified.email_duplicates == 0


def test_notify_nothing_lost(notified: NotificationResult) -> None:
    assert notified.sms_delivered == NOTIFY_ALERTS
    assert notified.sms_lost == 0
    assert notified.email_lost == 0
    assert notified.ledger_not_sent == 0
    assert notified.outcomes == {"sent": NOTIFY_ALERTS}
    check_delivery(notified)


def test_notify_counts_segments(notified: NotificationResult) -> None:
    assert notified.segments == sum(
        size * count for size, count in notified.segments_per_message.items()
    )
    assert notified.counted_segments < notified.segments
    assert notified.drain_s > 0
    assert notified.rate > 0


def test_notify_leaves_queue_empty(service: LocalService, notified: NotificationResult) -> None:
    assert service.stack is not None
    sqs = service.stack.runtime.client("sqs")
    queue_url = service.stack.runtime.functions["NotifierFunction"].environment[
        "NOTIFICATION_QUEUE_URL"
    ]

    assert _queued(sqs, queue_url) == 0


def test_notify_report_section(notified: NotificationResult) -> None:
    text = notification_section(notified)

    assert "## Notification throughput under the SMS rate limit" in text
    assert "| duplicate SMS (messages beyond one per number) | 0 |" in text
    assert f"{NOTIFY_WORKERS} worker processes" in text


def test_delivery_check_rejects_loss(notified: NotificationResult) -> None:
    duplicated = dataclasses.replace(notified, sms_duplicates=1)
    lost = dataclasses.replace(notified, email_lost=2, ledger_not_sent=3)

    with pytest.raises(BenchFailedError, match="1 duplicate SMS"):
        check_delivery(duplicated)
    with pytest.raises(BenchFailedError, match="2 alerts without an e-mail, 3 ledger records"):
        check_delivery(lost)


def test_bench_clock_outside_quiet_hours() -> None:
    from zoneinfo import ZoneInfo

    moment = bench_moment(date(2026, 12, 4)).astimezone(ZoneInfo("Asia/Shanghai"))

    assert (moment.year, moment.month, moment.day) == (2026, 12, 4)
    assert (moment.hour, moment.minute) == (10, 0)


# The notifier, and a schedule whose first request sends a provider request.
COLD_START_UNITS = ["notifier", "breach_check_planner"]


@pytest.fixture(scope="module")
def cold_start_bench(
    service: LocalService, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ColdStartBench, dict[str, ColdStartResult]]:
    bench = ColdStartBench(
        service, tmp_path_factory.mktemp("coldstart"), 1, first_requests(COLD_START_UNITS)
    )
    results = {result.unit: result for result in bench.run()}
    return bench, results


@pytest.fixture(scope="module")
def notifier_cold_start(
    cold_start_bench: tuple[ColdStartBench, dict[str, ColdStartResult]],
) -> ColdStartResult:
    return cold_start_bench[1]["notifier"]


def test_cold_start_measures_each(
    cold_start_bench: tuple[ColdStartBench, dict[str, ColdStartResult]],
) -> None:
    bench, results = cold_start_bench

    assert bench.failures == []
    assert sorted(results) == sorted(COLD_START_UNITS)


def test_every_function_has_first_request(service: LocalService) -> None:
    assert service.stack is not None
    defined = [request.logical_id for request in all_first_requests()]

    assert sorted(defined) == sorted(service.stack.runtime.functions)
    assert len({request.unit for request in all_first_requests()}) == len(defined)


def test_unknown_function_named() -> None:
    with pytest.raises(ValueError, match="unknown cold-start functions nope"):
        first_requests(["signup", "nope"])


def test_twilio_callback_signed_over_url() -> None:
    from twilio.request_validator import RequestValidator

    url = "http://127.0.0.1:3000/v1/webhooks/twilio/status?m=code%3Acode_1&c=sms"
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "To": "+8613800000000"}
    event = twilio_status_event(url, params, "bench-token")
    body = base64.b64decode(event["body"]).decode("ascii")

    assert event["rawPath"] == "/v1/webhooks/twilio/status"
    assert event["rawQueryString"] == "m=code%3Acode_1&c=sms"
    assert dict(parse_qsl(body)) == params
    assert RequestValidator("bench-token").validate(
        url, params, event["headers"]["x-twilio-signature"]
    )
    assert not RequestValidator("other-token").validate(
        url, params, event["headers"]["x-twilio-signature"]
    )


def test_planner_provider_request_replayed(
    cold_start_bench: tuple[ColdStartBench, dict[str, ColdStartResult]],
) -> None:
    result = cold_start_bench[1]["breach_check_planner"]
    function_requests = result.first["function"].result["provider_calls"]
    baseline = result.first["baseline"].result

    assert [call["method"] for call in function_requests] == ["GET"]
    assert function_requests[0]["url"].endswith("/api/v3/breaches")
    assert [call["url"] for call in baseline["provider_calls"]] == [
        call["url"] for call in function_requests
    ]
    assert "providers" in baseline["phases"]


def test_other_functions_table(
    cold_start_bench: tuple[ColdStartBench, dict[str, ColdStartResult]],
) -> None:
    results = cold_start_bench[1]
    text = other_functions_section([results["breach_check_planner"]])

    assert "### Every other function" in text
    assert "| `breach_check_planner` |" in text
    assert "functions/breach_check_planner/app.py" in text
    assert "`stripe` LOADED" not in text


class _RejectedSignIn(SignInRequest):
    def check(self, context: Any, result: dict[str, Any], index: int) -> None:
        raise BenchFailedError("the bench rejected this sign-in on purpose")


def test_failed_function_recorded(
    service: LocalService, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bench = ColdStartBench(service, tmp_path_factory.mktemp("rejected"), 1, [_RejectedSignIn()])

    results = bench.run()

    assert results == []
    assert [failure.unit for failure in bench.failures] == ["sign_in"]
    assert "rejected this sign-in on purpose" in bench.failures[0].reason
    text = other_functions_section([], bench.failures)
    assert "#### Functions not measured" in text


def test_query_replay_reads_as_many(service: LocalService) -> None:
    assert service.stack is not None
    runtime = service.stack.runtime
    call = {
        "service": "dynamodb",
        "operation": "Query",
        "summary": {"table": "idsentry-local", "index": "gsi1"},
        "request_bytes": 0,
        "returned": 3,
        "response_bytes": 900,
        "error_code": None,
    }
    targets = prepare_targets(
        runtime.client("dynamodb"),
        runtime.client("sqs"),
        runtime.client("events"),
        ["idsentry-local"],
    )
    (step,) = build_plan([call], targets, runtime.client)

    response = runtime.client("dynamodb").query(**step["params"])

    assert step["params"]["IndexName"] == "gsi1"
    assert response["Count"] == 3


def test_failed_write_replays_as_failed(service: LocalService) -> None:
    assert service.stack is not None
    runtime = service.stack.runtime
    call = {
        "service": "dynamodb",
        "operation": "UpdateItem",
        "summary": {"table": "idsentry-local"},
        "request_bytes": 200,
        "error_code": "ConditionalCheckFailedException",
    }
    targets = prepare_targets(
        runtime.client("dynamodb"),
        runtime.client("sqs"),
        runtime.client("events"),
        ["idsentry-local"],
    )
    (step,) = build_plan([call], targets, runtime.client)

    assert step["error_code"] == "ConditionalCheckFailedException"
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        runtime.client("dynamodb").update_item(**step["params"])


def replay_targets(service: LocalService) -> Any:
    assert service.stack is not None
    runtime = service.stack.runtime
    return prepare_targets(
        runtime.client("dynamodb"),
        runtime.client("sqs"),
        runtime.client("events"),
        ["idsentry-local"],
    )


def test_shaped_read_finds_same_attributes(service: LocalService) -> None:
    assert service.stack is not None
    runtime = service.stack.runtime
    returned = item_shape(
        {
            "pk": {"S": "SUB#sbr_1"},
            "sk": {"S": "PROFILE"},
            "status": {"S": "active"},
            "tags": {"L": [{"S": "a"}, {"N": "2"}]},
            "expires_at": {"N": "1796487346"},
        }
    )
    call = {
        "service": "dynamodb",
        "operation": "GetItem",
        "summary": {"table": "idsentry-local"},
        "request_bytes": 0,
        "returned": 1,
        "response_bytes": 300,
        "shape": {"TableName": "idsentry-local", "Key": {}, "ConsistentRead": True},
        "returned_shapes": [returned],
    }

    (step,) = build_plan([call], replay_targets(service), runtime.client)
    item = runtime.client("dynamodb").get_item(**step["params"])["Item"]

    assert step["shaped"] is True
    assert set(item) == set(returned)
    assert item["tags"] == {"L": [{"S": "x"}, {"N": "1"}]}
    assert item["pk"]["S"].startswith(BENCH_KEY_PREFIX)
    assert int(item["expires_at"]["N"]) > time.time()


def test_shaped_query_keeps_projection(service: LocalService) -> None:
    assert service.stack is not None
    runtime = service.stack.runtime
    returned = [item_shape({"pk": {"S": "WATCH#a"}, "sk": {"S": f"breach-{n}"}}) for n in (1, 2)]
    call = {
        "service": "dynamodb",
        "operation": "Query",
        "summary": {"table": "idsentry-local", "index": None},
        "request_bytes": 0,
        "returned": 2,
        "response_bytes": 200,
        "shape": {
            "TableName": "idsentry-local",
            "KeyConditionExpression": "pk = :key",
            "ProjectionExpression": "sk",
            "ExpressionAttributeValues": {":key": {"S": "xxxxxxx"}},
        },
        "returned_shapes": returned,
    }

    (step,) = build_plan([call], replay_targets(service), runtime.client)
    response = runtime.client("dynamodb").query(**step["params"])

    assert step["shaped"] is True
    assert response["Count"] == 2
    assert [set(item) for item in response["Items"]] == [{"sk"}, {"sk"}]


def shaped_update(condition: str, error_code: str | None = None) -> dict[str, Any]:
    return {
        "service": "dynamodb",
        "operation": "UpdateItem",
        "summary": {"table": "idsentry-local"},
        "request_bytes": 300,
        "error_code": error_code,
        "shape": {
            "TableName": "idsentry-local",
            "Key": {"pk": {"S": "xxxx"}, "sk": {"S": "xxxx"}},
            "UpdateExpression": "SET #s = :status, seen_at = if_not_exists(seen_at, :now)",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":status": {"S": "xxxxxx"}, ":now": {"N": "1111"}},
            "ReturnValues": "ALL_NEW",
        },
        "returned_shapes": None,
    }


def test_shaped_write_sends_same_expressions(service: LocalService) -> None:
    assert service.stack is not None
    runtime = service.stack.runtime
    call = shaped_update("attribute_not_exists(seen_at)")

    (step,) = build_plan([call], replay_targets(service), runtime.client)
    updated = runtime.client("dynamodb").update_item(**step["params"])["Attributes"]

    assert step["shaped"] is True
    assert step["params"]["UpdateExpression"] == call["shape"]["UpdateExpression"]
    assert step["params"]["ConditionExpression"] == "attribute_not_exists(seen_at)"
    assert updated["status"] == {"S": "xxxxxx"}


def test_shaped_write_ends_as_recorded(service: LocalService) -> None:
    """A write that passed for the function but fails on a new bench key is padded instead."""
    assert service.stack is not None
    runtime = service.stack.runtime
    passed = shaped_update("attribute_exists(pk)")
    failed = shaped_update("attribute_exists(pk)", "ConditionalCheckFailedException")

    passed_step, failed_step = build_plan([passed, failed], replay_targets(service), runtime.client)

    assert passed_step["shaped"] is False
    assert "UpdateExpression" in passed_step["params"]
    assert failed_step["shaped"] is True
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        runtime.client("dynamodb").update_item(**failed_step["params"])


def test_recorder_keeps_shapes_only_when_asked(service: LocalService) -> None:
    assert service.stack is not None
    runtime = service.stack.runtime
    plain = CallRecorder()
    shaped = CallRecorder(shapes=True)
    client = runtime.client("dynamodb")
    plain.watch(client)
    shaped.watch(client)

    try:
        client.get_item(TableName="idsentry-local", Key={"pk": {"S": "NONE"}, "sk": {"S": "NONE"}})
    finally:
        # The client is the runtime's shared one: the recorders stop recording its later calls.
        plain.active = shaped.active = False

    assert "shape" not in plain.calls[-1]
    assert shaped.calls[-1]["shape"]["Key"] == {"pk": {"S": "xxxx"}, "sk": {"S": "xxxx"}}
    assert shaped.calls[-1]["returned_shapes"] == []


def test_notifier_cold_start_no_stripe(notifier_cold_start: ColdStartResult) -> None:
    first = notifier_cold_start.first["function"].result

    assert notifier_cold_start.must_not_load == ("stripe",)
    assert first["loaded"] == {"stripe": False}
    assert first["batch_item_failures"] == 0
    assert "twilio" in {module.partition(".")[0] for module in first["modules"]}


def test_notifier_baseline_same_calls(notifier_cold_start: ColdStartResult) -> None:
    function_calls = notifier_cold_start.first["function"].result["calls"]
    baseline = notifier_cold_start.first["baseline"].result
    operations = [(call["service"], call["operation"]) for call in function_calls]

    assert ("kms", "Decrypt") in operations
    assert [(call["service"], call["operation"]) for call in baseline["calls"]] == operations
    assert all(call["status"] == 200 for call in baseline["calls"])
    assert "sms" in baseline["phases"]


def test_notifier_section_names_stripe(notifier_cold_start: ColdStartResult) -> None:
    text = function_section(notifier_cold_start)

    assert "### Notifier (SQS notification jobs)" in text
    assert "Every run must report no failed record" in text
    assert "`stripe` not loaded" in text


def test_decode_bytes_nested() -> None:
    encoded = {"Blob": {"__base64_bytes__": "AAEC"}, "Items": [{"__base64_bytes__": "/w=="}]}

    assert decode_bytes(encoded) == {"Blob": b"\x00\x01\x02", "Items": [b"\xff"]}
