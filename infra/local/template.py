"""Load a SAM template, expand the SAM transform and resolve CloudFormation intrinsics locally."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
import yaml
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.model.exceptions import InvalidDocumentException, InvalidTemplateException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"

# Local code paths (CodeUri, ContentUri) are swapped for S3 URIs in this bucket before the SAM
# transform, which accepts only S3 locations, and read back from S3Key afterwards.
LOCAL_CODE_BUCKET = "idsentry-local-code"

# Managed policies that AWS publishes under the service-role/ path.
SERVICE_ROLE_POLICIES = frozenset(
    {
        "AWSLambdaBasicExecutionRole",
        "AWSLambdaDynamoDBExecutionRole",
        "AWSLambdaKinesisExecutionRole",
        "AWSLambdaMSKExecutionRole",
        "AWSLambdaRole",
        "AWSLambdaSQSQueueExecutionRole",
        "AWSLambdaVPCAccessExecutionRole",
    }
)

_SHORT_FORM_FUNCTIONS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Length",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "ToJsonString",
    "Transform",
)

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(Exception):
    """Invalid template, parameter or intrinsic function. The message names the field."""


class _NoValue:
    """Marker for AWS::NoValue: the enclosing key or list item is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# ---------------------------------------------------------------------------- YAML loading


# libyaml's parser, which PyYAML's wheels include, reads the template several times faster.
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CloudFormationLoader(_SafeLoader):  # type: ignore[misc]
    """YAML SafeLoader that turns CloudFormation short-form tags into their long forms.

    Dates stay strings (CloudFormation reads `2010-09-09` as a string) and a mapping that
    repeats a key is rejected, as CloudFormation rejects it.
    """


CloudFormationLoader.yaml_implicit_resolvers = {
    first_char: [
        (tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"
    ]
    for first_char, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node at {node.start_mark}")


def _construct_mapping_without_duplicates(
    loader: yaml.SafeLoader, node: yaml.MappingNode
) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise TemplateError(f"duplicate key {key!r} at {key_node.start_mark}")
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


def _make_function_constructor(name: str) -> Callable[[yaml.SafeLoader, yaml.Node], Any]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {f"Fn::{name}": _construct_node(loader, node)}

    return construct


def _construct_ref(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Ref": _construct_node(loader, node)}


def _construct_condition(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Condition": _construct_node(loader, node)}


def _construct_get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct_node(loader, node)
    if isinstance(value, str):
        logical_id, dot, attribute = value.partition(".")
        if not dot or not logical_id or not attribute:
            raise TemplateError(
                f"!GetAtt {value!r} at {node.start_mark} must have the form Resource.Attribute"
            )
        return {"Fn::GetAtt": [logical_id, attribute]}
    return {"Fn::GetAtt": value}


def _reject_unknown_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    raise TemplateError(f"unknown YAML tag !{suffix} at {node.start_mark}")


CloudFormationLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping_without_duplicates,
)
CloudFormationLoader.add_constructor("!Ref", _construct_ref)
CloudFormationLoader.add_constructor("!Condition", _construct_condition)
CloudFormationLoader.add_constructor("!GetAtt", _construct_get_att)
for _name in _SHORT_FORM_FUNCTIONS:
    CloudFormationLoader.add_constructor(f"!{_name}", _make_function_constructor(_name))
CloudFormationLoader.add_multi_constructor("!", _reject_unknown_tag)


def loads_template(text: str) -> dict[str, Any]:
    """Parse template text (YAML with short-form tags, or JSON) into long-form intrinsics."""
    try:
        document = yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise TemplateError(f"template is not valid YAML: {exc}") from exc

    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError("template must be a mapping with a Resources mapping")
    return document


def load_template(path: str | Path) -> dict[str, Any]:
    """Read and parse the template file at path; returns a copy the caller may change.

    Each local service parses the template, and a test run starts one per test module, so the
    parsed form is kept per path, size and modification time.
    """
    resolved = Path(path).resolve()
    status = resolved.stat()
    key = (str(resolved), status.st_size, status.st_mtime_ns)
    with _PARSED_LOCK:
        parsed = _PARSED.get(key)
        if parsed is None:
            parsed = loads_template(resolved.read_text(encoding="utf-8"))
            _PARSED[key] = parsed
        return copy.deepcopy(parsed)


_PARSED: dict[tuple[str, int, int], dict[str, Any]] = {}
_PARSED_LOCK = threading.Lock()


# ---------------------------------------------------------------------------- SAM transform


class LocalManagedPolicyLoader:
    """Managed-policy name to ARN map for the SAM transform, built without calling IAM.

    samtranslator 1.115 looks names up in its bundled map first and calls `load()` only for
    names missing there. AWS publishes a few Lambda policies under `service-role/`, and
    every other name is assumed to sit at the root path.
    """

    def __init__(self, policy_names: set[str], partition: str = "aws") -> None:
        self.policy_names = policy_names
        self.partition = partition

    def load(self) -> dict[str, str]:
        bundled = get_bundled_managed_policy_map(self.partition) or {}
        policy_map: dict[str, str] = {}
        for name in self.policy_names:
            if name in bundled:
                policy_map[name] = bundled[name]
            elif name in SERVICE_ROLE_POLICIES:
                policy_map[name] = f"arn:{self.partition}:iam::aws:policy/service-role/{name}"
            else:
                policy_map[name] = f"arn:{self.partition}:iam::aws:policy/{name}"
        return policy_map


def has_sam_transform(template: Mapping[str, Any]) -> bool:
    """Return whether the template declares the SAM transform."""
    transform = template.get("Transform")
    if isinstance(transform, list):
        return SAM_TRANSFORM in transform
    return transform == SAM_TRANSFORM


def managed_policy_names(template: Mapping[str, Any]) -> set[str]:
    """Collect the managed-policy names (not ARNs) listed in Policies of serverless resources."""
    names: set[str] = set()
    sections: list[Any] = [template.get("Globals", {}).get("Function", {})]
    for resource in template.get("Resources", {}).values():
        if isinstance(resource, dict) and str(resource.get("Type", "")).startswith(
            "AWS::Serverless::"
        ):
            sections.append(resource.get("Properties", {}))

    for properties in sections:
        policies = properties.get("Policies") if isinstance(properties, dict) else None
        entries = policies if isinstance(policies, list) else [policies]
        for entry in entries:
            if isinstance(entry, str) and not entry.startswith("arn:"):
                names.add(entry)
    return names


def _local_code_uri(path: Any) -> Any:
    if isinstance(path, str) and not path.startswith("s3://"):
        return f"s3://{LOCAL_CODE_BUCKET}/{path}"
    return path


def _replace_local_code_paths(template: dict[str, Any]) -> None:
    globals_function = template.get("Globals", {}).get("Function")
    if isinstance(globals_function, dict) and "CodeUri" in globals_function:
        globals_function["CodeUri"] = _local_code_uri(globals_function["CodeUri"])

    uri_properties = {
        "AWS::Serverless::Function": "CodeUri",
        "AWS::Serverless::LayerVersion": "ContentUri",
        "AWS::Serverless::Api": "DefinitionUri",
        "AWS::Serverless::HttpApi": "DefinitionUri",
        "AWS::Serverless::StateMachine": "DefinitionUri",
    }
    for logical_id, resource in template["Resources"].items():
        resource_type = resource.get("Type") if isinstance(resource, dict) else None
        if resource_type == "AWS::Serverless::Application":
            raise TemplateError(
                f"resource {logical_id}: AWS::Serverless::Application needs the Serverless "
                "Application Repository, which the local stack does not reach"
            )
        uri_property = uri_properties.get(str(resource_type))
        properties = resource.get("Properties") if isinstance(resource, dict) else None
        if uri_property and isinstance(properties, dict) and uri_property in properties:
            properties[uri_property] = _local_code_uri(properties[uri_property])


def local_code_path(code: Any) -> str | None:
    """Return the local path that `expand_sam` encoded in a Code or Content property, if any."""
    if isinstance(code, dict) and code.get("S3Bucket") == LOCAL_CODE_BUCKET:
        key = code.get("S3Key")
        return key if isinstance(key, str) else None
    return None


def expand_sam(
    template: Mapping[str, Any],
    parameter_values: Mapping[str, Any],
    pseudo: PseudoParameters,
) -> dict[str, Any]:
    """Expand the SAM transform into plain CloudFormation. A template without it is copied.

    Local CodeUri and ContentUri paths come back as `Code: {S3Bucket: LOCAL_CODE_BUCKET,
    S3Key: <path>}`, see `local_code_path`. No AWS request is made: the region comes from a
    session built here and managed-policy ARNs from `LocalManagedPolicyLoader`. The same
    template, parameters and pseudo parameters give the same expansion, so it is kept per
    process and each call returns a copy.
    """
    key = hashlib.sha256(
        json.dumps(
            [template, dict(parameter_values), dataclasses.asdict(pseudo)],
            sort_keys=True,
            default=repr,
        ).encode("utf-8")
    ).hexdigest()
    with _PARSED_LOCK:
        expanded = _EXPANDED.get(key)
    if expanded is None:
        expanded = _expand_sam(template, parameter_values, pseudo)
        with _PARSED_LOCK:
            _EXPANDED[key] = expanded
    return copy.deepcopy(expanded)


_EXPANDED: dict[str, dict[str, Any]] = {}


def _expand_sam(
    template: Mapping[str, Any],
    parameter_values: Mapping[str, Any],
    pseudo: PseudoParameters,
) -> dict[str, Any]:
    document = copy.deepcopy(dict(template))
    if not has_sam_transform(document):
        return document

    transforms = document["Transform"] if isinstance(document["Transform"], list) else []
    other_transforms = [name for name in transforms if name != SAM_TRANSFORM]
    if other_transforms:
        raise TemplateError(f"Transform {other_transforms} is not supported by the local stack")
    _replace_local_code_paths(document)

    policy_loader = LocalManagedPolicyLoader(managed_policy_names(document), pseudo.partition)
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 (dummy credential, never sent)
        region_name=pseudo.region,
    )
    values = {**parameter_values, **pseudo.as_parameter_values()}
    translator = Translator(None, Parser(), boto_session=session)
    try:
        expanded: dict[str, Any] = translator.translate(
            document,
            parameter_values=values,
            get_managed_policy_map=policy_loader.load,
        )
    except (InvalidDocumentException, InvalidTemplateException) as exc:
        causes = getattr(exc, "causes", [])
        details = "; ".join(str(getattr(cause, "message", cause)) for cause in causes)
        raise TemplateError(f"SAM transform failed: {details or exc}") from exc
    return expanded


# ---------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class PseudoParameters:
    """Values of the AWS:: pseudo parameters in the local stack."""

    region: str = "us-east-1"
    account_id: str = "123456789012"
    stack_name: str = "idsentry-local"
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"
    stack_id: str = ""

    def value(self, name: str) -> Any:
        values: dict[str, Any] = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackId": self.stack_id
            or (
                f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}"
                f":stack/{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise TemplateError(f"unknown pseudo parameter {name}")
        return values[name]

    def as_parameter_values(self) -> dict[str, Any]:
        names = ("AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::Partition")
        return {name: self.value(name) for name in (*names, "AWS::URLSuffix", "AWS::StackId")}


def _check_parameter(name: str, definition: Mapping[str, Any], value: Any) -> Any:
    parameter_type = str(definition.get("Type", "String"))
    text = _to_string(value, f"parameter {name}")

    allowed = definition.get("AllowedValues")
    if allowed is not None and text not in [_to_string(item, name) for item in allowed]:
        raise TemplateError(f"parameter {name}: value {text!r} is not one of {allowed}")
    pattern = definition.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), text) is None:
        raise TemplateError(f"parameter {name}: value does not match AllowedPattern {pattern}")
    if "MinLength" in definition and len(text) < int(definition["MinLength"]):
        raise TemplateError(f"parameter {name}: shorter than MinLength {definition['MinLength']}")
    if "MaxLength" in definition and len(text) > int(definition["MaxLength"]):
        raise TemplateError(f"parameter {name}: longer than MaxLength {definition['MaxLength']}")

    if parameter_type == "Number":
        try:
            number = float(text)
        except ValueError:
            raise TemplateError(f"parameter {name}: {text!r} is not a number") from None
        if "MinValue" in definition and number < float(definition["MinValue"]):
            raise TemplateError(f"parameter {name}: below MinValue {definition['MinValue']}")
        if "MaxValue" in definition and number > float(definition["MaxValue"]):
            raise TemplateError(f"parameter {name}: above MaxValue {definition['MaxValue']}")
        return text
    if parameter_type == "CommaDelimitedList" or parameter_type.startswith("List<"):
        return [item.strip() for item in text.split(",")]
    return text


def resolve_parameters(
    template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return each template parameter's value: the override if given, else its Default.

    Values are checked against AllowedValues, AllowedPattern, lengths and number bounds.
    Number parameters resolve to strings and list types to lists of strings, as `Ref`
    returns them in CloudFormation.
    """
    overrides = dict(overrides or {})
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"parameter overrides name undeclared parameters: {unknown}")

    values: dict[str, Any] = {}
    for name, definition in declared.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in definition:
            raw = definition["Default"]
        else:
            raise TemplateError(f"parameter {name} has no Default and no override was given")

        if str(definition.get("Type", "")).startswith("AWS::SSM::Parameter::") and (
            name not in overrides
        ):
            raise TemplateError(
                f"parameter {name} reads SSM Parameter Store, which the local stack does not "
                "reach, so pass its value in the parameter overrides"
            )
        if isinstance(raw, list):
            raw = ",".join(_to_string(item, f"parameter {name}") for item in raw)
        values[name] = _check_parameter(name, definition, raw)
    return values


# ---------------------------------------------------------------------------- intrinsics


class ResourceLookup(Protocol):
    """Source of the values that Ref and Fn::GetAtt return for resources."""

    def ref(self, logical_id: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...


def _to_string(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"{where}: expected a string, got {type(value).__name__}")


@dataclass
class IntrinsicResolver:
    """Resolve intrinsic functions against parameters, pseudo parameters and resources.

    `resolve(value, resource=...)` returns a copy of value with every intrinsic replaced. An
    error names the function and the resource or section it sits in.
    """

    template: Mapping[str, Any]
    parameters: Mapping[str, Any]
    pseudo: PseudoParameters
    resources: ResourceLookup
    imports: Mapping[str, Any] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict, init=False)
    _evaluating: set[str] = field(default_factory=set, init=False)

    # ------------------------------------------------------------------ conditions

    def condition(self, name: str) -> bool:
        """Evaluate the named entry of the Conditions section (cached)."""
        if name in self._conditions:
            return self._conditions[name]
        definitions = self.template.get("Conditions") or {}
        if name not in definitions:
            raise TemplateError(f"condition {name} is not declared in Conditions")
        if name in self._evaluating:
            raise TemplateError(f"condition {name} refers to itself")

        self._evaluating.add(name)
        try:
            result = self._evaluate_condition(definitions[name], f"condition {name}")
        finally:
            self._evaluating.discard(name)
        self._conditions[name] = result
        return result

    def _evaluate_condition(self, value: Any, where: str) -> bool:
        if isinstance(value, dict) and len(value) == 1 and "Condition" in value:
            return self.condition(str(value["Condition"]))
        result = self.resolve(value, where)
        if isinstance(result, bool):
            return result
        if result in ("true", "false"):
            return bool(result == "true")
        raise TemplateError(f"{where}: condition must evaluate to a boolean, got {result!r}")

    # ------------------------------------------------------------------ resolution

    def resolve(self, value: Any, resource: str = "template") -> Any:
        """Return value with every intrinsic function resolved and AWS::NoValue entries removed."""
        result = self._resolve(value, resource)
        return None if result is NO_VALUE else result

    def _resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item, where) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key,) = value
            if key == "Ref" or key.startswith("Fn::"):
                return self._call(key, value[key], where)

        resolved: dict[str, Any] = {}
        for key, item in value.items():
            result = self._resolve(item, where)
            if result is not NO_VALUE:
                resolved[key] = result
        return resolved

    def _call(self, function: str, argument: Any, where: str) -> Any:
        handlers: dict[str, Callable[[Any, str], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Equals": self._equals,
            "Fn::Not": self._not,
            "Fn::And": self._and,
            "Fn::Or": self._or,
            "Fn::GetAZs": self._get_azs,
            "Fn::Base64": self._base64,
            "Fn::ImportValue": self._import_value,
            "Fn::Length": self._length,
            "Fn::ToJsonString": self._to_json_string,
        }
        handler = handlers.get(function)
        if handler is None:
            raise TemplateError(f"{where}: intrinsic function {function} is not supported locally")
        return handler(argument, where)

    def _ref(self, argument: Any, where: str) -> Any:
        name = self._resolve(argument, where)
        if not isinstance(name, str):
            raise TemplateError(f"{where}: Ref needs a name, got {name!r}")
        if name.startswith("AWS::"):
            return self.pseudo.value(name)
        if name in self.parameters:
            return copy.deepcopy(self.parameters[name])
        if name in (self.template.get("Resources") or {}):
            return self.resources.ref(name)
        raise TemplateError(f"{where}: Ref {name} names no parameter or resource")

    def _get_att(self, argument: Any, where: str) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        if not isinstance(argument, list) or len(argument) != 2:
            raise TemplateError(f"{where}: Fn::GetAtt needs [resource, attribute]")
        logical_id = argument[0]
        attribute = self._resolve(argument[1], where)
        if logical_id not in (self.template.get("Resources") or {}):
            raise TemplateError(f"{where}: Fn::GetAtt {logical_id}.{attribute} names no resource")
        return self.resources.get_att(logical_id, str(attribute))

    def _sub(self, argument: Any, where: str) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        elif isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str):
            text, variables = argument[0], self._resolve(argument[1], where)
            if not isinstance(variables, dict):
                raise TemplateError(f"{where}: Fn::Sub variables must be a mapping")
        else:
            raise TemplateError(f"{where}: Fn::Sub needs a string or [string, variables]")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _to_string(variables[name], f"{where}: Fn::Sub variable {name}")
            if "." in name and not name.startswith("AWS::"):
                value = self._get_att(name.split(".", 1), where)
            else:
                value = self._ref(name, where)
            return _to_string(value, f"{where}: Fn::Sub ${{{name}}}")

        return _SUB_VARIABLE.sub(replace, text)

    def _join(self, argument: Any, where: str) -> str:
        if not isinstance(argument, list) or len(argument) != 2:
            raise TemplateError(f"{where}: Fn::Join needs [delimiter, list]")
        delimiter = self._resolve(argument[0], where)
        items = self._resolve(argument[1], where)
        if not isinstance(items, list):
            raise TemplateError(f"{where}: Fn::Join needs a list to join")
        return _to_string(delimiter, f"{where}: Fn::Join delimiter").join(
            _to_string(item, f"{where}: Fn::Join item") for item in items
        )

    def _select(self, argument: Any, where: str) -> Any:
        if not isinstance(argument, list) or len(argument) != 2:
            raise TemplateError(f"{where}: Fn::Select needs [index, list]")
        index = self._resolve(argument[0], where)
        items = self._resolve(argument[1], where)
        try:
            position = int(index)
        except (TypeError, ValueError):
            raise TemplateError(f"{where}: Fn::Select index {index!r} is not a number") from None
        if not isinstance(items, list) or not 0 <= position < len(items):
            raise TemplateError(f"{where}: Fn::Select index {position} is out of range")
        return items[position]

    def _split(self, argument: Any, where: str) -> list[str]:
        if not isinstance(argument, list) or len(argument) != 2:
            raise TemplateError(f"{where}: Fn::Split needs [delimiter, string]")
        delimiter = _to_string(self._resolve(argument[0], where), f"{where}: Fn::Split")
        text = _to_string(self._resolve(argument[1], where), f"{where}: Fn::Split")
        return text.split(delimiter)

    def _if(self, argument: Any, where: str) -> Any:
        if not isinstance(argument, list) or len(argument) != 3:
            raise TemplateError(f"{where}: Fn::If needs [condition, value if true, value if false]")
        chosen = argument[1] if self.condition(str(argument[0])) else argument[2]
        return self._resolve(chosen, where)

    def _find_in_map(self, argument: Any, where: str) -> Any:
        if not isinstance(argument, list) or len(argument) not in (3, 4):
            raise TemplateError(f"{where}: Fn::FindInMap needs [map, top key, second key]")
        map_name, top_key, second_key = (self._resolve(item, where) for item in argument[:3])
        mappings = self.template.get("Mappings") or {}
        try:
            return copy.deepcopy(mappings[map_name][top_key][second_key])
        except (KeyError, TypeError):
            if len(argument) == 4 and isinstance(argument[3], dict):
                return self._resolve(argument[3].get("DefaultValue"), where)
            raise TemplateError(
                f"{where}: Fn::FindInMap {map_name}/{top_key}/{second_key} not found"
            ) from None

    def _equals(self, argument: Any, where: str) -> bool:
        if not isinstance(argument, list) or len(argument) != 2:
            raise TemplateError(f"{where}: Fn::Equals needs two values")
        left, right = (self._resolve(item, where) for item in argument)
        if isinstance(left, list | dict) or isinstance(right, list | dict):
            return bool(left == right)
        return _to_string(left, where) == _to_string(right, where)

    def _condition_list(self, argument: Any, where: str, function: str) -> list[bool]:
        if not isinstance(argument, list) or not argument:
            raise TemplateError(f"{where}: {function} needs a list of conditions")
        return [self._evaluate_condition(item, f"{where}: {function}") for item in argument]

    def _not(self, argument: Any, where: str) -> bool:
        results = self._condition_list(argument, where, "Fn::Not")
        if len(results) != 1:
            raise TemplateError(f"{where}: Fn::Not needs exactly one condition")
        return not results[0]

    def _and(self, argument: Any, where: str) -> bool:
        return all(self._condition_list(argument, where, "Fn::And"))

    def _or(self, argument: Any, where: str) -> bool:
        return any(self._condition_list(argument, where, "Fn::Or"))

    def _get_azs(self, argument: Any, where: str) -> list[str]:
        region = self._resolve(argument, where) or self.pseudo.region
        return [f"{region}{zone}" for zone in "abc"]

    def _base64(self, argument: Any, where: str) -> str:
        text = _to_string(self._resolve(argument, where), f"{where}: Fn::Base64")
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    def _import_value(self, argument: Any, where: str) -> Any:
        name = self._resolve(argument, where)
        if name not in self.imports:
            raise TemplateError(
                f"{where}: Fn::ImportValue {name} has no local value, so pass it in imports"
            )
        return self.imports[name]

    def _length(self, argument: Any, where: str) -> int:
        items = self._resolve(argument, where)
        if not isinstance(items, list):
            raise TemplateError(f"{where}: Fn::Length needs a list")
        return len(items)

    def _to_json_string(self, argument: Any, where: str) -> str:
        return json.dumps(self._resolve(argument, where), separators=(",", ":"))


# ---------------------------------------------------------------------------- dependencies


def _walk_references(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _walk_references(item)
        return
    if not isinstance(value, dict):
        return

    if len(value) == 1:
        (key,) = value
        argument = value[key]
        if key == "Ref" and isinstance(argument, str):
            yield argument
        elif key == "Fn::GetAtt":
            if isinstance(argument, str):
                yield argument.split(".", 1)[0]
            elif isinstance(argument, list) and argument and isinstance(argument[0], str):
                yield argument[0]
        elif key == "Fn::Sub":
            text = argument if isinstance(argument, str) else None
            if isinstance(argument, list) and argument and isinstance(argument[0], str):
                text = argument[0]
                local_names = set(argument[1]) if len(argument) > 1 else set()
                yield from _walk_references(argument[1:])
            else:
                local_names = set()
            for name in _SUB_VARIABLE.findall(text or ""):
                if not name.startswith("!") and name not in local_names:
                    yield name.split(".", 1)[0]
            return

    for item in value.values():
        yield from _walk_references(item)


def resource_dependencies(template: Mapping[str, Any], logical_id: str) -> set[str]:
    """Return the resources that logical_id refers to (Ref, GetAtt, Sub) or DependsOn."""
    resources: Mapping[str, Any] = template.get("Resources") or {}
    resource = resources[logical_id]
    names = set(_walk_references(resource.get("Properties", {})))
    depends_on = resource.get("DependsOn", [])
    names.update([depends_on] if isinstance(depends_on, str) else depends_on)
    return {name for name in names if name in resources and name != logical_id}
