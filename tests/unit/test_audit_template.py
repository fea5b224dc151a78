"""Unit tests of the template rules behind the audit trail and the staff roles."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from idsentry.crypto import DECRYPT_PURPOSES, DECRYPTED_METRIC
from infra.local.http_api import extract_routes
from infra.local.template import PseudoParameters, load_template
from tests.unit.test_template_rules import (
    TEMPLATE_PATH,
    StaticResources,
    as_list,
    expand_template,
    is_true,
    resources_of,
    write_template,
)

pytestmark = pytest.mark.unit

AUDIT_TABLE = "AuditTable"
ANALYST_ROLE = "AnalystRole"
OPERATOR_ROLE = "OperatorRole"
FINANCE_ROLE = "FinanceRole"
# The only action any role may have on the audit table: creating records.
AUDIT_ACTIONS = frozenset({"dynamodb:PutItem"})
REVIEW_PATH_PREFIX = "/v1/admin/reviews"
# Analysts and support reach review, the deliveries whose outcome is unknown and a subscriber's
# dossier, nothing else.
ANALYST_PATH_PREFIXES = (REVIEW_PATH_PREFIX, "/v1/admin/deliveries/", "/v1/admin/subscribers/")
# What `idsentry reviews` and `idsentry dossier` call besides the API: the stack outputs.
ANALYST_CLI_ACTIONS = frozenset({"cloudformation:DescribeStacks"})
# Operators follow intake, read the breach catalogue and queue monthly reports (ids only).
# Finance reads the money ledger and runs reconciliations, whose files operators may not read.
OPERATOR_PATH_PREFIXES = ("/v1/admin/intake-jobs/", "/v1/admin/breaches/", "/v1/admin/reports")
FINANCE_PATH_PREFIXES = ("/v1/admin/ledger/", "/v1/admin/reconciliations")
# What `idsentry reconcile` calls besides the API: the stack outputs. Files come by presigned URL.
FINANCE_CLI_ACTIONS = frozenset({"cloudformation:DescribeStacks"})
# What the `idsentry` CLI calls besides the API: stack outputs, intake uploads, DLQ replays,
# and the KMS use that S3 and SQS make on the caller's behalf for encrypted objects and queues.
OPERATOR_CLI_ACTIONS = frozenset(
    {
        "cloudformation:DescribeStacks",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "sqs:GetQueueAttributes",
        "sqs:ListDeadLetterSourceQueues",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
)
DLQ_ACTIONS = (
    "sqs:GetQueueAttributes",
    "sqs:ListDeadLetterSourceQueues",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
)
# Every staff route and the roles that may call it; any other role must be refused.
STAFF_ROUTE_ROLES: dict[str, frozenset[str]] = {
    "GET /v1/admin/intake-jobs/{job_id}": frozenset({OPERATOR_ROLE}),
    "GET /v1/admin/breaches/{name}": frozenset({OPERATOR_ROLE}),
    "GET /v1/admin/reviews": frozenset({ANALYST_ROLE}),
    "GET /v1/admin/reviews/{breach}": frozenset({ANALYST_ROLE}),
    "POST /v1/admin/reviews/{breach}/decision": frozenset({ANALYST_ROLE}),
    "GET /v1/admin/deliveries/unknown": frozenset({ANALYST_ROLE}),
    "GET /v1/admin/ledger/{day}": frozenset({FINANCE_ROLE}),
    "POST /v1/admin/reconciliations": frozenset({FINANCE_ROLE}),
    "GET /v1/admin/reconciliations/{reconciliation_id}": frozenset({FINANCE_ROLE}),
    "POST /v1/admin/reports": frozenset({OPERATOR_ROLE}),
    "GET /v1/admin/reports/{month}": frozenset({OPERATOR_ROLE}),
    "POST /v1/admin/subscribers/{subscriber_id}/dossier": frozenset({ANALYST_ROLE}),
}
STAFF_ROLES = (ANALYST_ROLE, OPERATOR_ROLE, FINANCE_ROLE)
# Path parameters of a route replaced by this value give a concrete request path to test.
SAMPLE_SEGMENT = "ExampleShop2026"


def allow_statements(template: dict[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (role, statement) for every resolved Allow statement of the inline role policies."""
    lookup = StaticResources(template, PseudoParameters())
    for logical_id, properties in resources_of(template, "AWS::IAM::Role"):
        for policy in as_list(properties.get("Policies")):
            document = lookup.resolve(policy.get("PolicyDocument"), logical_id) or {}
            for statement in as_list(document.get("Statement")):
                if statement.get("Effect") == "Allow":
                    yield logical_id, statement


def matches(patterns: Any, arn: str) -> bool:
    """Return whether any IAM resource pattern (with * and ? wildcards) matches the ARN."""
    return any(fnmatchcase(arn, str(pattern)) for pattern in as_list(patterns))


def check_audit_table_append_only(template: dict[str, Any]) -> list[str]:
    """List ways in which audit records could be changed, lost, or not written at all."""
    tables = dict(resources_of(template, "AWS::DynamoDB::Table"))
    if AUDIT_TABLE not in tables:
        return [f"{AUDIT_TABLE}: resource not found"]

    lookup = StaticResources(template, PseudoParameters())
    violations = []
    resource = template["Resources"][AUDIT_TABLE]
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        if resource.get(policy) != "Retain":
            violations.append(f"{AUDIT_TABLE}: {policy} is not Retain")
    properties = lookup.resolve(tables[AUDIT_TABLE], AUDIT_TABLE)
    recovery = properties.get("PointInTimeRecoverySpecification") or {}
    if not is_true(recovery.get("PointInTimeRecoveryEnabled")):
        violations.append(f"{AUDIT_TABLE}: point-in-time recovery is not enabled")
    encryption = properties.get("SSESpecification") or {}
    if encryption.get("SSEType") != "KMS" or encryption.get("KMSMasterKeyId") != "DataKey":
        violations.append(f"{AUDIT_TABLE}: not encrypted with the DataKey KMS key")

    arn = lookup.arn(AUDIT_TABLE)
    writers = set()
    for role, statement in allow_statements(template):
        if "NotResource" in statement:
            applies = not matches(statement["NotResource"], arn)
        else:
            applies = matches(statement.get("Resource"), arn)
        if not applies:
            continue
        if "NotAction" in statement:
            violations.append(f"{role}: allows every action but NotAction on {AUDIT_TABLE}")
            continue
        for action in as_list(statement.get("Action")):
            if str(action) in AUDIT_ACTIONS:
                writers.add(role)
            elif action == "*" or str(action).lower().startswith("dynamodb:"):
                violations.append(f"{role}: allows {action} on {AUDIT_TABLE}")
    if "AdminApiFunctionRole" not in writers:
        violations.append(f"AdminApiFunctionRole: cannot put records into {AUDIT_TABLE}")
    return violations


def route_arns(template: dict[str, Any], source: dict[str, Any]) -> dict[str, str]:
    """Return route key → the execute-api ARN of one request on the $default stage."""
    lookup = StaticResources(template, PseudoParameters())
    pseudo = PseudoParameters()
    api = lookup.ref("HttpApi")
    arns = {}
    for route in extract_routes(source):
        path = "/".join(
            SAMPLE_SEGMENT if segment.startswith("{") else segment
            for segment in route.path.split("/")
        )
        arns[route.route_key] = (
            f"arn:{pseudo.partition}:execute-api:{pseudo.region}:{pseudo.account_id}:"
            f"{api}/$default/{route.method}{path}"
        )
    return arns


def check_staff_role(
    template: dict[str, Any],
    source: dict[str, Any],
    role: str,
    path_prefixes: tuple[str, ...],
    other_actions: frozenset[str] = frozenset(),
) -> list[str]:
    """List ways in which a staff role reaches beyond its routes and actions, or the account.

    The role must be able to invoke every admin route under `path_prefixes` and no other
    route. Besides execute-api:Invoke it may have only `other_actions`, never with
    NotAction or NotResource.
    """
    roles = dict(resources_of(template, "AWS::IAM::Role"))
    if role not in roles:
        return [f"{role}: resource not found"]

    lookup = StaticResources(template, PseudoParameters())
    properties = lookup.resolve(roles[role], role)
    violations = []
    account_root = f"arn:aws:iam::{PseudoParameters().account_id}:root"
    for statement in as_list((properties.get("AssumeRolePolicyDocument") or {}).get("Statement")):
        principals = as_list((statement.get("Principal") or {}).get("AWS"))
        if statement.get("Effect") == "Allow" and principals != [account_root]:
            violations.append(f"{role}: assumable by {principals}, not the account")
    if properties.get("ManagedPolicyArns"):
        violations.append(f"{role}: has managed policies")

    invoking = []
    for statement_role, statement in allow_statements(template):
        if statement_role != role:
            continue
        actions = [str(action) for action in as_list(statement.get("Action"))]
        if "NotAction" in statement or "NotResource" in statement:
            violations.append(f"{role}: has a statement with NotAction or NotResource")
        elif "execute-api:Invoke" in actions:
            if actions != ["execute-api:Invoke"]:
                violations.append(f"{role}: allows {actions}, not only execute-api:Invoke")
            invoking.append(statement)
        else:
            violations.extend(
                f"{role}: allows {action}" for action in actions if action not in other_actions
            )

    for route_key, arn in route_arns(template, source).items():
        reachable = any(matches(statement.get("Resource"), arn) for statement in invoking)
        is_role_route = route_key.split(" ", 1)[-1].startswith(path_prefixes)
        if is_role_route and not reachable:
            violations.append(f"{role}: cannot invoke {route_key}")
        if reachable and not is_role_route:
            violations.append(f"{role}: can invoke {route_key}")
    return violations


def check_analyst_role(template: dict[str, Any], source: dict[str, Any]) -> list[str]:
    """List ways in which the analyst role reaches beyond the review routes or the account."""
    return check_staff_role(
        template, source, ANALYST_ROLE, ANALYST_PATH_PREFIXES, ANALYST_CLI_ACTIONS
    )


def check_operator_resources(template: dict[str, Any]) -> list[str]:
    """List ways in which the operator role misses what the CLI needs or reaches further.

    The CLI reads each DLQ and sends its messages back to the queue whose redrive policy
    names it, so the role needs DLQ_ACTIONS on every DLQ and SendMessage on every source
    queue, and no SQS action elsewhere. Uploads go to the intake bucket under incoming/.
    KMS use must be bound to S3 and SQS by kms:ViaService, because the same key wraps the
    subscribers' data keys.
    """
    lookup = StaticResources(template, PseudoParameters())
    queues = dict(resources_of(template, "AWS::SQS::Queue"))
    dead_letter_of = {}
    for logical_id, properties in queues.items():
        redrive = lookup.resolve(properties.get("RedrivePolicy"), logical_id)
        if redrive:
            dead_letter_of[lookup.arn(logical_id)] = str(redrive["deadLetterTargetArn"])
    dlqs = set(dead_letter_of.values())
    sources = set(dead_letter_of)

    statements = [
        statement for role, statement in allow_statements(template) if role == OPERATOR_ROLE
    ]

    def allowed(action: str, arn: str) -> bool:
        return any(
            action in as_list(statement.get("Action")) and matches(statement.get("Resource"), arn)
            for statement in statements
        )

    violations = []
    for dlq in sorted(dlqs):
        violations.extend(
            f"{OPERATOR_ROLE}: cannot {action} on {dlq}"
            for action in DLQ_ACTIONS
            if not allowed(action, dlq)
        )
    for source_queue in sorted(sources):
        if not allowed("sqs:SendMessage", source_queue):
            violations.append(f"{OPERATOR_ROLE}: cannot sqs:SendMessage on {source_queue}")

    for logical_id in queues:
        arn = lookup.arn(logical_id)
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"):
            if arn not in dlqs and allowed(action, arn):
                violations.append(f"{OPERATOR_ROLE}: allows {action} on {arn}")
        if arn not in sources and allowed("sqs:SendMessage", arn):
            violations.append(f"{OPERATOR_ROLE}: allows sqs:SendMessage on {arn}")

    upload_prefix = f"{lookup.arn('IntakeBucket')}/incoming/"
    region = PseudoParameters().region
    via_services = {f"s3.{region}.amazonaws.com", f"sqs.{region}.amazonaws.com"}
    for statement in statements:
        actions = [str(action) for action in as_list(statement.get("Action"))]
        if any(action.startswith("s3:") for action in actions):
            for resource in as_list(statement.get("Resource")):
                if not str(resource).startswith(upload_prefix):
                    violations.append(f"{OPERATOR_ROLE}: allows {actions} on {resource}")
        if any(action.startswith("kms:") for action in actions):
            condition = (statement.get("Condition") or {}).get("StringEquals") or {}
            services = set(as_list(condition.get("kms:ViaService")))
            if not services or not services <= via_services:
                violations.append(
                    f"{OPERATOR_ROLE}: allows {actions} without kms:ViaService S3 or SQS"
                )
    return violations


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    return expand_template(TEMPLATE_PATH)


def changed(tmp_path: Path, source: dict[str, Any], change: Any) -> dict[str, Any]:
    """Apply change to a copy of the source template and return the expanded copy."""
    document = copy.deepcopy(source)
    change(document)
    return expand_template(write_template(tmp_path, document))


def admin_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = document["Resources"]["AdminApiFunction"]["Properties"][
        "Policies"
    ][0]["Statement"]
    return statements


def audit_statement(document: dict[str, Any]) -> dict[str, Any]:
    return next(
        statement
        for statement in admin_statements(document)
        if statement["Resource"]
        in ({"Fn::GetAtt": "AuditTable.Arn"}, {"Fn::GetAtt": [AUDIT_TABLE, "Arn"]})
    )


def operator_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    policies = document["Resources"][OPERATOR_ROLE]["Properties"]["Policies"]
    statements: list[dict[str, Any]] = [
        statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]
    ]
    return statements


def operator_statement(document: dict[str, Any], action: str) -> dict[str, Any]:
    return next(
        statement
        for statement in operator_statements(document)
        if action in as_list(statement["Action"])
    )


def analyst_statement(document: dict[str, Any]) -> dict[str, Any]:
    policies = document["Resources"][ANALYST_ROLE]["Properties"]["Policies"]
    statement: dict[str, Any] = policies[0]["PolicyDocument"]["Statement"][0]
    return statement


# ---------------------------------------------------------------------------- the real template


def test_audit_table_append_only(expanded: dict[str, Any]) -> None:
    assert check_audit_table_append_only(expanded) == []


def test_analyst_role_review_only(expanded: dict[str, Any], source: dict[str, Any]) -> None:
    assert check_analyst_role(expanded, source) == []


def test_operator_role_routes_only(expanded: dict[str, Any], source: dict[str, Any]) -> None:
    violations = check_staff_role(
        expanded, source, OPERATOR_ROLE, OPERATOR_PATH_PREFIXES, OPERATOR_CLI_ACTIONS
    )

    assert violations == []


def test_operator_role_cli_resources(expanded: dict[str, Any]) -> None:
    assert check_operator_resources(expanded) == []


def test_finance_role_ledger_only(expanded: dict[str, Any], source: dict[str, Any]) -> None:
    violations = check_staff_role(
        expanded, source, FINANCE_ROLE, FINANCE_PATH_PREFIXES, FINANCE_CLI_ACTIONS
    )

    assert violations == []


def test_admin_routes_need_iam(source: dict[str, Any]) -> None:
    routes = [route for route in extract_routes(source) if route.path.startswith("/v1/admin/")]

    assert routes
    assert all(route.authorizer == "AWS_IAM" for route in routes)


def test_every_admin_route_has_role(source: dict[str, Any]) -> None:
    prefixes = ANALYST_PATH_PREFIXES + OPERATOR_PATH_PREFIXES + FINANCE_PATH_PREFIXES
    paths = [route.path for route in extract_routes(source) if route.path.startswith("/v1/admin/")]

    assert [path for path in paths if not path.startswith(prefixes)] == []


def test_staff_routes_listed(source: dict[str, Any]) -> None:
    routes = {route.route_key for route in extract_routes(source) if "/admin/" in route.path}

    assert routes == set(STAFF_ROUTE_ROLES)


@pytest.mark.parametrize("role", STAFF_ROLES)
@pytest.mark.parametrize("route_key", sorted(STAFF_ROUTE_ROLES))
def test_staff_route_by_role(
    expanded: dict[str, Any], source: dict[str, Any], route_key: str, role: str
) -> None:
    arn = route_arns(expanded, source)[route_key]
    invoking = [
        statement
        for statement_role, statement in allow_statements(expanded)
        if statement_role == role and "execute-api:Invoke" in as_list(statement.get("Action"))
    ]

    reachable = any(matches(statement.get("Resource"), arn) for statement in invoking)

    assert reachable == (role in STAFF_ROUTE_ROLES[route_key])


def test_decrypt_alarm_sums_purposes(source: dict[str, Any]) -> None:
    properties = source["Resources"]["PersonalDataDecryptAlarm"]["Properties"]
    queries = {query["Id"]: query for query in properties["Metrics"]}
    total = next(query for query in properties["Metrics"] if query.get("ReturnData"))
    stats = {
        query_id: query["MetricStat"]
        for query_id, query in queries.items()
        if "MetricStat" in query
    }

    assert set(stats) == set(DECRYPT_PURPOSES)
    assert sorted(term.strip() for term in total["Expression"].split("+")) == sorted(
        DECRYPT_PURPOSES
    )
    for purpose, stat in stats.items():
        assert stat["Stat"] == "Sum"
        assert stat["Metric"]["Namespace"] == "IDSentry"
        assert stat["Metric"]["MetricName"] == DECRYPTED_METRIC
        dimensions = {item["Name"]: item["Value"] for item in stat["Metric"]["Dimensions"]}
        assert dimensions == {"purpose": purpose, "service": "idsentry"}
    assert properties["Threshold"] == {"Ref": "PersonalDataDecryptsPerHourAlarm"}


def test_review_routes_need_iam(source: dict[str, Any]) -> None:
    routes = [
        route for route in extract_routes(source) if route.path.startswith(REVIEW_PATH_PREFIX)
    ]

    assert {route.route_key for route in routes} == {
        "GET /v1/admin/reviews",
        "GET /v1/admin/reviews/{breach}",
        "POST /v1/admin/reviews/{breach}/decision",
    }
    assert all(route.authorizer == "AWS_IAM" for route in routes)


def test_admin_function_knows_audit_table(source: dict[str, Any]) -> None:
    variables = source["Resources"]["AdminApiFunction"]["Properties"]["Environment"]["Variables"]

    assert variables["AUDIT_TABLE_NAME"] == {"Ref": AUDIT_TABLE}


# ---------------------------------------------------------------------------- broken copies


@pytest.mark.parametrize("action", ["dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:*"])
def test_audit_table_editable(tmp_path: Path, source: dict[str, Any], action: str) -> None:
    def change(document: dict[str, Any]) -> None:
        audit_statement(document)["Action"] = ["dynamodb:PutItem", action]

    violations = check_audit_table_append_only(changed(tmp_path, source, change))

    assert violations == [f"AdminApiFunctionRole: allows {action} on {AUDIT_TABLE}"]


def test_audit_table_reached_by_wildcard(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        statements = document["Resources"]["RiskFunction"]["Properties"]["Policies"][0]["Statement"]
        statements.append(
            {
                "Effect": "Allow",
                "Action": "dynamodb:BatchWriteItem",
                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:*:*:table/idsentry-*"},
            }
        )

    violations = check_audit_table_append_only(changed(tmp_path, source, change))

    assert violations == [f"RiskFunctionRole: allows dynamodb:BatchWriteItem on {AUDIT_TABLE}"]


def test_audit_table_not_writable(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        admin_statements(document).remove(audit_statement(document))

    violations = check_audit_table_append_only(changed(tmp_path, source, change))

    assert violations == [f"AdminApiFunctionRole: cannot put records into {AUDIT_TABLE}"]


def test_audit_table_without_recovery(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        del document["Resources"][AUDIT_TABLE]["Properties"]["PointInTimeRecoverySpecification"]

    violations = check_audit_table_append_only(changed(tmp_path, source, change))

    assert violations == [f"{AUDIT_TABLE}: point-in-time recovery is not enabled"]


def test_audit_table_deletable(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        document["Resources"][AUDIT_TABLE]["DeletionPolicy"] = "Delete"

    violations = check_audit_table_append_only(changed(tmp_path, source, change))

    assert violations == [f"{AUDIT_TABLE}: DeletionPolicy is not Retain"]


def test_audit_table_without_kms(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        document["Resources"][AUDIT_TABLE]["Properties"]["SSESpecification"] = {"SSEEnabled": True}

    violations = check_audit_table_append_only(changed(tmp_path, source, change))

    assert violations == [f"{AUDIT_TABLE}: not encrypted with the DataKey KMS key"]


def test_analyst_role_reaches_intake_jobs(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        analyst_statement(document)["Resource"].append(
            {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                "${AWS::AccountId}:${HttpApi}/*/GET/v1/admin/*"
            }
        )

    violations = check_analyst_role(changed(tmp_path, source, change), source)

    assert violations == [
        f"{ANALYST_ROLE}: can invoke GET /v1/admin/intake-jobs/{{job_id}}",
        f"{ANALYST_ROLE}: can invoke GET /v1/admin/breaches/{{name}}",
        f"{ANALYST_ROLE}: can invoke GET /v1/admin/ledger/{{day}}",
        f"{ANALYST_ROLE}: can invoke GET /v1/admin/reconciliations/{{reconciliation_id}}",
        f"{ANALYST_ROLE}: can invoke GET /v1/admin/reports/{{month}}",
    ]


def test_analyst_role_misses_decision(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        resources = analyst_statement(document)["Resource"]
        resources[:] = [arn for arn in resources if "decision" not in str(arn)]

    violations = check_analyst_role(changed(tmp_path, source, change), source)

    assert violations == [
        f"{ANALYST_ROLE}: cannot invoke POST /v1/admin/reviews/{{breach}}/decision"
    ]


def test_analyst_role_extra_action(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        analyst_statement(document)["Action"] = ["execute-api:Invoke", "dynamodb:Query"]

    violations = check_analyst_role(changed(tmp_path, source, change), source)

    assert violations == [
        f"{ANALYST_ROLE}: allows ['execute-api:Invoke', 'dynamodb:Query'], "
        "not only execute-api:Invoke"
    ]


def test_analyst_role_open_trust(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        trust = document["Resources"][ANALYST_ROLE]["Properties"]["AssumeRolePolicyDocument"]
        trust["Statement"][0]["Principal"] = {"AWS": "*"}

    violations = check_analyst_role(changed(tmp_path, source, change), source)

    assert violations == [f"{ANALYST_ROLE}: assumable by ['*'], not the account"]


def test_operator_role_reaches_ledger(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        operator_statement(document, "execute-api:Invoke")["Resource"].append(
            {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                "${AWS::AccountId}:${HttpApi}/*/GET/v1/admin/ledger/*"
            }
        )

    violations = check_staff_role(
        changed(tmp_path, source, change),
        source,
        OPERATOR_ROLE,
        OPERATOR_PATH_PREFIXES,
        OPERATOR_CLI_ACTIONS,
    )

    assert violations == [f"{OPERATOR_ROLE}: can invoke GET /v1/admin/ledger/{{day}}"]


def test_operator_role_reads_table(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        document["Resources"][OPERATOR_ROLE]["Properties"]["Policies"][1]["PolicyDocument"][
            "Statement"
        ].append(
            {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": {"Fn::GetAtt": "Table.Arn"}}
        )

    violations = check_staff_role(
        changed(tmp_path, source, change),
        source,
        OPERATOR_ROLE,
        OPERATOR_PATH_PREFIXES,
        OPERATOR_CLI_ACTIONS,
    )

    assert violations == [f"{OPERATOR_ROLE}: allows dynamodb:Query"]


def test_operator_role_misses_dlq(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        statement = operator_statement(document, "sqs:ReceiveMessage")
        statement["Resource"] = [
            arn
            for arn in statement["Resource"]
            if arn not in ({"Fn::GetAtt": "RiskDLQ.Arn"}, {"Fn::GetAtt": ["RiskDLQ", "Arn"]})
        ]

    violations = check_operator_resources(changed(tmp_path, source, change))

    dlq = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-risk-dlq"
    assert violations == [f"{OPERATOR_ROLE}: cannot {action} on {dlq}" for action in DLQ_ACTIONS]


def test_operator_role_receives_work(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        operator_statement(document, "sqs:ReceiveMessage")["Resource"].append(
            {"Fn::GetAtt": "NotificationQueue.Arn"}
        )

    violations = check_operator_resources(changed(tmp_path, source, change))

    queue = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-notifications"
    assert violations == [
        f"{OPERATOR_ROLE}: allows sqs:ReceiveMessage on {queue}",
        f"{OPERATOR_ROLE}: allows sqs:DeleteMessage on {queue}",
    ]


def test_operator_kms_unbound(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        del operator_statement(document, "kms:Decrypt")["Condition"]

    violations = check_operator_resources(changed(tmp_path, source, change))

    assert violations == [
        f"{OPERATOR_ROLE}: allows ['kms:GenerateDataKey', 'kms:Decrypt'] "
        "without kms:ViaService S3 or SQS"
    ]


def test_finance_role_reaches_reviews(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        policies = document["Resources"][FINANCE_ROLE]["Properties"]["Policies"]
        policies[0]["PolicyDocument"]["Statement"][0]["Resource"].append(
            {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                "${AWS::AccountId}:${HttpApi}/*/GET/v1/admin/reviews"
            }
        )

    violations = check_staff_role(
        changed(tmp_path, source, change),
        source,
        FINANCE_ROLE,
        FINANCE_PATH_PREFIXES,
        FINANCE_CLI_ACTIONS,
    )

    assert violations == [f"{FINANCE_ROLE}: can invoke GET /v1/admin/reviews"]


def test_finance_role_reads_bucket(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        policies = document["Resources"][FINANCE_ROLE]["Properties"]["Policies"]
        policies[1]["PolicyDocument"]["Statement"].append(
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": {"Fn::Sub": "${FinanceBucket.Arn}/*"},
            }
        )

    violations = check_staff_role(
        changed(tmp_path, source, change),
        source,
        FINANCE_ROLE,
        FINANCE_PATH_PREFIXES,
        FINANCE_CLI_ACTIONS,
    )

    assert violations == [f"{FINANCE_ROLE}: allows s3:GetObject"]


def test_operator_role_reaches_reconciliations(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        operator_statement(document, "execute-api:Invoke")["Resource"].append(
            {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                "${AWS::AccountId}:${HttpApi}/*/POST/v1/admin/reconciliations"
            }
        )

    violations = check_staff_role(
        changed(tmp_path, source, change),
        source,
        OPERATOR_ROLE,
        OPERATOR_PATH_PREFIXES,
        OPERATOR_CLI_ACTIONS,
    )

    assert violations == [f"{OPERATOR_ROLE}: can invoke POST /v1/admin/reconciliations"]


def test_operator_role_reaches_dossier(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        operator_statement(document, "execute-api:Invoke")["Resource"].append(
            {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                "${AWS::AccountId}:${HttpApi}/*/POST/v1/admin/subscribers/*/dossier"
            }
        )

    violations = check_staff_role(
        changed(tmp_path, source, change),
        source,
        OPERATOR_ROLE,
        OPERATOR_PATH_PREFIXES,
        OPERATOR_CLI_ACTIONS,
    )

    assert violations == [
        f"{OPERATOR_ROLE}: can invoke POST /v1/admin/subscribers/{{subscriber_id}}/dossier"
    ]


def test_analyst_role_reads_reports_bucket(tmp_path: Path, source: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> None:
        policies = document["Resources"][ANALYST_ROLE]["Properties"]["Policies"]
        policies[1]["PolicyDocument"]["Statement"].append(
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": {"Fn::Sub": "${ReportsBucket.Arn}/reports/*"},
            }
        )

    violations = check_analyst_role(changed(tmp_path, source, change), source)

    assert violations == [f"{ANALYST_ROLE}: allows s3:GetObject"]
