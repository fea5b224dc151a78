"""Unit tests of the deployment rules that template.yaml must keep: queues, IAM, tables, logs."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from infra.local.template import (
    IntrinsicResolver,
    PseudoParameters,
    expand_sam,
    load_template,
    resolve_parameters,
    resource_dependencies,
)

pytestmark = pytest.mark.unit

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

# Services whose actions read or change stored data. An Allow on Resource "*" for any of
# them gives a function every table, bucket, queue, key or secret in the account.
DATA_SERVICES = frozenset(
    {"dynamodb", "s3", "sqs", "kms", "secretsmanager", "ses", "sns", "events"}
)

# Data actions without resource-level permissions, which IAM grants only on Resource "*":
# the account-level SES suppression list has no ARN.
ACTIONS_WITHOUT_RESOURCES = frozenset({"ses:DeleteSuppressedDestination"})

# Property that sets each resource type's physical name, when the template gives one.
NAME_PROPERTIES = {
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Events::EventBus": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::IAM::Role": "RoleName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}

Check = Callable[[dict[str, Any]], list[str]]


# ---------------------------------------------------------------------------- loading


def expand_template(path: Path) -> dict[str, Any]:
    """Load the template at path and expand the SAM transform with default parameters."""
    source = load_template(path)
    return expand_sam(source, resolve_parameters(source), PseudoParameters())


def write_template(tmp_path: Path, document: Mapping[str, Any]) -> Path:
    """Write a long-form template (JSON is valid YAML) and return its path."""
    path = tmp_path / "template.json"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


class StaticResources:
    """Ref and GetAtt values built from the template alone, in the shapes AWS returns.

    A resource without an explicit name gets `<stack name>-<logical id>`, where
    CloudFormation would add a random suffix, so checks that compare names stay exact.
    """

    def __init__(self, template: Mapping[str, Any], pseudo: PseudoParameters) -> None:
        self.template = template
        self.pseudo = pseudo
        self.resolver = IntrinsicResolver(
            template=template,
            parameters=resolve_parameters(template),
            pseudo=pseudo,
            resources=self,
        )

    def _type(self, logical_id: str) -> str:
        return str(self.template["Resources"][logical_id].get("Type", ""))

    def name(self, logical_id: str) -> str:
        """Return the resource's physical name: its name property resolved, or a stand-in."""
        properties = self.template["Resources"][logical_id].get("Properties") or {}
        name_property = NAME_PROPERTIES.get(self._type(logical_id))
        if name_property and name_property in properties:
            return str(self.resolver.resolve(properties[name_property], logical_id))
        return f"{self.pseudo.stack_name}-{logical_id}"

    def arn(self, logical_id: str) -> str:
        """Return the ARN that Fn::GetAtt Arn gives for the resource."""
        partition, region, account = (
            self.pseudo.partition,
            self.pseudo.region,
            self.pseudo.account_id,
        )
        resource_type = self._type(logical_id)
        name = self.name(logical_id)
        arns = {
            "AWS::SQS::Queue": f"arn:{partition}:sqs:{region}:{account}:{name}",
            "AWS::DynamoDB::Table": f"arn:{partition}:dynamodb:{region}:{account}:table/{name}",
            "AWS::Lambda::Function": f"arn:{partition}:lambda:{region}:{account}:function:{name}",
            "AWS::Events::EventBus": f"arn:{partition}:events:{region}:{account}:event-bus/{name}",
            "AWS::SecretsManager::Secret": (
                f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}"
            ),
            "AWS::Logs::LogGroup": f"arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
            "AWS::IAM::Role": f"arn:{partition}:iam::{account}:role/{name}",
            "AWS::KMS::Key": f"arn:{partition}:kms:{region}:{account}:key/{logical_id}",
        }
        if resource_type in arns:
            return arns[resource_type]
        service = resource_type.split("::")[1].lower() if "::" in resource_type else "unknown"
        return f"arn:{partition}:{service}:{region}:{account}:{logical_id}"

    def ref(self, logical_id: str) -> Any:
        resource_type = self._type(logical_id)
        if resource_type == "AWS::SQS::Queue":
            return (
                f"https://sqs.{self.pseudo.region}.{self.pseudo.url_suffix}/"
                f"{self.pseudo.account_id}/{self.name(logical_id)}"
            )
        if resource_type == "AWS::SecretsManager::Secret":
            return self.arn(logical_id)
        if resource_type == "AWS::KMS::Key":
            # Ref returns the key id, which this stand-in takes from the logical id.
            return logical_id
        return self.name(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute in ("QueueName", "Name"):
            return self.name(logical_id)
        if attribute == "QueueUrl":
            return self.ref(logical_id)
        return f"{logical_id}.{attribute}"

    def resolve(self, value: Any, where: str) -> Any:
        return self.resolver.resolve(value, where)


def resources_of(template: Mapping[str, Any], resource_type: str) -> Iterator[tuple[str, Any]]:
    """Yield (logical id, Properties) of every resource of one type."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") == resource_type:
            yield logical_id, resource.get("Properties") or {}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def is_true(value: Any) -> bool:
    return value is True or value == "true"


# ---------------------------------------------------------------------------- checks


def check_sqs_mappings_report_failures(template: dict[str, Any]) -> list[str]:
    """List SQS event source mappings without FunctionResponseTypes ReportBatchItemFailures."""
    lookup = StaticResources(template, PseudoParameters())
    violations = []
    for logical_id, properties in resources_of(template, "AWS::Lambda::EventSourceMapping"):
        source_arn = str(lookup.resolve(properties.get("EventSourceArn"), logical_id))
        if source_arn.split(":")[2:3] != ["sqs"]:
            continue
        if "ReportBatchItemFailures" not in as_list(properties.get("FunctionResponseTypes")):
            violations.append(
                f"{logical_id}: SQS event source mapping lacks FunctionResponseTypes "
                "ReportBatchItemFailures, so one bad message makes the whole batch retry"
            )
    return violations


def _alarm_dimensions(properties: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from as_list(properties.get("Dimensions"))
    for query in as_list(properties.get("Metrics")):
        metric = ((query or {}).get("MetricStat") or {}).get("Metric") or {}
        yield from as_list(metric.get("Dimensions"))


def _dead_letter_target(properties: Mapping[str, Any], lookup: StaticResources, where: str) -> Any:
    """Return the resolved deadLetterTargetArn of a queue's RedrivePolicy, or None."""
    policy = lookup.resolve(properties.get("RedrivePolicy"), where)
    if isinstance(policy, str):
        policy = json.loads(policy)
    return (policy or {}).get("deadLetterTargetArn")


def check_queue_redrive_and_alarms(template: dict[str, Any]) -> list[str]:
    """List queues without a DLQ and DLQs without a CloudWatch alarm on their QueueName."""
    lookup = StaticResources(template, PseudoParameters())
    queues = dict(resources_of(template, "AWS::SQS::Queue"))
    queue_by_arn = {lookup.arn(logical_id): logical_id for logical_id in queues}
    targets = {
        logical_id: _dead_letter_target(properties, lookup, logical_id)
        for logical_id, properties in queues.items()
    }

    violations = []
    dead_letter_queues = {queue_by_arn[arn] for arn in targets.values() if arn in queue_by_arn}
    for logical_id, target in targets.items():
        if target is None and logical_id not in dead_letter_queues:
            violations.append(f"{logical_id}: queue has no RedrivePolicy with a DLQ")
        elif target is not None and target not in queue_by_arn:
            violations.append(
                f"{logical_id}: dead-letter target {target} is not a queue of this template, "
                "so its alarm cannot be checked"
            )

    alarmed: set[str] = set()
    for alarm_id, properties in resources_of(template, "AWS::CloudWatch::Alarm"):
        resolved = lookup.resolve(properties, alarm_id)
        for dimension in _alarm_dimensions(resolved):
            if dimension.get("Name") == "QueueName":
                alarmed.add(str(dimension.get("Value")))
    for logical_id in sorted(dead_letter_queues):
        if lookup.name(logical_id) not in alarmed:
            violations.append(f"{logical_id}: DLQ has no CloudWatch alarm with its QueueName")
    return violations


def _data_actions(statement: Mapping[str, Any]) -> list[str]:
    if "NotAction" in statement:
        return ["NotAction " + ",".join(map(str, as_list(statement["NotAction"])))]
    actions = [str(action) for action in as_list(statement.get("Action"))]
    return [
        action
        for action in actions
        if action == "*"
        or (
            action.split(":", 1)[0].lower() in DATA_SERVICES
            and action not in ACTIONS_WITHOUT_RESOURCES
        )
    ]


def _policy_documents(
    template: dict[str, Any], lookup: StaticResources
) -> Iterator[tuple[str, Any]]:
    for logical_id, properties in resources_of(template, "AWS::IAM::Role"):
        for policy in as_list(properties.get("Policies")):
            where = f"{logical_id} policy {policy.get('PolicyName')}"
            yield where, lookup.resolve(policy.get("PolicyDocument"), logical_id)
    for resource_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical_id, properties in resources_of(template, resource_type):
            yield logical_id, lookup.resolve(properties.get("PolicyDocument"), logical_id)


def check_no_wildcard_data_actions(template: dict[str, Any]) -> list[str]:
    """List inline IAM statements that allow a data action on Resource "*".

    Managed policies attached by ARN (basic execution, X-Ray, SQS polling) are not read.
    """
    lookup = StaticResources(template, PseudoParameters())
    violations = []
    for where, document in _policy_documents(template, lookup):
        for statement in as_list((document or {}).get("Statement")):
            if statement.get("Effect") != "Allow":
                continue
            every_resource = "*" in as_list(statement.get("Resource")) or "NotResource" in statement
            actions = _data_actions(statement)
            if every_resource and actions:
                violations.append(f'{where}: allows {actions} on every resource ("*")')
    return violations


def _tags(properties: Mapping[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in as_list(properties.get("Tags"))}


def _conditions_hold(conditions: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    """Evaluate AWS Backup selection Conditions (all must hold) against resource tags."""
    prefix = "aws:ResourceTag/"
    tests: dict[str, Callable[[str | None, str], bool]] = {
        "StringEquals": lambda actual, expected: actual == expected,
        "StringNotEquals": lambda actual, expected: actual != expected,
        "StringLike": lambda actual, expected: fnmatchcase(actual or "", expected),
        "StringNotLike": lambda actual, expected: not fnmatchcase(actual or "", expected),
    }
    for operator, entries in conditions.items():
        test = tests.get(operator)
        if test is None:
            continue
        for entry in as_list(entries):
            key = str(entry.get("ConditionKey", "")).removeprefix(prefix)
            if not test(tags.get(key), str(entry.get("ConditionValue"))):
                return False
    return True


def _selection_includes(selection: Mapping[str, Any], arn: str, tags: Mapping[str, str]) -> bool:
    """Return whether an AWS Backup selection picks the resource with this ARN and tags."""
    if any(fnmatchcase(arn, str(pattern)) for pattern in as_list(selection.get("NotResources"))):
        return False
    by_resource = any(
        fnmatchcase(arn, str(pattern)) for pattern in as_list(selection.get("Resources"))
    )
    by_tag = any(
        str(entry.get("ConditionType", "STRINGEQUALS")).upper() == "STRINGEQUALS"
        and tags.get(str(entry.get("ConditionKey"))) == str(entry.get("ConditionValue"))
        for entry in as_list(selection.get("ListOfTags"))
    )
    return (by_resource or by_tag) and _conditions_hold(selection.get("Conditions") or {}, tags)


def check_key_table_unrecoverable(template: dict[str, Any]) -> list[str]:
    """List ways in which a deleted data key could be restored from the key table."""
    lookup = StaticResources(template, PseudoParameters())
    tables = dict(resources_of(template, "AWS::DynamoDB::Table"))
    if "KeyTable" not in tables:
        return ["KeyTable: resource not found"]

    violations = []
    properties = lookup.resolve(tables["KeyTable"], "KeyTable")
    recovery = properties.get("PointInTimeRecoverySpecification") or {}
    if is_true(recovery.get("PointInTimeRecoveryEnabled")):
        violations.append("KeyTable: point-in-time recovery is enabled")

    arn, tags = lookup.arn("KeyTable"), _tags(properties)
    for logical_id, resource in template["Resources"].items():
        if not str(resource.get("Type", "")).startswith("AWS::Backup::"):
            continue
        if resource["Type"] == "AWS::Backup::BackupSelection":
            backup = lookup.resolve(resource.get("Properties") or {}, logical_id)
            if _selection_includes(backup.get("BackupSelection") or {}, arn, tags):
                violations.append(f"{logical_id}: backup selection includes KeyTable")
        elif "KeyTable" in resource_dependencies(template, logical_id):
            violations.append(f"{logical_id}: AWS Backup resource refers to KeyTable")
    return violations


def check_tables_encrypted_and_main_recoverable(template: dict[str, Any]) -> list[str]:
    """List a main Table without point-in-time recovery and either table without KMS."""
    lookup = StaticResources(template, PseudoParameters())
    tables = dict(resources_of(template, "AWS::DynamoDB::Table"))

    violations = []
    for logical_id in ("Table", "KeyTable"):
        if logical_id not in tables:
            violations.append(f"{logical_id}: resource not found")
            continue
        properties = lookup.resolve(tables[logical_id], logical_id)
        encryption = properties.get("SSESpecification") or {}
        if not is_true(encryption.get("SSEEnabled")) or encryption.get("SSEType") != "KMS":
            violations.append(f"{logical_id}: SSESpecification is not SSEEnabled with SSEType KMS")
        if logical_id == "Table":
            recovery = properties.get("PointInTimeRecoverySpecification") or {}
            if not is_true(recovery.get("PointInTimeRecoveryEnabled")):
                violations.append("Table: point-in-time recovery is not enabled")
    return violations


def check_function_log_groups(template: dict[str, Any]) -> list[str]:
    """List functions without a /aws/lambda/<FunctionName> log group that sets RetentionInDays.

    It reads every AWS::Lambda::Function, which after the SAM transform includes each
    AWS::Serverless::Function.
    """
    lookup = StaticResources(template, PseudoParameters())
    log_groups = {
        lookup.name(logical_id): properties
        for logical_id, properties in resources_of(template, "AWS::Logs::LogGroup")
    }

    violations = []
    for logical_id, _ in resources_of(template, "AWS::Lambda::Function"):
        expected = f"/aws/lambda/{lookup.name(logical_id)}"
        if expected not in log_groups:
            violations.append(f"{logical_id}: no AWS::Logs::LogGroup named {expected}")
        elif "RetentionInDays" not in log_groups[expected]:
            violations.append(f"{logical_id}: log group {expected} has no RetentionInDays")
    return violations


def check_output_descriptions(template: dict[str, Any]) -> list[str]:
    """List Outputs without a non-empty Description."""
    violations = []
    for name, output in (template.get("Outputs") or {}).items():
        description = output.get("Description")
        if not isinstance(description, str) or not description.strip():
            violations.append(f"output {name}: missing Description")
    return violations


def check_globals(source: dict[str, Any]) -> list[str]:
    """List the function settings that Globals must set but does not.

    It takes the template before the SAM transform, which removes the Globals section.
    """
    function = (source.get("Globals") or {}).get("Function") or {}
    variables = (function.get("Environment") or {}).get("Variables") or {}

    violations = []
    if function.get("Runtime") != "python3.12":
        violations.append(
            f"Globals.Function.Runtime is {function.get('Runtime')!r}, not python3.12"
        )
    if function.get("Architectures") != ["arm64"]:
        violations.append(
            f"Globals.Function.Architectures is {function.get('Architectures')!r}, not [arm64]"
        )
    if function.get("Tracing") != "Active":
        violations.append(f"Globals.Function.Tracing is {function.get('Tracing')!r}, not Active")
    for setting in ("Timeout", "MemorySize"):
        if setting not in function:
            violations.append(f"Globals.Function.{setting} is missing")
    if not variables.get("POWERTOOLS_SERVICE_NAME"):
        violations.append("Globals.Function.Environment POWERTOOLS_SERVICE_NAME is missing")
    return violations


def check_functions_keep_runtime(template: dict[str, Any]) -> list[str]:
    """List functions whose own Runtime or Architectures override the Globals values."""
    violations = []
    for logical_id, properties in resources_of(template, "AWS::Lambda::Function"):
        if properties.get("Runtime") != "python3.12":
            violations.append(f"{logical_id}: Runtime is {properties.get('Runtime')!r}")
        if properties.get("Architectures") != ["arm64"]:
            violations.append(f"{logical_id}: Architectures is {properties.get('Architectures')!r}")
    return violations


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    return expand_template(TEMPLATE_PATH)


def expand_changed(
    tmp_path: Path, source: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Apply change to a copy of the source template, write it to tmp_path and expand it."""
    document = copy.deepcopy(source)
    change(document)
    return expand_template(write_template(tmp_path, document))


def resources(document: dict[str, Any]) -> dict[str, Any]:
    resources_section: dict[str, Any] = document["Resources"]
    return resources_section


def properties_of(document: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = resources(document)[logical_id]["Properties"]
    return properties


# ---------------------------------------------------------------------------- the real template


@pytest.mark.parametrize(
    "check",
    [
        check_sqs_mappings_report_failures,
        check_queue_redrive_and_alarms,
        check_no_wildcard_data_actions,
        check_key_table_unrecoverable,
        check_tables_encrypted_and_main_recoverable,
        check_function_log_groups,
        check_output_descriptions,
        check_functions_keep_runtime,
    ],
    ids=lambda check: check.__name__.removeprefix("check_"),
)
def test_template_passes(check: Check, expanded: dict[str, Any]) -> None:
    assert check(expanded) == []


def test_template_globals(source: dict[str, Any]) -> None:
    assert check_globals(source) == []


def test_template_has_checked_resources(expanded: dict[str, Any]) -> None:
    # Guards against the checks passing because the resources they read went missing.
    types = [resource["Type"] for resource in resources(expanded).values()]

    assert "AWS::Lambda::EventSourceMapping" in types
    assert types.count("AWS::SQS::Queue") >= 2
    assert types.count("AWS::Lambda::Function") >= 3
    assert any(
        resource["Type"] == "AWS::IAM::Role" and resource["Properties"].get("Policies")
        for resource in resources(expanded).values()
    )


# ---------------------------------------------------------------------------- broken copies


def test_mapping_without_batch_failures(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        event = properties_of(document, "NotifierFunction")["Events"]["NotificationJobs"]
        del event["Properties"]["FunctionResponseTypes"]

    violations = check_sqs_mappings_report_failures(expand_changed(tmp_path, source, change))

    assert len(violations) == 1
    assert violations[0].startswith("NotifierFunctionNotificationJobs:")


def test_queue_without_redrive(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        del properties_of(document, "NotificationQueue")["RedrivePolicy"]

    violations = check_queue_redrive_and_alarms(expand_changed(tmp_path, source, change))

    assert "NotificationQueue: queue has no RedrivePolicy with a DLQ" in violations


def test_queue_redrive_outside_template(tmp_path: Path, source: dict[str, Any]) -> None:
    outside = "arn:aws:sqs:us-east-1:123456789012:elsewhere-dlq"

    def change(document: dict[str, Any]) -> None:
        properties_of(document, "NotificationQueue")["RedrivePolicy"]["deadLetterTargetArn"] = (
            outside
        )

    violations = check_queue_redrive_and_alarms(expand_changed(tmp_path, source, change))

    assert (
        f"NotificationQueue: dead-letter target {outside} is not a queue of this template, "
        "so its alarm cannot be checked"
    ) in violations


def test_dlq_without_alarm(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        del resources(document)["NotificationDLQAlarm"]

    violations = check_queue_redrive_and_alarms(expand_changed(tmp_path, source, change))

    assert violations == ["NotificationDLQ: DLQ has no CloudWatch alarm with its QueueName"]


def test_dlq_alarm_on_other_queue(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        dimension = properties_of(document, "NotificationDLQAlarm")["Dimensions"][0]
        dimension["Value"] = {"Fn::GetAtt": ["NotificationQueue", "QueueName"]}

    violations = check_queue_redrive_and_alarms(expand_changed(tmp_path, source, change))

    assert violations == ["NotificationDLQ: DLQ has no CloudWatch alarm with its QueueName"]


@pytest.mark.parametrize(
    "action", ["dynamodb:Scan", "sqs:*", "Kms:Decrypt", "*", ["logs:PutLogEvents", "s3:GetObject"]]
)
def test_wildcard_data_action(tmp_path: Path, source: dict[str, Any], action: Any) -> None:
    def change(document: dict[str, Any]) -> None:
        statements = properties_of(document, "SignupFunction")["Policies"][0]["Statement"]
        statements.append({"Effect": "Allow", "Action": action, "Resource": "*"})

    violations = check_no_wildcard_data_actions(expand_changed(tmp_path, source, change))

    assert len(violations) == 1
    assert violations[0].startswith("SignupFunctionRole policy SignupFunctionRolePolicy0:")


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
        {"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"},
    ],
)
def test_wildcard_non_data_action(
    tmp_path: Path, source: dict[str, Any], statement: dict[str, Any]
) -> None:
    def change(document: dict[str, Any]) -> None:
        properties_of(document, "SignupFunction")["Policies"][0]["Statement"].append(statement)

    assert check_no_wildcard_data_actions(expand_changed(tmp_path, source, change)) == []


def test_key_table_recovery_enabled(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        recovery = properties_of(document, "KeyTable")["PointInTimeRecoverySpecification"]
        recovery["PointInTimeRecoveryEnabled"] = True

    violations = check_key_table_unrecoverable(expand_changed(tmp_path, source, change))

    assert violations == ["KeyTable: point-in-time recovery is enabled"]


def add_backup_selection(document: dict[str, Any], selection: dict[str, Any]) -> None:
    resources(document)["BackupVault"] = {
        "Type": "AWS::Backup::BackupVault",
        "Properties": {"BackupVaultName": "idsentry-backups"},
    }
    resources(document)["BackupPlan"] = {
        "Type": "AWS::Backup::BackupPlan",
        "Properties": {
            "BackupPlan": {
                "BackupPlanName": "daily",
                "BackupPlanRule": [
                    {"RuleName": "daily", "TargetBackupVault": {"Ref": "BackupVault"}}
                ],
            }
        },
    }
    resources(document)["BackupSelection"] = {
        "Type": "AWS::Backup::BackupSelection",
        "Properties": {
            "BackupPlanId": {"Ref": "BackupPlan"},
            "BackupSelection": {
                "SelectionName": "tables",
                "IamRoleArn": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/b"},
                **selection,
            },
        },
    }


@pytest.mark.parametrize(
    "selection",
    [
        {"Resources": [{"Fn::GetAtt": ["KeyTable", "Arn"]}]},
        {"Resources": [{"Fn::Sub": "arn:${AWS::Partition}:dynamodb:*:*:table/*"}]},
        {"Resources": ["*"]},
        {
            "ListOfTags": [
                {
                    "ConditionType": "STRINGEQUALS",
                    "ConditionKey": "backup",
                    "ConditionValue": "never",
                }
            ]
        },
    ],
    ids=["by-reference", "all-tables", "everything", "by-tag"],
)
def test_backup_selects_key_table(
    tmp_path: Path, source: dict[str, Any], selection: dict[str, Any]
) -> None:
    expanded = expand_changed(tmp_path, source, lambda d: add_backup_selection(d, selection))

    violations = check_key_table_unrecoverable(expanded)

    assert len(violations) == 1
    assert violations[0].startswith("BackupSelection:")


@pytest.mark.parametrize(
    "selection",
    [
        {"Resources": [{"Fn::GetAtt": ["Table", "Arn"]}]},
        {
            "Resources": ["*"],
            "Conditions": {
                "StringEquals": [
                    {"ConditionKey": "aws:ResourceTag/backup", "ConditionValue": "daily"}
                ]
            },
        },
        {"Resources": ["*"], "NotResources": [{"Fn::GetAtt": ["KeyTable", "Arn"]}]},
    ],
    ids=["main-table", "other-tag", "excluded"],
)
def test_backup_skips_key_table(
    tmp_path: Path, source: dict[str, Any], selection: dict[str, Any]
) -> None:
    expanded = expand_changed(tmp_path, source, lambda d: add_backup_selection(d, selection))

    assert check_key_table_unrecoverable(expanded) == []


def test_main_table_recovery_disabled(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        del properties_of(document, "Table")["PointInTimeRecoverySpecification"]

    violations = check_tables_encrypted_and_main_recoverable(
        expand_changed(tmp_path, source, change)
    )

    assert violations == ["Table: point-in-time recovery is not enabled"]


@pytest.mark.parametrize("logical_id", ["Table", "KeyTable"])
def test_table_without_kms(tmp_path: Path, source: dict[str, Any], logical_id: str) -> None:
    def change(document: dict[str, Any]) -> None:
        properties_of(document, logical_id)["SSESpecification"] = {"SSEEnabled": True}

    violations = check_tables_encrypted_and_main_recoverable(
        expand_changed(tmp_path, source, change)
    )

    assert violations == [f"{logical_id}: SSESpecification is not SSEEnabled with SSEType KMS"]


def test_function_without_log_group(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        del resources(document)["NotifierLogGroup"]

    violations = check_function_log_groups(expand_changed(tmp_path, source, change))

    assert violations == [
        "NotifierFunction: no AWS::Logs::LogGroup named /aws/lambda/idsentry-dev-notifier"
    ]


def test_log_group_without_retention(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        del properties_of(document, "SignupLogGroup")["RetentionInDays"]

    violations = check_function_log_groups(expand_changed(tmp_path, source, change))

    assert violations == [
        "SignupFunction: log group /aws/lambda/idsentry-dev-signup has no RetentionInDays"
    ]


def test_log_group_name_mismatch(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        properties_of(document, "TwilioWebhooksFunction")["FunctionName"] = {
            "Fn::Sub": "idsentry-${Stage}-twilio"
        }

    violations = check_function_log_groups(expand_changed(tmp_path, source, change))

    assert violations == [
        "TwilioWebhooksFunction: no AWS::Logs::LogGroup named /aws/lambda/idsentry-dev-twilio"
    ]


def test_output_without_description(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        del document["Outputs"]["TableName"]["Description"]

    violations = check_output_descriptions(expand_changed(tmp_path, source, change))

    assert violations == ["output TableName: missing Description"]


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("Runtime", "python3.11", "Globals.Function.Runtime is 'python3.11', not python3.12"),
        ("Architectures", ["x86_64"], "Globals.Function.Architectures is ['x86_64'], not [arm64]"),
        ("Tracing", None, "Globals.Function.Tracing is None, not Active"),
        ("Timeout", None, "Globals.Function.Timeout is missing"),
        ("MemorySize", None, "Globals.Function.MemorySize is missing"),
    ],
)
def test_globals_setting_wrong(
    tmp_path: Path, source: dict[str, Any], setting: str, value: Any, expected: str
) -> None:
    document = copy.deepcopy(source)
    if value is None:
        del document["Globals"]["Function"][setting]
    else:
        document["Globals"]["Function"][setting] = value

    assert check_globals(load_template(write_template(tmp_path, document))) == [expected]


def test_globals_without_service_name(tmp_path: Path, source: dict[str, Any]) -> None:
    document = copy.deepcopy(source)
    del document["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]

    violations = check_globals(load_template(write_template(tmp_path, document)))

    assert violations == ["Globals.Function.Environment POWERTOOLS_SERVICE_NAME is missing"]


def test_function_overrides_runtime(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        properties_of(document, "NotifierFunction")["Runtime"] = "python3.11"

    violations = check_functions_keep_runtime(expand_changed(tmp_path, source, change))

    assert violations == ["NotifierFunction: Runtime is 'python3.11'"]
