"""Unit tests of the local stack's template loader, parameter checks and intrinsic resolver."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from infra.local.template import (
    LOCAL_CODE_BUCKET,
    IntrinsicResolver,
    LocalManagedPolicyLoader,
    PseudoParameters,
    TemplateError,
    expand_sam,
    loads_template,
    local_code_path,
    managed_policy_names,
    resolve_parameters,
    resource_dependencies,
)

pytestmark = pytest.mark.unit


class FakeResources:
    """Ref and GetAtt values for a resolver under test."""

    def __init__(self) -> None:
        self.refs = {"Queue": "https://queue.local/q", "Bucket": "fixture-bucket"}
        self.attributes = {("Queue", "Arn"): "arn:aws:sqs:us-east-1:123456789012:q"}

    def ref(self, logical_id: str) -> Any:
        return self.refs[logical_id]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return self.attributes[(logical_id, attribute)]


TEMPLATE_TEXT = """
AWSTemplateFormatVersion: 2010-09-09
Parameters:
  Stage:
    Type: String
    Default: dev
  Zones:
    Type: CommaDelimitedList
    Default: "a, b"
Mappings:
  Sizes:
    dev: {Memory: 256}
Conditions:
  IsDev: !Equals [!Ref Stage, dev]
  IsProd: !Not [!Condition IsDev]
  DevOrProd: !Or [!Condition IsDev, !Condition IsProd]
  DevAndProd: !And [!Condition IsDev, !Condition IsProd]
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Bucket:
    Type: AWS::S3::Bucket
    DependsOn: Queue
"""


def make_resolver(
    text: str = TEMPLATE_TEXT, overrides: dict[str, Any] | None = None
) -> IntrinsicResolver:
    template = loads_template(text)
    parameters = resolve_parameters(template, overrides)
    return IntrinsicResolver(template, parameters, PseudoParameters(), FakeResources())


def load_value(yaml_text: str) -> Any:
    return loads_template(f"Resources: {{}}\nValue: {yaml_text}\n")["Value"]


# ---------------------------------------------------------------------------- loader


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("!Ref Stage", {"Ref": "Stage"}),
        ("!GetAtt Queue.Arn", {"Fn::GetAtt": ["Queue", "Arn"]}),
        ("!GetAtt Db.Endpoint.Address", {"Fn::GetAtt": ["Db", "Endpoint.Address"]}),
        ("!GetAtt [Queue, Arn]", {"Fn::GetAtt": ["Queue", "Arn"]}),
        ("!Sub 'x-${Stage}'", {"Fn::Sub": "x-${Stage}"}),
        ("!Sub ['${A}', {A: 1}]", {"Fn::Sub": ["${A}", {"A": 1}]}),
        ("!Join [',', [a, b]]", {"Fn::Join": [",", ["a", "b"]]}),
        ("!Select [0, !Split [',', 'a,b']]", {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}),
        ("!If [IsDev, 1, 2]", {"Fn::If": ["IsDev", 1, 2]}),
        ("!Equals [a, b]", {"Fn::Equals": ["a", "b"]}),
        ("!Not [!Condition IsDev]", {"Fn::Not": [{"Condition": "IsDev"}]}),
        (
            "!And [!Condition A, !Condition B]",
            {"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]},
        ),
        ("!Or [!Condition A, !Condition B]", {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}),
        ("!FindInMap [M, a, b]", {"Fn::FindInMap": ["M", "a", "b"]}),
        ("!ImportValue shared-vpc", {"Fn::ImportValue": "shared-vpc"}),
        ("!Base64 plain", {"Fn::Base64": "plain"}),
        ("!Base64 {'Fn::Sub': '${Stage}'}", {"Fn::Base64": {"Fn::Sub": "${Stage}"}}),
        ("!GetAZs ''", {"Fn::GetAZs": ""}),
    ],
)
def test_loader_short_form(yaml_text: str, expected: Any) -> None:
    assert load_value(yaml_text) == expected


def test_loader_keeps_dates_as_strings() -> None:
    template = loads_template(TEMPLATE_TEXT)

    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


def test_loader_rejects_duplicate_key() -> None:
    with pytest.raises(TemplateError, match="duplicate key 'Queue'"):
        loads_template("Resources:\n  Queue: {}\n  Queue: {}\n")


def test_loader_rejects_unknown_tag() -> None:
    with pytest.raises(TemplateError, match="unknown YAML tag !Bogus"):
        load_value("!Bogus x")


def test_loader_rejects_getatt_without_attribute() -> None:
    with pytest.raises(TemplateError, match=r"Resource.Attribute"):
        load_value("!GetAtt Queue")


def test_loader_requires_resources() -> None:
    with pytest.raises(TemplateError, match="Resources mapping"):
        loads_template("Parameters: {}\n")


# ---------------------------------------------------------------------------- parameters


def test_parameters_defaults_and_lists() -> None:
    values = resolve_parameters(loads_template(TEMPLATE_TEXT))

    assert values == {"Stage": "dev", "Zones": ["a", "b"]}


def test_parameters_override() -> None:
    values = resolve_parameters(loads_template(TEMPLATE_TEXT), {"Stage": "prod"})

    assert values["Stage"] == "prod"


def test_parameters_reject_undeclared_override() -> None:
    with pytest.raises(TemplateError, match=r"undeclared parameters: \['Stag'\]"):
        resolve_parameters(loads_template(TEMPLATE_TEXT), {"Stag": "prod"})


@pytest.mark.parametrize(
    ("definition", "value", "message"),
    [
        ({"Type": "String", "AllowedValues": ["a", "b"]}, "c", "is not one of"),
        ({"Type": "String", "AllowedPattern": "^[a-z]+$"}, "A1", "AllowedPattern"),
        ({"Type": "String", "MaxLength": 2}, "abc", "MaxLength"),
        ({"Type": "Number", "MinValue": 1}, "0", "MinValue"),
        ({"Type": "Number"}, "ten", "is not a number"),
    ],
)
def test_parameters_reject_invalid(definition: dict[str, Any], value: str, message: str) -> None:
    template = {"Parameters": {"Limit": definition}, "Resources": {}}

    with pytest.raises(TemplateError, match=f"parameter Limit: .*{message}"):
        resolve_parameters(template, {"Limit": value})


def test_parameters_number_allowed_values_compare_as_text() -> None:
    template = {"Parameters": {"Days": {"Type": "Number", "AllowedValues": [7, 30], "Default": 30}}}

    assert resolve_parameters(template) == {"Days": "30"}


def test_parameters_require_value() -> None:
    template = {"Parameters": {"Secret": {"Type": "String"}}, "Resources": {}}

    with pytest.raises(TemplateError, match="parameter Secret has no Default"):
        resolve_parameters(template)


# ---------------------------------------------------------------------------- intrinsics


def test_resolve_ref_parameter_pseudo_and_resource() -> None:
    resolver = make_resolver()
    value = {
        "stage": {"Ref": "Stage"},
        "region": {"Ref": "AWS::Region"},
        "account": {"Ref": "AWS::AccountId"},
        "stack": {"Ref": "AWS::StackName"},
        "partition": {"Ref": "AWS::Partition"},
        "suffix": {"Ref": "AWS::URLSuffix"},
        "queue": {"Ref": "Queue"},
    }

    assert resolver.resolve(value) == {
        "stage": "dev",
        "region": "us-east-1",
        "account": "123456789012",
        "stack": "idsentry-local",
        "partition": "aws",
        "suffix": "amazonaws.com",
        "queue": "https://queue.local/q",
    }


def test_resolve_no_value_removes_key_and_item() -> None:
    resolver = make_resolver()
    value = {
        "kept": 1,
        "dropped": {"Ref": "AWS::NoValue"},
        "conditional": {"Fn::If": ["IsProd", "prod-only", {"Ref": "AWS::NoValue"}]},
        "items": ["a", {"Ref": "AWS::NoValue"}, "b"],
    }

    assert resolver.resolve(value) == {"kept": 1, "items": ["a", "b"]}


def test_resolve_sub_forms() -> None:
    resolver = make_resolver()

    assert resolver.resolve({"Fn::Sub": "${AWS::Region}-${Stage}-${Bucket}"}) == (
        "us-east-1-dev-fixture-bucket"
    )
    assert resolver.resolve({"Fn::Sub": "${Queue.Arn}/x"}) == (
        "arn:aws:sqs:us-east-1:123456789012:q/x"
    )
    assert resolver.resolve({"Fn::Sub": "${!Literal}-${Stage}"}) == "${Literal}-dev"
    assert resolver.resolve({"Fn::Sub": ["${Name}.${Stage}", {"Name": {"Ref": "Bucket"}}]}) == (
        "fixture-bucket.dev"
    )


def test_resolve_list_functions() -> None:
    resolver = make_resolver()

    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, 3]]}) == "a-dev-3"
    assert resolver.resolve({"Fn::Select": ["1", {"Ref": "Zones"}]}) == "b"
    assert resolver.resolve({"Fn::Split": [",", "x,y"]}) == ["x", "y"]
    assert resolver.resolve({"Fn::GetAZs": ""}) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}) == 256
    assert resolver.resolve({"Fn::Length": [1, 2, 3]}) == 3
    assert resolver.resolve({"Fn::ToJsonString": {"a": {"Ref": "Stage"}}}) == '{"a":"dev"}'


def test_resolve_base64() -> None:
    encoded = make_resolver().resolve({"Fn::Base64": {"Fn::Sub": "stage=${Stage}"}})

    assert base64.b64decode(encoded) == b"stage=dev"


def test_resolve_find_in_map_default() -> None:
    resolver = make_resolver()
    value = {"Fn::FindInMap": ["Sizes", "prod", "Memory", {"DefaultValue": 128}]}

    assert resolver.resolve(value) == 128


def test_resolve_conditions() -> None:
    resolver = make_resolver()

    assert resolver.condition("IsDev") is True
    assert resolver.condition("IsProd") is False
    assert resolver.condition("DevOrProd") is True
    assert resolver.condition("DevAndProd") is False
    assert resolver.resolve({"Fn::If": ["IsDev", "yes", "no"]}) == "yes"


def test_resolve_conditions_follow_overrides() -> None:
    resolver = make_resolver(overrides={"Stage": "prod"})

    assert resolver.condition("IsProd") is True


def test_resolve_rejects_unknown_intrinsic() -> None:
    resolver = make_resolver()

    with pytest.raises(TemplateError, match=r"resource Bucket: .*Fn::Cidr is not supported"):
        resolver.resolve({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, "resource Bucket")


def test_resolve_rejects_unknown_ref() -> None:
    with pytest.raises(TemplateError, match="Ref Missing names no parameter or resource"):
        make_resolver().resolve({"Ref": "Missing"}, "resource Bucket")


def test_resolve_rejects_unknown_condition() -> None:
    with pytest.raises(TemplateError, match="condition Nope is not declared"):
        make_resolver().resolve({"Fn::If": ["Nope", 1, 2]})


def test_resolve_rejects_missing_import() -> None:
    with pytest.raises(TemplateError, match="Fn::ImportValue shared has no local value"):
        make_resolver().resolve({"Fn::ImportValue": "shared"})


def test_resolve_rejects_select_out_of_range() -> None:
    with pytest.raises(TemplateError, match="index 5 is out of range"):
        make_resolver().resolve({"Fn::Select": [5, ["a"]]})


def test_resolve_leaves_condition_keys_in_policies() -> None:
    statement = {"Effect": "Allow", "Condition": {"StringEquals": {"a": {"Ref": "Stage"}}}}

    assert make_resolver().resolve(statement) == {
        "Effect": "Allow",
        "Condition": {"StringEquals": {"a": "dev"}},
    }


# ---------------------------------------------------------------------------- dependencies


def test_dependencies_cover_ref_getatt_sub_and_depends_on() -> None:
    template = {
        "Parameters": {"Stage": {"Type": "String"}},
        "Resources": {
            "A": {"Type": "T"},
            "B": {"Type": "T"},
            "C": {"Type": "T"},
            "D": {"Type": "T"},
            "E": {
                "Type": "T",
                "DependsOn": "D",
                "Properties": {
                    "x": {"Ref": "A"},
                    "y": {"Fn::GetAtt": ["B", "Arn"]},
                    "z": {"Fn::Sub": "${C.Arn}-${Stage}-${AWS::Region}-${!A}"},
                    "w": {"Fn::Sub": ["${Local}", {"Local": {"Ref": "Stage"}}]},
                },
            },
        },
    }

    assert resource_dependencies(template, "E") == {"A", "B", "C", "D"}


# ---------------------------------------------------------------------------- SAM transform


def test_policy_loader_builds_arns_without_iam() -> None:
    loader = LocalManagedPolicyLoader({"AWSLambdaSQSQueueExecutionRole", "CustomPolicyName"})

    policy_map = loader.load()

    assert policy_map["AWSLambdaSQSQueueExecutionRole"] == (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
    )
    assert policy_map["CustomPolicyName"] == "arn:aws:iam::aws:policy/CustomPolicyName"


def test_policy_names_collected_from_functions() -> None:
    template = loads_template(
        """
Globals:
  Function:
    Policies: AWSXRayDaemonWriteAccess
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - AWSLambdaBasicExecutionRole
        - arn:aws:iam::aws:policy/ReadOnlyAccess
        - Statement: []
"""
    )

    assert managed_policy_names(template) == {
        "AWSXRayDaemonWriteAccess",
        "AWSLambdaBasicExecutionRole",
    }


def test_expand_sam_keeps_local_code_paths() -> None:
    template = loads_template(
        """
Transform: AWS::Serverless-2016-10-31
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/shared/
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/fn/
      Handler: app.handler
      Runtime: python3.12
      Layers: [!Ref Layer]
      Policies: [AWSXRayDaemonWriteAccess]
"""
    )

    expanded = expand_sam(template, {}, PseudoParameters())

    function = expanded["Resources"]["Fn"]["Properties"]
    assert function["Code"] == {"S3Bucket": LOCAL_CODE_BUCKET, "S3Key": "functions/fn/"}
    assert local_code_path(function["Code"]) == "functions/fn/"
    role = expanded["Resources"]["FnRole"]["Properties"]
    assert "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess" in role["ManagedPolicyArns"]
    layers = [
        resource
        for resource in expanded["Resources"].values()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
    ]
    assert local_code_path(layers[0]["Properties"]["Content"]) == "layers/shared/"


def test_expand_sam_rejects_serverless_application() -> None:
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {"App": {"Type": "AWS::Serverless::Application", "Properties": {}}},
    }

    with pytest.raises(TemplateError, match="resource App: AWS::Serverless::Application"):
        expand_sam(template, {}, PseudoParameters())


def test_expand_sam_reports_invalid_function() -> None:
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": 5}}},
    }

    with pytest.raises(TemplateError, match=r"SAM transform failed: .*Fn"):
        expand_sam(template, {}, PseudoParameters())


def test_expand_without_transform_copies() -> None:
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}

    expanded = expand_sam(template, {}, PseudoParameters())

    assert expanded == template
    assert expanded is not template
