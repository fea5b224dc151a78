"""The local stack provisions SAM templates in moto: the fixture template and template.yaml."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.local.provision import (
    SKIPPED_PREFIXES,
    ProvisionedStack,
    ResourceRecord,
    provision_stack,
)
from infra.local.runtime import LocalRuntime, LocalRuntimeError
from infra.local.stack import DEFAULT_TEMPLATE, LocalStack
from infra.local.template import PseudoParameters, TemplateError, load_template

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MINI_TEMPLATE = FIXTURES / "mini_template.yaml"
GIVEN_API_SECRET = '{"api_key": "given-by-test"}'


@pytest.fixture(scope="module")
def mini() -> Iterator[ProvisionedStack]:
    stack = LocalStack(
        MINI_TEMPLATE,
        secret_values={"ApiSecret": GIVEN_API_SECRET},
        pseudo=PseudoParameters(stack_name="mini-provision"),
    )
    stack.start()
    yield stack.provisioned
    stack.stop()


def receive_all(stack: ProvisionedStack, queue_logical_id: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    url = stack.queue_url(queue_logical_id)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


# ---------------------------------------------------------------------------- fixture template


def test_table_keys_indexes_ttl_and_recovery(mini: ProvisionedStack) -> None:
    dynamodb = mini.client("dynamodb")
    name = mini.table_name("EventsTable")

    table = dynamodb.describe_table(TableName=name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    backups = dynamodb.describe_continuous_backups(TableName=name)

    assert name.startswith("mini-provision-EventsTable-")
    assert [key["AttributeName"] for key in table["KeySchema"]] == ["pk", "sk"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert table["SSEDescription"]["SSEType"] == "KMS"
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    assert mini.get_att("EventsTable", "Arn") == table["TableArn"]


def test_condition_excludes_resource(mini: ProvisionedStack) -> None:
    record = mini.record("ProdOnlyTable")

    assert record.status == "excluded"
    assert record.condition == "IsProd"
    with pytest.raises(TemplateError, match="condition IsProd is false"):
        mini.ref("ProdOnlyTable")


def test_queue_attributes_and_redrive(mini: ProvisionedStack) -> None:
    sqs = mini.client("sqs")

    attributes = sqs.get_queue_attributes(
        QueueUrl=mini.queue_url("WorkQueue"), AttributeNames=["All"]
    )["Attributes"]

    assert mini.queue_url("WorkQueue").endswith("/mini-provision-work")
    assert attributes["VisibilityTimeout"] == "30"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": mini.queue_arn("WorkDLQ"),
        "maxReceiveCount": 2,
    }
    assert mini.get_att("WorkQueue", "QueueName") == "mini-provision-work"


def test_queue_policy_applied(mini: ProvisionedStack) -> None:
    attributes = mini.client("sqs").get_queue_attributes(
        QueueUrl=mini.queue_url("JobsQueue"), AttributeNames=["Policy"]
    )["Attributes"]

    statement = json.loads(attributes["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == mini.get_att("OrdersRule", "Arn")


def test_rule_delivers_matching_event_only(mini: ProvisionedStack) -> None:
    bus = mini.event_bus_name("EventBus")
    entries = [
        {
            "Source": "fixture.orders",
            "DetailType": detail_type,
            "Detail": json.dumps({"order_id": order_id}),
            "EventBusName": bus,
        }
        for detail_type, order_id in [("Order.Placed", "o-match"), ("Order.Cancelled", "o-other")]
    ]

    response = mini.client("events").put_events(Entries=entries)
    messages = receive_all(mini, "JobsQueue")

    assert response["FailedEntryCount"] == 0
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert event["detail-type"] == "Order.Placed"
    assert event["detail"] == {"order_id": "o-match"}


def test_bucket_configuration(mini: ProvisionedStack) -> None:
    s3 = mini.client("s3")
    name = mini.bucket_name("IntakeBucket")

    versioning = s3.get_bucket_versioning(Bucket=name)
    encryption = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    access = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    notifications = s3.get_bucket_notification_configuration(Bucket=name)

    assert name.startswith("mini-provision-intakebucket-")
    assert versioning["Status"] == "Enabled"
    default = encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert default["KMSMasterKeyID"] == mini.get_att("DataKey", "Arn")
    assert lifecycle[0]["ID"] == "expire-incoming"
    assert lifecycle[0]["Expiration"] == {"Days": 1}
    assert lifecycle[0]["Filter"] == {"Prefix": "incoming/"}
    assert all(access.values())
    queue = notifications["QueueConfigurations"][0]
    assert queue["QueueArn"] == mini.queue_arn("IntakeQueue")
    assert queue["Events"] == ["s3:ObjectCreated:*"]
    assert queue["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"}]


def test_bucket_notification_sends_test_event(mini: ProvisionedStack) -> None:
    messages = receive_all(mini, "IntakeQueue")

    assert [json.loads(message["Body"])["Event"] for message in messages] == ["s3:TestEvent"]


def test_bucket_policy_leaves_out_conditional_statements(mini: ProvisionedStack) -> None:
    s3 = mini.client("s3")
    name = mini.bucket_name("IntakeBucket")

    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=name)
    s3.put_object(Bucket=name, Key="other/file.txt", Body=b"content")
    assert s3.get_object(Bucket=name, Key="other/file.txt")["Body"].read() == b"content"


def test_secrets_given_and_generated(mini: ProvisionedStack) -> None:
    secrets = mini.client("secretsmanager")

    given = secrets.get_secret_value(SecretId=mini.secret_arn("ApiSecret"))["SecretString"]
    pepper = json.loads(secrets.get_secret_value(SecretId="mini-provision/pepper")["SecretString"])

    assert given == GIVEN_API_SECRET
    assert pepper["current"] == "1"
    assert len(pepper["1"]) == 48
    assert pepper["1"].isalnum()


def test_kms_key_alias_and_rotation(mini: ProvisionedStack) -> None:
    kms = mini.client("kms")
    key_id = mini.key_id("DataKey")

    metadata = kms.describe_key(KeyId="alias/mini-provision-data")["KeyMetadata"]
    rotation = kms.get_key_rotation_status(KeyId=key_id)

    assert metadata["KeyId"] == key_id
    assert metadata["Description"] == "Fixture key."
    assert rotation["KeyRotationEnabled"] is True


def test_log_group_alarm_and_dashboard(mini: ProvisionedStack) -> None:
    groups = mini.client("logs").describe_log_groups(
        logGroupNamePrefix="/aws/lambda/mini-provision-recorder"
    )["logGroups"]
    cloudwatch = mini.client("cloudwatch")
    alarm = cloudwatch.describe_alarms(AlarmNames=[mini.ref("WorkDLQAlarm")])["MetricAlarms"][0]
    dashboards = cloudwatch.list_dashboards()["DashboardEntries"]

    assert groups[0]["retentionInDays"] == 7
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": mini.get_att("WorkDLQ", "QueueName")}
    ]
    assert alarm["Threshold"] == 0.0
    assert mini.ref("Dashboard") in [entry["DashboardName"] for entry in dashboards]


def test_schedules_recorded(mini: ProvisionedStack) -> None:
    schedules = {schedule.logical_id: schedule for schedule in mini.schedules()}
    moto_schedule = mini.client("scheduler").get_schedule(Name="mini-provision-daily-plan")

    assert set(schedules) == {
        "PlannerFunctionDailyPlan",
        "PlannerFunctionHourlyPlan",
        "PlannerFunctionWeeklyPlan",
    }
    daily = schedules["PlannerFunctionDailyPlan"]
    assert daily.kind == "scheduler"
    assert daily.timezone == "Asia/Shanghai"
    assert daily.targets[0].arn == mini.function("PlannerFunction").arn
    assert moto_schedule["Target"]["Input"] == daily.targets[0].input
    weekly = schedules["PlannerFunctionWeeklyPlan"]
    assert weekly.kind == "events-rule"
    assert weekly.expression == "cron(0 3 ? * MON *)"


def test_functions_and_mappings_recorded(mini: ProvisionedStack) -> None:
    functions = mini.functions()
    mappings = {mapping.logical_id: mapping for mapping in mini.event_source_mappings()}

    recorder = functions["RecorderFunction"]
    assert recorder.name == "mini-provision-recorder"
    assert recorder.memory_mb == 256
    assert recorder.timeout_s == 10
    assert recorder.code_dir == FIXTURES / "functions" / "recorder"
    assert recorder.layer_dirs == (FIXTURES / "layers" / "fixture",)
    assert functions["FlakyFunction"].timeout_s == 20
    assert functions["PlannerFunction"].memory_mb == 128
    assert functions["PlannerFunction"].environment["PLANNER_MODE"] == "fixture"
    assert set(mappings) == {
        "RecorderFunctionOrders",
        "RecorderFunctionIntake",
        "FlakyFunctionWork",
    }
    work = mappings["FlakyFunctionWork"]
    assert work.batch_size == 5
    assert work.report_batch_item_failures is True
    assert work.queue_url == mini.queue_url("WorkQueue")
    assert work.function_logical_id == "FlakyFunction"


def test_outputs_resolve(mini: ProvisionedStack) -> None:
    assert mini.output("WorkQueueUrl") == mini.queue_url("WorkQueue")
    assert mini.output("BusArn") == mini.get_att("EventBus", "Arn")


def test_resolved_template_has_physical_values(mini: ProvisionedStack) -> None:
    resolved = mini.resolved_template["Resources"]["FlakyFunctionWork"]["Properties"]

    assert resolved["EventSourceArn"] == mini.queue_arn("WorkQueue")
    assert resolved["BatchSize"] == 5


# ---------------------------------------------------------------------------- small templates


def write_template(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_secret_value_rejected(mini: ProvisionedStack, tmp_path: Path) -> None:
    path = write_template(
        tmp_path,
        "Resources:\n  Only:\n    Type: AWS::SecretsManager::Secret\n"
        "    Properties:\n      Name: unknown-secret-check\n",
    )

    with pytest.raises(TemplateError, match=r"secret_values name no secret .*\['Nope'\]"):
        provision_stack(path, mini.endpoint_url, secret_values={"Nope": "x"})


def test_rule_with_function_target_rejected(mini: ProvisionedStack, tmp_path: Path) -> None:
    path = write_template(
        tmp_path,
        """
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: direct-target-check
      Handler: app.handler
      Runtime: python3.12
      Role: arn:aws:iam::123456789012:role/r
      Code: {ZipFile: "def handler(event, context): pass"}
  Direct:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [fixture.direct]}
      Targets:
        - Id: fn
          Arn: !GetAtt Fn.Arn
""",
    )

    with pytest.raises(TemplateError, match=r"resource Direct.*route the rule through a queue"):
        provision_stack(path, mini.endpoint_url)


def test_function_outside_repository_recorded(
    mini: ProvisionedStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    layer_arn = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3:7"
    path = write_template(
        tmp_path,
        f"""
Resources:
  Inline:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: inline-code-check
      Handler: index.handler
      Runtime: python3.12
      Role: arn:aws:iam::123456789012:role/r
      Code: {{ZipFile: "def handler(event, context): pass"}}
      Layers: ["{layer_arn}"]
""",
    )
    stack = provision_stack(path, mini.endpoint_url)

    with caplog.at_level(logging.INFO, logger="infra.local.provision"):
        function = stack.function("Inline")
    runtime = LocalRuntime(stack)
    try:
        with pytest.raises(LocalRuntimeError, match="Inline has no local CodeUri"):
            runtime.invoke("Inline", {})
    finally:
        runtime.close()

    assert function.code_dir is None
    assert function.layer_dirs == ()
    logged = [r for r in caplog.records if r.getMessage().startswith("layer outside")]
    assert [r.__dict__["layer_arn"] for r in logged] == [layer_arn]


def test_unknown_type_skipped_with_log(
    mini: ProvisionedStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_template(
        tmp_path,
        "Resources:\n  Param:\n    Type: AWS::SSM::Parameter\n"
        "    Properties: {Type: String, Value: x}\n",
    )

    with caplog.at_level(logging.INFO, logger="infra.local.provision"):
        stack = provision_stack(path, mini.endpoint_url)

    assert stack.record("Param").status == "skipped"
    skipped = [
        r for r in caplog.records if r.getMessage() == "resource type not provisioned locally"
    ]
    assert [r.__dict__["resource_type"] for r in skipped] == ["AWS::SSM::Parameter"]


def test_dependency_cycle_rejected(mini: ProvisionedStack, tmp_path: Path) -> None:
    path = write_template(
        tmp_path,
        """
Resources:
  A:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !GetAtt B.QueueName}
  B:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !GetAtt A.QueueName}
""",
    )

    with pytest.raises(TemplateError, match="cycle"):
        provision_stack(path, mini.endpoint_url)


def test_endpoint_must_be_loopback(tmp_path: Path) -> None:
    path = write_template(tmp_path, "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n")

    with pytest.raises(ValueError, match=r"must point at 127.0.0.1"):
        provision_stack(path, "http://192.0.2.1:5000")


# ---------------------------------------------------------------------------- template.yaml


def real_function_ids() -> list[str]:
    if not DEFAULT_TEMPLATE.exists():
        return []
    resources = load_template(DEFAULT_TEMPLATE)["Resources"]
    return [
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]


@pytest.fixture(scope="module")
def real(mini: ProvisionedStack) -> Iterator[LocalStack]:
    if not DEFAULT_TEMPLATE.exists():
        pytest.skip("template.yaml does not exist yet")
    # It depends on mini so that it stops first. Both stacks share this process's moto state,
    # so their names differ (Stage, stack name) and this start() must not reset it.
    stack = LocalStack(
        DEFAULT_TEMPLATE,
        parameter_overrides={"Stage": "provtest"},
        pseudo=PseudoParameters(stack_name="real-provision"),
        reset_state=False,
    )
    stack.start()
    yield stack
    stack.stop()


def check_exists(stack: ProvisionedStack, record: ResourceRecord) -> None:
    """Describe the record's resource in moto; raise if moto does not have it."""
    physical_id = record.physical_id
    checks = {
        "AWS::DynamoDB::Table": lambda: stack.client("dynamodb").describe_table(
            TableName=physical_id
        ),
        "AWS::SQS::Queue": lambda: stack.client("sqs").get_queue_attributes(
            QueueUrl=physical_id, AttributeNames=["QueueArn"]
        ),
        "AWS::Events::EventBus": lambda: stack.client("events").describe_event_bus(
            Name=physical_id
        ),
        "AWS::Events::Rule": lambda: stack.client("events").describe_rule(
            Name=record.attributes["Name"],
            EventBusName=record.properties.get("EventBusName", "default").split("/")[-1],
        ),
        "AWS::S3::Bucket": lambda: stack.client("s3").head_bucket(Bucket=physical_id),
        "AWS::KMS::Key": lambda: stack.client("kms").describe_key(KeyId=physical_id),
        "AWS::KMS::Alias": lambda: stack.client("kms").describe_key(KeyId=physical_id),
        "AWS::SecretsManager::Secret": lambda: stack.client("secretsmanager").describe_secret(
            SecretId=physical_id
        ),
        "AWS::Logs::LogGroup": lambda: stack.client("logs").describe_log_groups(
            logGroupNamePrefix=physical_id
        )["logGroups"][0],
        "AWS::CloudWatch::Alarm": lambda: stack.client("cloudwatch").describe_alarms(
            AlarmNames=[physical_id]
        )["MetricAlarms"][0],
    }
    if record.resource_type in checks:
        checks[record.resource_type]()


def test_real_template_provisions(real: LocalStack) -> None:
    stack = real.provisioned
    records = list(stack.records.values())
    types = {record.resource_type for record in records}

    for record in records:
        if record.status == "created":
            check_exists(stack, record)

    for required in ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::KMS::Key"):
        assert required in types
    for required in ("AWS::Events::EventBus", "AWS::SecretsManager::Secret"):
        assert required in types
    assert all(
        record.status != "skipped" or record.resource_type.startswith(SKIPPED_PREFIXES)
        for record in records
    ), [
        (record.logical_id, record.resource_type)
        for record in records
        if record.status == "skipped"
    ]


def test_real_queues_have_dead_letter_queues(real: LocalStack) -> None:
    stack = real.provisioned
    sqs = stack.client("sqs")
    queue_arns = {
        stack.queue_arn(logical_id): logical_id
        for logical_id in stack.logical_ids("AWS::SQS::Queue")
    }
    redrive = {}
    for arn, logical_id in queue_arns.items():
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.queue_url(logical_id), AttributeNames=["RedrivePolicy"]
        ).get("Attributes", {})
        if "RedrivePolicy" in attributes:
            redrive[arn] = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]

    dead_letter_queues = set(redrive.values())
    assert dead_letter_queues <= set(queue_arns)
    for arn, logical_id in queue_arns.items():
        assert arn in redrive or arn in dead_letter_queues, f"{logical_id} has no DLQ"


def test_real_mappings_and_schedules_resolve(real: LocalStack) -> None:
    runtime = real.runtime

    for mapping in runtime.mappings:
        assert mapping.function_logical_id in runtime.functions
        assert mapping.report_batch_item_failures, mapping.logical_id
    for schedule in runtime.list_schedules():
        assert schedule.targets, schedule.logical_id


@pytest.mark.parametrize("function_id", real_function_ids())
def test_real_function_imports(real: LocalStack, function_id: str) -> None:
    function = real.runtime.functions[function_id]
    assert function.code_dir is not None
    handler_file = function.code_dir / (function.handler.rpartition(".")[0] + ".py")
    if not handler_file.exists():
        pytest.skip(f"{handler_file.relative_to(DEFAULT_TEMPLATE.parent)} does not exist yet")

    handler = real.runtime.load_handler(function_id)

    assert callable(handler)
