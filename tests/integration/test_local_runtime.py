"""The in-process Lambda runtime: SQS mappings, partial batch failures, schedules, environment."""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.provision import ProvisionedStack
from infra.local.runtime import (
    EnvironmentConflictError,
    LocalRuntime,
    LocalRuntimeError,
    NotIdleError,
    SettledBatch,
    failed_message_ids,
)
from infra.local.stack import LocalStack
from infra.local.template import PseudoParameters

pytestmark = pytest.mark.integration

MINI_TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "mini_template.yaml"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(
        MINI_TEMPLATE,
        pseudo=PseudoParameters(stack_name="mini-runtime"),
        extra_environment={"FIXTURE_EXTRA": "from-caller"},
        visibility_timeout_override=0,
    )
    local.start()
    yield local
    local.stop()


@pytest.fixture
def runtime(stack: LocalStack) -> Iterator[LocalRuntime]:
    stack.runtime.run_until_idle()
    yield stack.runtime


def items(stack: LocalStack, kind: str) -> dict[str, dict[str, Any]]:
    """Return the fixture table's items of one kind, keyed by sort key."""
    response = stack.provisioned.client("dynamodb").query(
        TableName=stack.provisioned.table_name("EventsTable"),
        KeyConditionExpression="pk = :kind",
        ExpressionAttributeValues={":kind": {"S": kind}},
    )
    return {item["sk"]["S"]: item for item in response["Items"]}


def send_work(stack: LocalStack, *bodies: dict[str, Any]) -> None:
    stack.provisioned.client("sqs").send_message_batch(
        QueueUrl=stack.provisioned.queue_url("WorkQueue"),
        Entries=[
            {"Id": str(index), "MessageBody": json.dumps(body)} for index, body in enumerate(bodies)
        ],
    )


def drain(stack: LocalStack, queue_logical_id: str) -> None:
    sqs = stack.provisioned.client("sqs")
    url = stack.provisioned.queue_url(queue_logical_id)
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def dead_letters(stack: LocalStack) -> list[dict[str, Any]]:
    sqs = stack.provisioned.client("sqs")
    url = stack.provisioned.queue_url("WorkDLQ")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(message["Body"]) for message in messages]


# ---------------------------------------------------------------------------- SQS mappings


def test_partial_batch_failure_redelivers_failed_record(
    stack: LocalStack, runtime: LocalRuntime
) -> None:
    send_work(stack, {"id": "pb-ok-1"}, {"id": "pb-bad", "fail": True}, {"id": "pb-ok-2"})

    report = runtime.run_until_idle()

    work = items(stack, "work")
    assert work["pb-ok-1"]["receive_count"]["S"] == "1"
    assert work["pb-ok-2"]["receive_count"]["S"] == "1"
    assert {key for key in items(stack, "attempt") if key.startswith("pb-bad")} == {
        "pb-bad#1",
        "pb-bad#2",
    }
    assert dead_letters(stack) == [{"id": "pb-bad", "fail": True}]
    assert report.succeeded == 2
    assert report.failed == 2


def test_handler_exception_deletes_nothing(stack: LocalStack, runtime: LocalRuntime) -> None:
    send_work(stack, {"id": "ex-ok"}, {"id": "ex-raise", "raise": True})

    report = runtime.run_until_idle()

    assert "ex-ok" not in items(stack, "work")
    assert sorted(body["id"] for body in dead_letters(stack)) == ["ex-ok", "ex-raise"]
    assert report.succeeded == 0
    assert report.failed == 4


def test_template_visibility_timeout_kept(stack: LocalStack, runtime: LocalRuntime) -> None:
    plain = LocalRuntime(stack.provisioned)
    sqs = stack.provisioned.client("sqs")
    url = stack.provisioned.queue_url("JobsQueue")
    # The recorder raises on a body that is not an event. The message then stays hidden for
    # the queue's 30 s; if it comes back before the module ends, it only lands in JobsDLQ.
    sqs.send_message(QueueUrl=url, MessageBody='{"not": "an event"}')

    try:
        report = plain.run_until_idle()
    finally:
        plain.close()
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]

    assert report.rounds == 2
    assert report.failed == 1
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_rule_event_reaches_handler(stack: LocalStack, runtime: LocalRuntime) -> None:
    bus = stack.provisioned.event_bus_name("EventBus")
    entries = [
        {
            "Source": "fixture.orders",
            "DetailType": detail_type,
            "Detail": json.dumps({"order_id": order_id}),
            "EventBusName": bus,
        }
        for detail_type, order_id in [("Order.Placed", "rt-match"), ("Order.Cancelled", "rt-other")]
    ]
    stack.provisioned.client("events").put_events(Entries=entries)

    runtime.run_until_idle()

    events = items(stack, "event")
    assert events["rt-match"]["detail_type"]["S"] == "Order.Placed"
    assert "rt-other" not in events


def test_s3_notification_skips_test_event(stack: LocalStack, runtime: LocalRuntime) -> None:
    s3 = stack.provisioned.client("s3")
    bucket = stack.provisioned.bucket_name("IntakeBucket")
    # Writing the notification configuration again makes moto send a fresh s3:TestEvent.
    configuration = s3.get_bucket_notification_configuration(Bucket=bucket)
    configuration.pop("ResponseMetadata")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)
    s3.put_object(Bucket=bucket, Key="incoming/upload.csv", Body=b"a,b\n")
    s3.put_object(Bucket=bucket, Key="elsewhere/ignored.csv", Body=b"a,b\n")

    report = runtime.run_until_idle()

    uploads = items(stack, "s3")
    assert report.test_events == 1
    assert items(stack, "s3-test-event") == {}
    # moto 5.2.5 URL-encodes "/" in event keys; S3 itself leaves it as is.
    assert [key for key in uploads if "upload" in key] == ["incoming%2Fupload.csv"]
    assert not [key for key in uploads if "ignored" in key]


def test_run_until_idle_raises_past_max_rounds(stack: LocalStack, runtime: LocalRuntime) -> None:
    send_work(stack, {"id": "loop", "resend": True})

    try:
        with pytest.raises(NotIdleError, match=r"after 3 rounds .*max_rounds=3"):
            runtime.run_until_idle(max_rounds=3)
    finally:
        drain(stack, "WorkQueue")


def test_run_until_idle_raises_past_deadline(stack: LocalStack, runtime: LocalRuntime) -> None:
    send_work(stack, {"id": "loop-deadline", "resend": True})

    try:
        with pytest.raises(NotIdleError, match="deadline_s=0"):
            runtime.run_until_idle(deadline_s=0)
    finally:
        drain(stack, "WorkQueue")


def test_run_until_idle_returns_when_empty(runtime: LocalRuntime) -> None:
    report = runtime.run_until_idle(max_rounds=1, deadline_s=0)

    assert report.rounds == 1
    assert report.received == 0


def test_background_pollers_process_messages(stack: LocalStack, runtime: LocalRuntime) -> None:
    send_work(stack, {"id": "bg-1"}, {"id": "bg-2"})

    runtime.start()
    try:
        with pytest.raises(LocalRuntimeError, match="cannot run while the pollers are started"):
            runtime.run_until_idle()
    finally:
        runtime.stop()
    runtime.run_until_idle()

    assert {"bg-1", "bg-2"} <= set(items(stack, "work"))


# ---------------------------------------------------------------------------- invocation


def test_sqs_event_shape(stack: LocalStack, runtime: LocalRuntime) -> None:
    captured: list[dict[str, Any]] = []
    handler = runtime.load_handler("FlakyFunction")
    runtime._handlers["FlakyFunction"] = lambda event, context: captured.append(event)
    sqs = stack.provisioned.client("sqs")
    sqs.send_message(
        QueueUrl=stack.provisioned.queue_url("WorkQueue"),
        MessageBody='{"id": "shape"}',
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "check"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
        },
    )

    try:
        runtime.run_until_idle()
    finally:
        runtime._handlers["FlakyFunction"] = handler

    record = captured[0]["Records"][0]
    assert record["body"] == '{"id": "shape"}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == stack.provisioned.queue_arn("WorkQueue")
    assert record["awsRegion"] == "us-east-1"
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "check",
        "binaryValue": None,
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AQI="
    assert {"messageId", "receiptHandle", "md5OfBody", "md5OfMessageAttributes"} <= set(record)


def test_invoke_context_and_layer(stack: LocalStack, runtime: LocalRuntime) -> None:
    result = runtime.invoke("PlannerFunction", {"direct": True})

    function = stack.provisioned.function("PlannerFunction")
    assert result["event"] == {"direct": True}
    assert result["function_name"] == function.name
    assert result["function_version"] == "$LATEST"
    assert result["invoked_function_arn"] == function.arn
    assert result["memory_limit_in_mb"] == 128
    assert result["log_group_name"] == f"/aws/lambda/{function.name}"
    assert 0 < result["remaining_ms"] <= 10_000
    assert result["layer"] == "fixture"


def test_invoke_by_name_and_arn(stack: LocalStack, runtime: LocalRuntime) -> None:
    function = stack.provisioned.function("PlannerFunction")

    by_name = runtime.invoke(function.name, {})
    by_arn = runtime.invoke(function.arn, {})

    assert by_name["function_name"] == by_arn["function_name"] == function.name


def test_invoke_rejects_non_json_event(runtime: LocalRuntime) -> None:
    with pytest.raises(LocalRuntimeError, match="not JSON serialisable"):
        runtime.invoke("PlannerFunction", {"when": object()})


def test_handler_modules_have_unique_names(runtime: LocalRuntime) -> None:
    for function_id in ("RecorderFunction", "FlakyFunction", "PlannerFunction"):
        runtime.load_handler(function_id)

    for name in ("recorder", "flaky", "planner"):
        module = sys.modules[f"idsentry_local_fn_{name}_app"]
        assert Path(module.__file__ or "").parent.name == name


def test_missing_handler_file_reported(stack: LocalStack) -> None:
    provisioned = copy.deepcopy(stack.provisioned)
    provisioned.records["PlannerFunction"].properties["Handler"] = "missing.handler"
    broken = LocalRuntime(provisioned)

    try:
        with pytest.raises(LocalRuntimeError, match=r"PlannerFunction: handler file .*missing\.py"):
            broken.invoke("PlannerFunction", {})
    finally:
        broken.close()


# ---------------------------------------------------------------------------- environment


def test_environment_union_applied(stack: LocalStack, runtime: LocalRuntime) -> None:
    provisioned = stack.provisioned

    assert os.environ["PLANNER_MODE"] == "fixture"
    assert os.environ["WORK_QUEUE_URL"] == provisioned.queue_url("WorkQueue")
    assert os.environ["EVENTS_TABLE"] == provisioned.table_name("EventsTable")
    assert os.environ["STAGE"] == "test"
    assert os.environ["AWS_ENDPOINT_URL"] == provisioned.endpoint_url
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert os.environ["FIXTURE_EXTRA"] == "from-caller"


def test_environment_conflict_names_functions(stack: LocalStack) -> None:
    provisioned: ProvisionedStack = copy.deepcopy(stack.provisioned)
    variables = provisioned.records["PlannerFunction"].properties["Environment"]["Variables"]
    variables["STAGE"] = "other"

    with pytest.raises(EnvironmentConflictError, match=r"STAGE .* functions .*PlannerFunction"):
        LocalRuntime(provisioned)


def test_environment_restored_on_close(stack: LocalStack) -> None:
    extra = LocalRuntime(stack.provisioned, extra_environment={"FIXTURE_ONLY_HERE": "1"})
    assert os.environ["FIXTURE_ONLY_HERE"] == "1"

    extra.close()

    assert "FIXTURE_ONLY_HERE" not in os.environ
    assert os.environ["FIXTURE_EXTRA"] == "from-caller"


def test_environment_rejects_remote_endpoint(stack: LocalStack) -> None:
    remote = {"AWS_ENDPOINT_URL_SQS": "https://sqs.us-east-1.amazonaws.com"}

    with pytest.raises(ValueError, match=r"must point at 127\.0\.0\.1"):
        LocalRuntime(stack.provisioned, extra_environment=remote)

    assert "AWS_ENDPOINT_URL_SQS" not in os.environ


# ---------------------------------------------------------------------------- schedules


def test_fire_scheduler_schedule_with_input(runtime: LocalRuntime) -> None:
    (result,) = runtime.fire_schedule("mini-runtime-daily-plan")

    assert result["event"]["job"] == "daily"
    assert result["event"]["scheduled_at"].endswith("Z")
    assert "<aws.scheduler" not in result["event"]["scheduled_at"]


def test_fire_scheduler_schedule_default_payload(stack: LocalStack, runtime: LocalRuntime) -> None:
    (result,) = runtime.fire_schedule("PlannerFunctionHourlyPlan")

    event = result["event"]
    assert event["source"] == "aws.scheduler"
    assert event["detail-type"] == "Scheduled Event"
    assert event["detail"] == "{}"
    assert event["resources"] == [stack.provisioned.get_att("PlannerFunctionHourlyPlan", "Arn")]


def test_fire_rule_schedule(stack: LocalStack, runtime: LocalRuntime) -> None:
    (result,) = runtime.fire_schedule("PlannerFunctionWeeklyPlan")

    event = result["event"]
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["detail"] == {}
    assert event["resources"] == [stack.provisioned.get_att("PlannerFunctionWeeklyPlan", "Arn")]


def test_list_schedules(runtime: LocalRuntime) -> None:
    names = {schedule.name for schedule in runtime.list_schedules()}

    assert "mini-runtime-daily-plan" in names
    assert "PlannerFunctionHourlyPlan" in names


def test_fire_unknown_schedule_rejected(runtime: LocalRuntime) -> None:
    with pytest.raises(KeyError, match="no schedule is named Nightly"):
        runtime.fire_schedule("Nightly")


# ---------------------------------------------------------------------------- batch responses


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemId": "b"}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b"}),
        ("not an object", {"a", "b"}),
    ],
)
def test_failed_message_ids(response: Any, expected: set[str]) -> None:
    assert failed_message_ids(response, ["a", "b"]) == expected


# ---------------------------------------------------------------------------- fault hooks


def test_crash_after_records_returns_whole_batch(stack: LocalStack, runtime: LocalRuntime) -> None:
    batches: list[SettledBatch] = []
    runtime.add_batch_observer(batches.append)
    send_work(stack, {"id": "cr-1"}, {"id": "cr-2"}, {"id": "cr-3"})
    runtime.crash_after_records("FlakyFunction", 1)

    try:
        runtime.run_until_idle()
    finally:
        runtime.remove_batch_observer(batches.append)

    work = items(stack, "work")
    assert [(batch.stopped, len(batch.failed_ids)) for batch in batches] == [(True, 3), (False, 0)]
    # The first record ran before the crash and again with the redelivered batch.
    assert {work[key]["receive_count"]["S"] for key in ("cr-1", "cr-2", "cr-3")} == {"2"}
    assert runtime.pending_crashes("FlakyFunction") == 0


def test_invocation_stopped_fails_every_record(stack: LocalStack, runtime: LocalRuntime) -> None:
    batches: list[SettledBatch] = []
    runtime.add_batch_observer(batches.append)
    send_work(stack, {"id": "st-ok"}, {"id": "st-stop", "stop": True})

    try:
        report = runtime.run_until_idle()
    finally:
        runtime.remove_batch_observer(batches.append)

    assert "st-ok" not in items(stack, "work")
    assert sorted(body["id"] for body in dead_letters(stack)) == ["st-ok", "st-stop"]
    assert all(batch.stopped and batch.failed_receipts for batch in batches)
    assert (report.succeeded, report.failed) == (0, 4)
