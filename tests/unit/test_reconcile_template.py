"""Unit tests of the reconciliation's resources in template.yaml: bucket, queue, schedule, worker."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from idsentry.services.reconcile_runs import RETENTION_DAYS
from idsentry.services.reconcile_worker import LEASE_SECONDS
from infra.local.template import load_template
from tests.unit.test_template_rules import TEMPLATE_PATH

pytestmark = pytest.mark.unit

BUCKET = "FinanceBucket"
WORKER = "ReconciliationWorkerFunction"
PLANNER = "ReconciliationPlannerFunction"
QUEUE = "ReconciliationQueue"
# How `!GetAtt DataKey.Arn` reads, in the short form or the long one.
DATA_KEY_ARN = ({"Fn::GetAtt": "DataKey.Arn"}, {"Fn::GetAtt": ["DataKey", "Arn"]})


def properties(document: dict[str, Any], logical_id: str) -> dict[str, Any]:
    found: dict[str, Any] = document["Resources"][logical_id]["Properties"]
    return found


def check_finance_bucket(document: dict[str, Any]) -> list[str]:
    """List ways in which the finance bucket is not private, encrypted, versioned and expiring."""
    bucket = properties(document, BUCKET)
    violations = []
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    default = rule["ServerSideEncryptionByDefault"]
    if (
        default.get("SSEAlgorithm") != "aws:kms"
        or default.get("KMSMasterKeyID") not in DATA_KEY_ARN
    ):
        violations.append(f"{BUCKET}: not encrypted with the DataKey KMS key")
    if (bucket.get("VersioningConfiguration") or {}).get("Status") != "Enabled":
        violations.append(f"{BUCKET}: not versioned")
    blocked = bucket.get("PublicAccessBlockConfiguration") or {}
    for name in (
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ):
        if blocked.get(name) is not True:
            violations.append(f"{BUCKET}: {name} is not true")
    ownership = (bucket.get("OwnershipControls") or {}).get("Rules") or [{}]
    if ownership[0].get("ObjectOwnership") != "BucketOwnerEnforced":
        violations.append(f"{BUCKET}: object ownership is not BucketOwnerEnforced")
    expiries = [
        rule.get("ExpirationInDays")
        for rule in (bucket.get("LifecycleConfiguration") or {}).get("Rules") or []
        if rule.get("Status") == "Enabled"
    ]
    if expiries != [RETENTION_DAYS]:
        violations.append(f"{BUCKET}: files do not expire after {RETENTION_DAYS} days: {expiries}")

    statements = properties(document, "FinanceBucketPolicy")["PolicyDocument"]["Statement"]
    denies_http = any(
        statement.get("Effect") == "Deny"
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": False}}
        for statement in statements
    )
    if not denies_http:
        violations.append(f"{BUCKET}: the policy does not deny insecure transport")
    return violations


def check_worker_timing(document: dict[str, Any]) -> list[str]:
    """List ways in which a live run could be delivered or claimed a second time."""
    timeout = int(properties(document, WORKER)["Timeout"])
    visibility = int(properties(document, QUEUE)["VisibilityTimeout"])
    violations = []
    if visibility < timeout:
        violations.append(
            f"{QUEUE}: visibility timeout {visibility} s < worker timeout {timeout} s"
        )
    if LEASE_SECONDS <= timeout:
        violations.append(f"{WORKER}: lease {LEASE_SECONDS} s is not longer than {timeout} s")
    mapping = properties(document, WORKER)["Events"]["ReconciliationJobs"]["Properties"]
    if mapping.get("BatchSize") != 1:
        violations.append(f"{WORKER}: more than one run per invocation")
    return violations


def check_daily_schedule(document: dict[str, Any]) -> list[str]:
    """List ways in which the planner is not fired at 06:00 Asia/Shanghai every day."""
    schedule = properties(document, PLANNER)["Events"]["Daily"]
    violations = []
    if schedule["Type"] != "ScheduleV2":
        violations.append(f"{PLANNER}: not an EventBridge Scheduler schedule")
    if schedule["Properties"].get("ScheduleExpression") != "cron(0 6 * * ? *)":
        violations.append(f"{PLANNER}: not daily at 06:00")
    if schedule["Properties"].get("ScheduleExpressionTimezone") != "Asia/Shanghai":
        violations.append(f"{PLANNER}: not in Asia/Shanghai time")
    if "<aws.scheduler.scheduled-time>" not in schedule["Properties"].get("Input", ""):
        violations.append(f"{PLANNER}: the input does not carry the scheduled time")
    return violations


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def test_finance_bucket_private(source: dict[str, Any]) -> None:
    assert check_finance_bucket(source) == []


def test_worker_claims_once(source: dict[str, Any]) -> None:
    assert check_worker_timing(source) == []


def test_daily_schedule(source: dict[str, Any]) -> None:
    assert check_daily_schedule(source) == []


def test_finance_email_default_empty(source: dict[str, Any]) -> None:
    parameter = source["Parameters"]["FinanceEmail"]
    variables = properties(source, WORKER)["Environment"]["Variables"]

    assert parameter["Default"] == ""
    assert variables["FINANCE_EMAIL"] == {"Ref": "FinanceEmail"}


def test_bucket_unversioned_found(source: dict[str, Any]) -> None:
    document = copy.deepcopy(source)
    del properties(document, BUCKET)["VersioningConfiguration"]

    assert check_finance_bucket(document) == [f"{BUCKET}: not versioned"]


def test_bucket_http_allowed_found(source: dict[str, Any]) -> None:
    document = copy.deepcopy(source)
    properties(document, "FinanceBucketPolicy")["PolicyDocument"]["Statement"] = []

    assert check_finance_bucket(document) == [
        f"{BUCKET}: the policy does not deny insecure transport"
    ]


def test_short_visibility_found(source: dict[str, Any]) -> None:
    document = copy.deepcopy(source)
    properties(document, QUEUE)["VisibilityTimeout"] = 300

    assert check_worker_timing(document) == [
        f"{QUEUE}: visibility timeout 300 s < worker timeout 900 s"
    ]


def test_schedule_in_utc_found(source: dict[str, Any]) -> None:
    document = copy.deepcopy(source)
    del properties(document, PLANNER)["Events"]["Daily"]["Properties"]["ScheduleExpressionTimezone"]

    assert check_daily_schedule(document) == [f"{PLANNER}: not in Asia/Shanghai time"]
