"""Unit tests of the template rules behind the review audit trail and the analyst role."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

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
# The only action any role may have on the audit table: creating records.
AUDIT_ACTIONS = frozenset({"dynamodb:PutItem"})
REVIEW_PATH_PREFIX = "/v1/admin/reviews"
# Analysts and support reach review and the deliveries whose outcome is unknown, nothing else.
ANALYST_PATH_PREFIXES = (REVIEW_PATH_PREFIX, "/v1/admin/deliveries/")
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


def check_analyst_role(template: dict[str, Any], source: dict[str, Any]) -> list[str]:
    """List ways in which the analyst role reaches beyond the review routes or the account."""
    roles = dict(resources_of(template, "AWS::IAM::Role"))
    if ANALYST_ROLE not in roles:
        return [f"{ANALYST_ROLE}: resource not found"]

    lookup = StaticResources(template, PseudoParameters())
    properties = lookup.resolve(roles[ANALYST_ROLE], ANALYST_ROLE)
    violations = []
    account_root = f"arn:aws:iam::{PseudoParameters().account_id}:root"
    for statement in as_list((properties.get("AssumeRolePolicyDocument") or {}).get("Statement")):
        principals = as_list((statement.get("Principal") or {}).get("AWS"))
        if statement.get("Effect") == "Allow" and principals != [account_root]:
            violations.append(f"{ANALYST_ROLE}: assumable by {principals}, not the account")
    if properties.get("ManagedPolicyArns"):
        violations.append(f"{ANALYST_ROLE}: has managed policies")

    allowed = [statement for role, statement in allow_statements(template) if role == ANALYST_ROLE]
    for statement in allowed:
        actions = as_list(statement.get("Action"))
        if actions != ["execute-api:Invoke"] or "NotResource" in statement:
            violations.append(f"{ANALYST_ROLE}: allows {actions}, not only execute-api:Invoke")

    for route_key, arn in route_arns(template, source).items():
        reachable = any(matches(statement.get("Resource"), arn) for statement in allowed)
        is_analyst_route = route_key.split(" ", 1)[-1].startswith(ANALYST_PATH_PREFIXES)
        if is_analyst_route and not reachable:
            violations.append(f"{ANALYST_ROLE}: cannot invoke {route_key}")
        if reachable and not is_analyst_route:
            violations.append(f"{ANALYST_ROLE}: can invoke {route_key}")
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


def analyst_statement(document: dict[str, Any]) -> dict[str, Any]:
    policies = document["Resources"][ANALYST_ROLE]["Properties"]["Policies"]
    statement: dict[str, Any] = policies[0]["PolicyDocument"]["Statement"][0]
    return statement


# ---------------------------------------------------------------------------- the real template


def test_audit_table_append_only(expanded: dict[str, Any]) -> None:
    assert check_audit_table_append_only(expanded) == []


def test_analyst_role_review_only(expanded: dict[str, Any], source: dict[str, Any]) -> None:
    assert check_analyst_role(expanded, source) == []


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
