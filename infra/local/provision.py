"""Create the resources of an expanded template in a local moto server, in dependency order."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import string
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.client import BaseClient
from botocore.exceptions import ClientError, ParamValidationError

from infra.local.template import (
    IntrinsicResolver,
    PseudoParameters,
    TemplateError,
    expand_sam,
    load_template,
    local_code_path,
    resolve_parameters,
    resource_dependencies,
)

LOG = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DUMMY_CREDENTIAL = "testing"

# Types that exist only as records: the runtime reads them, nothing is created in moto.
RECORDED_TYPES = frozenset(
    {
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Lambda::Permission",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::Version",
        "AWS::Lambda::Alias",
    }
)

# Types served by other local components: the local HTTP server serves the API routes, and
# the signup page in place of the CloudFront distribution.
SKIPPED_PREFIXES = ("AWS::ApiGatewayV2::", "AWS::CloudFront::")


def check_loopback(endpoint_url: str) -> str:
    """Return endpoint_url, or raise ValueError unless it points at a loopback address."""
    host = urlparse(endpoint_url).hostname
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"endpoint_url {endpoint_url!r} must point at 127.0.0.1")
    return endpoint_url


def bypass_proxies_for_loopback() -> None:
    """Add the loopback hosts to NO_PROXY, so that a proxy set in the shell never relays
    requests meant for the local servers."""
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [host for host in os.environ.get(name, "").split(",") if host]
        missing = [host for host in ("127.0.0.1", "localhost") if host not in hosts]
        if missing or name not in os.environ:
            os.environ[name] = ",".join(hosts + missing)


def local_client(service: str, endpoint_url: str, region: str) -> BaseClient:
    """Create a boto3 client for service that talks to the local moto server only.

    It also adds the loopback hosts to NO_PROXY (see bypass_proxies_for_loopback).
    """
    bypass_proxies_for_loopback()
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(region)
        if session is None:
            session = boto3.session.Session(
                aws_access_key_id=DUMMY_CREDENTIAL,
                aws_secret_access_key=DUMMY_CREDENTIAL,
                region_name=region,
            )
            _SESSIONS[region] = session
        return session.client(service, endpoint_url=check_loopback(endpoint_url))


# One session per region, so that its loader reads each service's model once per process
# rather than once per client. Sessions are not thread-safe, hence the lock.
_SESSIONS: dict[str, boto3.session.Session] = {}
_SESSIONS_LOCK = threading.Lock()


# ---------------------------------------------------------------------------- records


@dataclass
class ResourceRecord:
    """Outcome of provisioning one resource, with the values Ref and GetAtt return.

    status is "created" (exists in moto), "recorded" (kept for the runtime only), "skipped"
    (type not provisioned locally) or "excluded" (its Condition is false).
    """

    logical_id: str
    resource_type: str
    status: str
    physical_id: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    condition: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function as the in-process runtime runs it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    code_dir: Path | None
    layer_dirs: tuple[Path, ...]

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"


@dataclass(frozen=True)
class EventSourceMappingSpec:
    """An SQS event source mapping as the runtime polls it."""

    logical_id: str
    function_logical_id: str
    event_source_arn: str
    queue_url: str
    batch_size: int
    enabled: bool
    report_batch_item_failures: bool


@dataclass(frozen=True)
class ScheduleTarget:
    """One target of a schedule: its ARN and the input that the service sends."""

    arn: str
    input: str | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge Scheduler schedule or an EventBridge rule with a ScheduleExpression."""

    logical_id: str
    name: str
    kind: str  # "scheduler" or "events-rule"
    arn: str
    expression: str
    timezone: str | None
    enabled: bool
    targets: tuple[ScheduleTarget, ...]


# ---------------------------------------------------------------------------- helpers


def _generated_name(
    stack_name: str, logical_id: str, max_length: int, lowercase: bool = False
) -> str:
    """Build a stable physical name like the ones CloudFormation generates."""
    digest = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    room = max_length - len(digest) - 2
    stack_part = stack_name[: room // 2]
    logical_part = logical_id[: room - len(stack_part)]
    name = f"{stack_part}-{logical_part}-{digest}"
    return name.lower() if lowercase else name


def _int(value: Any, field_name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TemplateError(f"{field_name}: {value!r} is not an integer") from None


def _bool(value: Any, field_name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise TemplateError(f"{field_name}: {value!r} is not a boolean")


def _attribute_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _key_value_tags(tags: Any) -> list[dict[str, str]]:
    return [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in tags or []]


def _tag_dict(tags: Any) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in tags or []}


def _name_from_arn(value: str, marker: str) -> str:
    """Return the part of an ARN after marker (for example "event-bus/"), or value itself."""
    if value.startswith("arn:") and marker in value:
        return value.split(marker, 1)[1]
    return value


def generate_secret_string(spec: Mapping[str, Any], where: str) -> str:
    """Generate a secret value as Secrets Manager's GenerateSecretString does, with `secrets`."""
    length = _int(spec.get("PasswordLength", 32), f"{where}.PasswordLength")
    excluded = set(str(spec.get("ExcludeCharacters", "")))
    groups = []
    if not spec.get("ExcludeLowercase"):
        groups.append(string.ascii_lowercase)
    if not spec.get("ExcludeUppercase"):
        groups.append(string.ascii_uppercase)
    if not spec.get("ExcludeNumbers"):
        groups.append(string.digits)
    if not spec.get("ExcludePunctuation"):
        groups.append(string.punctuation)
    if spec.get("IncludeSpace"):
        groups.append(" ")
    groups = [
        "".join(char for char in group if char not in excluded)
        for group in groups
        if any(char not in excluded for char in group)
    ]
    if not groups or length < 1:
        raise TemplateError(f"{where}: GenerateSecretString leaves no characters to use")

    alphabet = "".join(groups)
    chars = [secrets.choice(alphabet) for _ in range(length)]
    if spec.get("RequireEachIncludedType", True) and length >= len(groups):
        positions = list(range(length))
        for group in groups:
            position = positions.pop(secrets.randbelow(len(positions)))
            chars[position] = secrets.choice(group)
    password = "".join(chars)

    template_text = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if (template_text is None) != (key is None):
        raise TemplateError(
            f"{where}: SecretStringTemplate and GenerateStringKey must be given together"
        )
    if template_text is None:
        return password
    try:
        document = json.loads(str(template_text))
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{where}.SecretStringTemplate is not valid JSON") from exc
    document[str(key)] = password
    return json.dumps(document)


# ---------------------------------------------------------------------------- stack


class _RecordLookup:
    """Ref and GetAtt values read from the records made so far."""

    def __init__(self, records: Mapping[str, ResourceRecord]) -> None:
        self.records = records

    def _record(self, logical_id: str) -> ResourceRecord:
        record = self.records.get(logical_id)
        if record is None:
            raise TemplateError(f"resource {logical_id} is referenced before it was provisioned")
        if record.status == "excluded":
            raise TemplateError(
                f"resource {logical_id} is not provisioned because condition "
                f"{record.condition} is false"
            )
        return record

    def ref(self, logical_id: str) -> Any:
        record = self._record(logical_id)
        if record.physical_id is None:
            raise TemplateError(
                f"Ref {logical_id}: {record.resource_type} has no local value. Pass one in "
                "attribute_overrides"
            )
        return record.physical_id

    def get_att(self, logical_id: str, attribute: str) -> Any:
        record = self._record(logical_id)
        if attribute not in record.attributes:
            raise TemplateError(
                f"Fn::GetAtt {logical_id}.{attribute}: {record.resource_type} has no local "
                f"value for it (known: {sorted(record.attributes)}). Pass one in "
                "attribute_overrides"
            )
        return record.attributes[attribute]


@dataclass
class ProvisionedStack:
    """A template provisioned in moto: resolved resources, physical ids and attributes."""

    endpoint_url: str
    pseudo: PseudoParameters
    template_dir: Path
    source_template: dict[str, Any]
    template: dict[str, Any]
    parameters: dict[str, Any]
    records: dict[str, ResourceRecord]
    resolver: IntrinsicResolver

    @property
    def region(self) -> str:
        return self.pseudo.region

    @property
    def resolved_template(self) -> dict[str, Any]:
        """The expanded template with each resource's properties as they were applied."""
        resources = {}
        for logical_id, resource in self.template["Resources"].items():
            record = self.records[logical_id]
            resolved = dict(resource)
            resolved["Properties"] = record.properties
            resources[logical_id] = resolved
        return {**self.template, "Resources": resources}

    def client(self, service: str) -> BaseClient:
        """Create a boto3 client for service against the local moto server."""
        return local_client(service, self.endpoint_url, self.region)

    # ------------------------------------------------------------------ lookups

    def record(self, logical_id: str) -> ResourceRecord:
        if logical_id not in self.records:
            raise KeyError(f"resource {logical_id} is not in the template")
        return self.records[logical_id]

    def _typed(self, logical_id: str, resource_type: str) -> ResourceRecord:
        record = self.record(logical_id)
        if record.resource_type != resource_type:
            raise KeyError(
                f"resource {logical_id} is a {record.resource_type}, not {resource_type}"
            )
        if record.status == "excluded":
            raise KeyError(f"resource {logical_id} is excluded by condition {record.condition}")
        return record

    def logical_ids(self, resource_type: str) -> list[str]:
        """Return the logical ids of the provisioned resources of resource_type."""
        return [
            logical_id
            for logical_id, record in self.records.items()
            if record.resource_type == resource_type and record.status != "excluded"
        ]

    def ref(self, logical_id: str) -> Any:
        return _RecordLookup(self.records).ref(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return _RecordLookup(self.records).get_att(logical_id, attribute)

    def queue_url(self, logical_id: str) -> str:
        return str(self._typed(logical_id, "AWS::SQS::Queue").physical_id)

    def queue_arn(self, logical_id: str) -> str:
        return str(self._typed(logical_id, "AWS::SQS::Queue").attributes["Arn"])

    def table_name(self, logical_id: str) -> str:
        return str(self._typed(logical_id, "AWS::DynamoDB::Table").physical_id)

    def bucket_name(self, logical_id: str) -> str:
        return str(self._typed(logical_id, "AWS::S3::Bucket").physical_id)

    def event_bus_name(self, logical_id: str) -> str:
        return str(self._typed(logical_id, "AWS::Events::EventBus").physical_id)

    def secret_arn(self, logical_id: str) -> str:
        return str(self._typed(logical_id, "AWS::SecretsManager::Secret").physical_id)

    def key_id(self, logical_id: str) -> str:
        return str(self._typed(logical_id, "AWS::KMS::Key").physical_id)

    def output(self, name: str) -> Any:
        """Resolve the named entry of Outputs."""
        outputs = self.template.get("Outputs") or {}
        if name not in outputs:
            raise KeyError(f"output {name} is not in the template")
        return self.resolver.resolve(outputs[name].get("Value"), f"output {name}")

    # ------------------------------------------------------------------ runtime views

    def function(self, logical_id: str) -> FunctionSpec:
        """Return the function spec of an AWS::Lambda::Function (after the SAM transform)."""
        record = self._typed(logical_id, "AWS::Lambda::Function")
        properties = record.properties
        where = f"resource {logical_id}"

        code_path = local_code_path(properties.get("Code"))
        code_dir = self.template_dir / code_path if code_path is not None else None
        layer_dirs = tuple(
            layer_dir
            for arn in properties.get("Layers", [])
            if (layer_dir := self._layer_dir(logical_id, arn)) is not None
        )
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        environment = {str(name): _attribute_string(value) for name, value in variables.items()}

        return FunctionSpec(
            logical_id=logical_id,
            name=str(record.physical_id),
            arn=str(record.attributes["Arn"]),
            handler=str(properties.get("Handler", "")),
            runtime=str(properties.get("Runtime", "")),
            timeout_s=_int(properties.get("Timeout", 3), f"{where}.Timeout"),
            memory_mb=_int(properties.get("MemorySize", 128), f"{where}.MemorySize"),
            environment=environment,
            code_dir=code_dir,
            layer_dirs=layer_dirs,
        )

    def functions(self) -> dict[str, FunctionSpec]:
        return {
            logical_id: self.function(logical_id)
            for logical_id in self.logical_ids("AWS::Lambda::Function")
        }

    def _layer_dir(self, function_logical_id: str, layer_arn: Any) -> Path | None:
        """Return the local folder of a layer of this template, or None for another layer."""
        for logical_id in self.logical_ids("AWS::Lambda::LayerVersion"):
            record = self.records[logical_id]
            if record.physical_id == layer_arn:
                content_path = local_code_path(record.properties.get("Content"))
                if content_path is None:
                    raise TemplateError(
                        f"resource {logical_id}: layer content is not a local ContentUri"
                    )
                return self.template_dir / content_path

        # A published layer (for example Powertools) cannot be downloaded here, so its
        # packages must be installed in the local environment instead.
        LOG.info(
            "layer outside the template not loaded locally",
            extra={"function": function_logical_id, "layer_arn": layer_arn},
        )
        return None

    def function_logical_id(self, name_or_arn: str) -> str:
        """Return the logical id of the function named by a name, ARN or qualified ARN."""
        for logical_id in self.logical_ids("AWS::Lambda::Function"):
            record = self.records[logical_id]
            arn = str(record.attributes["Arn"])
            if name_or_arn in (record.physical_id, arn) or name_or_arn.startswith(arn + ":"):
                return logical_id
        raise KeyError(f"no local function is named {name_or_arn}")

    def queue_logical_id(self, arn: str) -> str | None:
        for logical_id in self.logical_ids("AWS::SQS::Queue"):
            if self.records[logical_id].attributes.get("Arn") == arn:
                return logical_id
        return None

    def event_source_mappings(self) -> list[EventSourceMappingSpec]:
        """Return the SQS event source mappings. Other event sources raise TemplateError."""
        mappings = []
        for logical_id in self.logical_ids("AWS::Lambda::EventSourceMapping"):
            properties = self.records[logical_id].properties
            where = f"resource {logical_id}"
            source_arn = str(properties.get("EventSourceArn", ""))
            queue_logical_id = self.queue_logical_id(source_arn)
            if queue_logical_id is None:
                raise TemplateError(
                    f"{where}: EventSourceArn {source_arn} is not a queue of this template, and "
                    "the local runtime polls SQS queues only"
                )
            if properties.get("FilterCriteria"):
                raise TemplateError(f"{where}: FilterCriteria is not supported locally")

            response_types = properties.get("FunctionResponseTypes") or []
            mappings.append(
                EventSourceMappingSpec(
                    logical_id=logical_id,
                    function_logical_id=self.function_logical_id(
                        str(properties.get("FunctionName", ""))
                    ),
                    event_source_arn=source_arn,
                    queue_url=self.queue_url(queue_logical_id),
                    batch_size=_int(properties.get("BatchSize", 10), f"{where}.BatchSize"),
                    enabled=_bool(properties.get("Enabled", True), f"{where}.Enabled"),
                    report_batch_item_failures="ReportBatchItemFailures" in response_types,
                )
            )
        return mappings

    def schedules(self) -> list[ScheduleSpec]:
        """Return Scheduler schedules and EventBridge rules that have a ScheduleExpression."""
        found = []
        for logical_id in self.logical_ids("AWS::Scheduler::Schedule"):
            record = self.records[logical_id]
            properties = record.properties
            target = properties.get("Target") or {}
            found.append(
                ScheduleSpec(
                    logical_id=logical_id,
                    name=str(record.physical_id),
                    kind="scheduler",
                    arn=str(record.attributes["Arn"]),
                    expression=str(properties.get("ScheduleExpression", "")),
                    timezone=properties.get("ScheduleExpressionTimezone"),
                    enabled=properties.get("State", "ENABLED") == "ENABLED",
                    targets=(ScheduleTarget(str(target.get("Arn", "")), target.get("Input")),),
                )
            )

        for logical_id in self.logical_ids("AWS::Events::Rule"):
            record = self.records[logical_id]
            properties = record.properties
            if "ScheduleExpression" not in properties:
                continue
            for target in properties.get("Targets", []):
                unsupported = sorted({"InputPath", "InputTransformer"} & set(target))
                if unsupported:
                    raise TemplateError(
                        f"resource {logical_id}: target {target.get('Id')} uses {unsupported}, "
                        "which fire_schedule does not apply. Use Input"
                    )
            found.append(
                ScheduleSpec(
                    logical_id=logical_id,
                    name=str(record.attributes["Name"]),
                    kind="events-rule",
                    arn=str(record.attributes["Arn"]),
                    expression=str(properties["ScheduleExpression"]),
                    timezone=None,
                    enabled=properties.get("State", "ENABLED") == "ENABLED",
                    targets=tuple(
                        ScheduleTarget(str(target["Arn"]), target.get("Input"))
                        for target in properties.get("Targets", [])
                    ),
                )
            )
        return found


# ---------------------------------------------------------------------------- provisioner


class Provisioner:
    """Create each resource of an expanded template in moto and record what it made."""

    def __init__(
        self,
        endpoint_url: str,
        pseudo: PseudoParameters,
        secret_values: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoint_url = check_loopback(endpoint_url)
        self.pseudo = pseudo
        self.secret_values = dict(secret_values or {})
        self._used_secret_keys: set[str] = set()
        self._clients: dict[str, BaseClient] = {}
        self._handlers: dict[str, Callable[[str, dict[str, Any]], ResourceRecord]] = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::SNS::Topic": self._topic,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::SNS::TopicPolicy": self._topic_policy,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Events::Rule": self._rule,
            "AWS::S3::Bucket": self._bucket,
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::KMS::Key": self._key,
            "AWS::KMS::Alias": self._alias,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::CloudWatch::Dashboard": self._dashboard,
            "AWS::Scheduler::ScheduleGroup": self._schedule_group,
            "AWS::Scheduler::Schedule": self._schedule,
            "AWS::IAM::Role": self._role,
            "AWS::IAM::Policy": self._policy,
            "AWS::IAM::ManagedPolicy": self._managed_policy,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
            "AWS::Lambda::Permission": self._permission,
            "AWS::Lambda::LayerVersion": self._layer_version,
            "AWS::Lambda::Version": self._function_version,
            "AWS::Lambda::Alias": self._function_alias,
            "AWS::SES::ConfigurationSet": self._ses_configuration_set,
            "AWS::SES::ConfigurationSetEventDestination": self._ses_event_destination,
        }
        self.records: dict[str, ResourceRecord] = {}

    def _client(self, service: str) -> BaseClient:
        if service not in self._clients:
            self._clients[service] = local_client(service, self.endpoint_url, self.pseudo.region)
        return self._clients[service]

    def _arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        region_part = self.pseudo.region if region else ""
        account_part = self.pseudo.account_id if account else ""
        return f"arn:{self.pseudo.partition}:{service}:{region_part}:{account_part}:{resource}"

    def _name(self, logical_id: str, max_length: int, lowercase: bool = False) -> str:
        return _generated_name(self.pseudo.stack_name, logical_id, max_length, lowercase)

    # ------------------------------------------------------------------ driver

    def provision(
        self,
        template: dict[str, Any],
        resolver: IntrinsicResolver,
        attribute_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, ResourceRecord]:
        """Provision every resource of template in dependency order and return the records."""
        self.records = {}
        resolver.resources = _RecordLookup(self.records)
        resources: dict[str, Any] = template["Resources"]
        overrides = dict(attribute_overrides or {})
        unknown = sorted(set(overrides) - set(resources))
        if unknown:
            raise TemplateError(
                f"attribute_overrides name resources not in the template: {unknown}"
            )

        graph = {
            logical_id: resource_dependencies(template, logical_id) for logical_id in resources
        }
        try:
            order = list(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            raise TemplateError(
                f"resources depend on each other in a cycle: {exc.args[1]}"
            ) from exc

        for logical_id in order:
            resource = resources[logical_id]
            self.records[logical_id] = self._provision_one(
                logical_id, resource, resolver, overrides.get(logical_id)
            )

        unused = sorted(set(self.secret_values) - self._used_secret_keys)
        if unused:
            raise TemplateError(f"secret_values name no secret of the template: {unused}")
        return self.records

    def _provision_one(
        self,
        logical_id: str,
        resource: Mapping[str, Any],
        resolver: IntrinsicResolver,
        override: Mapping[str, Any] | None,
    ) -> ResourceRecord:
        resource_type = str(resource.get("Type", ""))
        condition = resource.get("Condition")
        if condition is not None and not resolver.condition(str(condition)):
            return ResourceRecord(logical_id, resource_type, "excluded", condition=str(condition))

        handler = self._handlers.get(resource_type)
        if handler is None:
            record = self._skip(logical_id, resource_type, resource, resolver)
        else:
            where = f"resource {logical_id} ({resource_type})"
            properties = resolver.resolve(resource.get("Properties") or {}, where)
            try:
                record = handler(logical_id, properties)
            except (ClientError, ParamValidationError) as exc:
                raise TemplateError(f"{where}: could not be created in moto: {exc}") from exc
            record.properties = properties

        if override:
            overridden = dict(override)
            if "Ref" in overridden:
                record.physical_id = overridden.pop("Ref")
            record.attributes.update(overridden)
        return record

    def _skip(
        self,
        logical_id: str,
        resource_type: str,
        resource: Mapping[str, Any],
        resolver: IntrinsicResolver,
    ) -> ResourceRecord:
        if not resource_type.startswith(SKIPPED_PREFIXES):
            LOG.info(
                "resource type not provisioned locally",
                extra={"logical_id": logical_id, "resource_type": resource_type},
            )
        record = ResourceRecord(logical_id, resource_type, "skipped")
        # A skipped resource may refer to values no local component provides, so its
        # properties are resolved only where they can be.
        try:
            record.properties = resolver.resolve(resource.get("Properties") or {}, logical_id)
        except TemplateError:
            record.properties = dict(resource.get("Properties") or {})
        if resource_type == "AWS::ApiGatewayV2::Api":
            record.physical_id = hashlib.sha256(logical_id.encode()).hexdigest()[:10]
        if resource_type.startswith("AWS::CloudFront::"):
            record.physical_id, record.attributes = self._cloudfront_placeholder(
                logical_id, resource_type
            )
        return record

    def _cloudfront_placeholder(
        self, logical_id: str, resource_type: str
    ) -> tuple[str, dict[str, Any]]:
        """Return a made-up id and attributes in CloudFront's format.

        Other resources refer to them, for example the signup page bucket's policy to the
        distribution's id.
        """
        identifier = "E" + hashlib.sha256(logical_id.encode()).hexdigest()[:13].upper()
        if resource_type == "AWS::CloudFront::Distribution":
            domain = f"d{identifier[1:].lower()}.cloudfront.net"
            return identifier, {"Id": identifier, "DomainName": domain}
        if resource_type == "AWS::CloudFront::Function":
            arn = self._arn("cloudfront", f"function/{logical_id}", region=False)
            return arn, {"FunctionARN": arn, "FunctionMetadata.FunctionARN": arn, "Stage": "LIVE"}
        return identifier, {"Id": identifier}

    def _report_ignored(
        self, logical_id: str, resource_type: str, properties: Mapping[str, Any], applied: set[str]
    ) -> None:
        ignored = sorted(set(properties) - applied)
        if ignored:
            LOG.info(
                "resource properties not applied locally",
                extra={
                    "logical_id": logical_id,
                    "resource_type": resource_type,
                    "properties": ignored,
                },
            )

    # ------------------------------------------------------------------ DynamoDB

    def _table(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        where = f"resource {logical_id}"
        name = str(properties.get("TableName") or self._name(logical_id, 255))
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in properties:
            request["ProvisionedThroughput"] = {
                key: _int(value, f"{where}.ProvisionedThroughput.{key}")
                for key, value in properties["ProvisionedThroughput"].items()
            }
        index_keys = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
        if properties.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in index_keys if key in index}
                for index in properties["GlobalSecondaryIndexes"]
            ]
        if properties.get("LocalSecondaryIndexes"):
            request["LocalSecondaryIndexes"] = [
                {key: index[key] for key in index_keys[:3] if key in index}
                for index in properties["LocalSecondaryIndexes"]
            ]
        if "StreamSpecification" in properties:
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": properties["StreamSpecification"]["StreamViewType"],
            }
        if "SSESpecification" in properties:
            sse = properties["SSESpecification"]
            request["SSESpecification"] = {
                "Enabled": _bool(sse.get("SSEEnabled", False), f"{where}.SSEEnabled"),
                **{key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse},
            }
        if "DeletionProtectionEnabled" in properties:
            request["DeletionProtectionEnabled"] = _bool(
                properties["DeletionProtectionEnabled"], f"{where}.DeletionProtectionEnabled"
            )
        if "TableClass" in properties:
            request["TableClass"] = properties["TableClass"]
        if properties.get("Tags"):
            request["Tags"] = _key_value_tags(properties["Tags"])

        client = self._client("dynamodb")
        description = client.create_table(**request)["TableDescription"]

        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"],
                    "Enabled": _bool(ttl.get("Enabled", False), f"{where}.TimeToLive.Enabled"),
                },
            )
        recovery = properties.get("PointInTimeRecoverySpecification")
        if recovery:
            client.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={
                    "PointInTimeRecoveryEnabled": _bool(
                        recovery.get("PointInTimeRecoveryEnabled", False),
                        f"{where}.PointInTimeRecoveryEnabled",
                    )
                },
            )

        applied = set(request) | {"TimeToLiveSpecification", "PointInTimeRecoverySpecification"}
        self._report_ignored(logical_id, "AWS::DynamoDB::Table", properties, applied)
        attributes = {"Arn": description["TableArn"]}
        if "LatestStreamArn" in description:
            attributes["StreamArn"] = description["LatestStreamArn"]
        return ResourceRecord(logical_id, "AWS::DynamoDB::Table", "created", name, attributes)

    # ------------------------------------------------------------------ SQS and SNS

    _QUEUE_ATTRIBUTES = (
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "DelaySeconds",
        "FifoQueue",
        "FifoThroughputLimit",
        "KmsDataKeyReusePeriodSeconds",
        "KmsMasterKeyId",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "RedriveAllowPolicy",
        "RedrivePolicy",
        "SqsManagedSseEnabled",
        "VisibilityTimeout",
    )

    def _queue(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        fifo = _bool(properties.get("FifoQueue", False), f"resource {logical_id}.FifoQueue")
        name = properties.get("QueueName")
        if not name and fifo:
            name = self._name(logical_id, 75) + ".fifo"
        elif not name:
            name = self._name(logical_id, 80)
        attributes = {
            key: _attribute_string(properties[key])
            for key in self._QUEUE_ATTRIBUTES
            if key in properties
        }

        client = self._client("sqs")
        request: dict[str, Any] = {"QueueName": str(name), "Attributes": attributes}
        if properties.get("Tags"):
            request["tags"] = _tag_dict(properties["Tags"])
        url = client.create_queue(**request)["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

        applied = {*self._QUEUE_ATTRIBUTES, "QueueName", "Tags"}
        self._report_ignored(logical_id, "AWS::SQS::Queue", properties, applied)
        return ResourceRecord(
            logical_id,
            "AWS::SQS::Queue",
            "created",
            url,
            {"Arn": arn, "QueueName": str(name), "QueueUrl": url},
        )

    def _queue_policy(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        policy = json.dumps(properties["PolicyDocument"])
        for url in properties["Queues"]:
            self._client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        return ResourceRecord(
            logical_id, "AWS::SQS::QueuePolicy", "created", self._name(logical_id, 64)
        )

    def _topic(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        fifo = _bool(properties.get("FifoTopic", False), f"resource {logical_id}.FifoTopic")
        name = properties.get("TopicName")
        if not name and fifo:
            name = self._name(logical_id, 251) + ".fifo"
        elif not name:
            name = self._name(logical_id, 256)
        attributes = {
            key: _attribute_string(properties[key])
            for key in ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication")
            if key in properties
        }
        client = self._client("sns")
        arn = client.create_topic(Name=str(name), Attributes=attributes)["TopicArn"]
        for subscription in properties.get("Subscription", []):
            client.subscribe(
                TopicArn=arn,
                Protocol=subscription["Protocol"],
                Endpoint=subscription["Endpoint"],
            )
        return ResourceRecord(
            logical_id,
            "AWS::SNS::Topic",
            "created",
            arn,
            {"TopicArn": arn, "TopicName": str(name)},
        )

    def _subscription(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        request = {
            "TopicArn": properties["TopicArn"],
            "Protocol": properties["Protocol"],
            "Endpoint": properties.get("Endpoint", ""),
        }
        if properties.get("RawMessageDelivery") is not None:
            request["Attributes"] = {
                "RawMessageDelivery": _attribute_string(properties["RawMessageDelivery"])
            }
        arn = self._client("sns").subscribe(**request)["SubscriptionArn"]
        return ResourceRecord(logical_id, "AWS::SNS::Subscription", "created", arn, {"Arn": arn})

    def _topic_policy(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        policy = json.dumps(properties["PolicyDocument"])
        for arn in properties["Topics"]:
            self._client("sns").set_topic_attributes(
                TopicArn=arn, AttributeName="Policy", AttributeValue=policy
            )
        return ResourceRecord(
            logical_id, "AWS::SNS::TopicPolicy", "created", self._name(logical_id, 64)
        )

    # ------------------------------------------------------------------ EventBridge

    def _event_bus(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties["Name"])
        request: dict[str, Any] = {"Name": name}
        if properties.get("Tags"):
            request["Tags"] = _key_value_tags(properties["Tags"])
        arn = self._client("events").create_event_bus(**request)["EventBusArn"]
        self._report_ignored(logical_id, "AWS::Events::EventBus", properties, {"Name", "Tags"})
        return ResourceRecord(
            logical_id, "AWS::Events::EventBus", "created", name, {"Arn": arn, "Name": name}
        )

    def _is_function_arn(self, arn: str) -> bool:
        return arn.startswith(self._arn("lambda", "function:"))

    def _rule(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        where = f"resource {logical_id}"
        name = str(properties.get("Name") or self._name(logical_id, 64))
        bus_name = _name_from_arn(str(properties.get("EventBusName", "default")), "event-bus/")
        request: dict[str, Any] = {
            "Name": name,
            "EventBusName": bus_name,
            "State": properties.get("State", "ENABLED"),
        }
        for key in ("Description", "ScheduleExpression", "RoleArn"):
            if key in properties:
                request[key] = properties[key]
        if "EventPattern" in properties:
            pattern = properties["EventPattern"]
            request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)

        moto_targets = []
        for target in properties.get("Targets", []):
            arn = str(target["Arn"])
            if self._is_function_arn(arn):
                # The local runtime invokes functions, because moto would try to run them itself.
                if "EventPattern" in properties:
                    raise TemplateError(
                        f"{where}: target {target.get('Id')} sends matched events to a function "
                        "directly, but locally only SQS targets receive them, so route the rule "
                        "through a queue"
                    )
                continue
            if ":sqs:" in arn and ("Input" in target or "InputPath" in target):
                raise TemplateError(
                    f"{where}: target {target.get('Id')} uses Input or InputPath, which moto "
                    "5.2.5 ignores for SQS targets. Use InputTransformer"
                )
            moto_targets.append(target)

        client = self._client("events")
        arn = client.put_rule(**request)["RuleArn"]
        if moto_targets:
            response = client.put_targets(Rule=name, EventBusName=bus_name, Targets=moto_targets)
            if response.get("FailedEntryCount"):
                raise TemplateError(f"{where}: moto rejected targets {response['FailedEntries']}")

        applied = {"Name", "EventBusName", "State", "Targets", "EventPattern", *request}
        self._report_ignored(logical_id, "AWS::Events::Rule", properties, applied)
        return ResourceRecord(
            logical_id, "AWS::Events::Rule", "created", name, {"Arn": arn, "Name": name}
        )

    # ------------------------------------------------------------------ SES

    def _ses_configuration_set(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("Name") or self._name(logical_id, 64))
        self._client("sesv2").create_configuration_set(ConfigurationSetName=name)
        self._report_ignored(logical_id, "AWS::SES::ConfigurationSet", properties, {"Name"})
        return ResourceRecord(logical_id, "AWS::SES::ConfigurationSet", "created", name)

    def _ses_event_destination(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        # moto 5.2.5 publishes no SES events, so the destination is only recorded. Tests put
        # events in SES's shape on the default bus, where the template's rule routes them.
        name = str(properties.get("EventDestination", {}).get("Name") or logical_id)
        return ResourceRecord(
            logical_id, "AWS::SES::ConfigurationSetEventDestination", "recorded", name
        )

    # ------------------------------------------------------------------ S3

    def _bucket(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        where = f"resource {logical_id}"
        name = str(properties.get("BucketName") or self._name(logical_id, 63, lowercase=True))
        client = self._client("s3")
        if self.pseudo.region == "us-east-1":
            client.create_bucket(Bucket=name)
        else:
            client.create_bucket(
                Bucket=name,
                CreateBucketConfiguration={"LocationConstraint": self.pseudo.region},
            )

        if "VersioningConfiguration" in properties:
            client.put_bucket_versioning(
                Bucket=name,
                VersioningConfiguration={"Status": properties["VersioningConfiguration"]["Status"]},
            )
        if "BucketEncryption" in properties:
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    **(
                        {"BucketKeyEnabled": rule["BucketKeyEnabled"]}
                        if "BucketKeyEnabled" in rule
                        else {}
                    ),
                }
                for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            client.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        if "LifecycleConfiguration" in properties:
            rules = [
                _lifecycle_rule(rule, f"{where}.LifecycleConfiguration")
                for rule in properties["LifecycleConfiguration"]["Rules"]
            ]
            client.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": rules}
            )
        if "PublicAccessBlockConfiguration" in properties:
            client.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    key: _bool(value, f"{where}.PublicAccessBlockConfiguration.{key}")
                    for key, value in properties["PublicAccessBlockConfiguration"].items()
                },
            )
        if "OwnershipControls" in properties:
            client.put_bucket_ownership_controls(
                Bucket=name, OwnershipControls=properties["OwnershipControls"]
            )
        if "CorsConfiguration" in properties:
            client.put_bucket_cors(
                Bucket=name, CORSConfiguration={"CORSRules": _cors_rules(properties)}
            )
        if properties.get("Tags"):
            client.put_bucket_tagging(
                Bucket=name, Tagging={"TagSet": _key_value_tags(properties["Tags"])}
            )
        if "NotificationConfiguration" in properties:
            # moto sends an s3:TestEvent message to each queue here, as S3 does.
            client.put_bucket_notification_configuration(
                Bucket=name,
                NotificationConfiguration=_notification_configuration(
                    properties["NotificationConfiguration"], where
                ),
            )

        applied = {
            "BucketName",
            "VersioningConfiguration",
            "BucketEncryption",
            "LifecycleConfiguration",
            "PublicAccessBlockConfiguration",
            "OwnershipControls",
            "CorsConfiguration",
            "Tags",
            "NotificationConfiguration",
        }
        self._report_ignored(logical_id, "AWS::S3::Bucket", properties, applied)
        arn = f"arn:{self.pseudo.partition}:s3:::{name}"
        attributes = {
            "Arn": arn,
            "DomainName": f"{name}.s3.{self.pseudo.url_suffix}",
            "RegionalDomainName": f"{name}.s3.{self.pseudo.region}.{self.pseudo.url_suffix}",
        }
        return ResourceRecord(logical_id, "AWS::S3::Bucket", "created", name, attributes)

    def _bucket_policy(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        document = dict(properties["PolicyDocument"])
        statements = document.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        # NOTE: moto 5.2.5 treats any statement whose Condition does not match as an explicit
        # deny (even an Allow), so a standard "deny unless aws:SecureTransport" statement would
        # block every object request. Statements with a Condition are left out locally.
        document["Statement"] = [
            statement for statement in statements if "Condition" not in statement
        ]
        left_out = len(statements) - len(document["Statement"])
        if left_out:
            LOG.info(
                "bucket policy statements with a condition not applied locally",
                extra={"logical_id": logical_id, "statements": left_out},
            )
        if document["Statement"]:
            self._client("s3").put_bucket_policy(
                Bucket=properties["Bucket"], Policy=json.dumps(document)
            )
        return ResourceRecord(
            logical_id, "AWS::S3::BucketPolicy", "created", str(properties["Bucket"])
        )

    # ------------------------------------------------------------------ KMS and secrets

    def _key(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        where = f"resource {logical_id}"
        request: dict[str, Any] = {}
        for key in ("Description", "KeyUsage", "KeySpec"):
            if key in properties:
                request[key] = properties[key]
        if "KeyPolicy" in properties:
            policy = properties["KeyPolicy"]
            request["Policy"] = policy if isinstance(policy, str) else json.dumps(policy)
        if "MultiRegion" in properties:
            request["MultiRegion"] = _bool(properties["MultiRegion"], f"{where}.MultiRegion")
        if properties.get("Tags"):
            request["Tags"] = [
                {"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in properties["Tags"]
            ]

        client = self._client("kms")
        metadata = client.create_key(**request)["KeyMetadata"]
        key_id = metadata["KeyId"]
        if _bool(properties.get("EnableKeyRotation", False), f"{where}.EnableKeyRotation"):
            client.enable_key_rotation(KeyId=key_id)
        if not _bool(properties.get("Enabled", True), f"{where}.Enabled"):
            client.disable_key(KeyId=key_id)

        applied = {*request, "KeyPolicy", "EnableKeyRotation", "Enabled", "PendingWindowInDays"}
        self._report_ignored(logical_id, "AWS::KMS::Key", properties, applied)
        return ResourceRecord(
            logical_id,
            "AWS::KMS::Key",
            "created",
            key_id,
            {"Arn": metadata["Arn"], "KeyId": key_id},
        )

    def _alias(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties["AliasName"])
        self._client("kms").create_alias(AliasName=name, TargetKeyId=properties["TargetKeyId"])
        return ResourceRecord(logical_id, "AWS::KMS::Alias", "created", name)

    def _secret_value(self, logical_id: str, name: str, properties: dict[str, Any]) -> str | None:
        for key in (logical_id, name):
            if key in self.secret_values:
                self._used_secret_keys.add(key)
                return self.secret_values[key]
        if "SecretString" in properties:
            return str(properties["SecretString"])
        if "GenerateSecretString" in properties:
            return generate_secret_string(
                properties["GenerateSecretString"], f"resource {logical_id}.GenerateSecretString"
            )
        return None

    def _secret(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("Name") or self._name(logical_id, 256))
        request: dict[str, Any] = {"Name": name}
        for key in ("Description", "KmsKeyId"):
            if key in properties:
                request[key] = properties[key]
        value = self._secret_value(logical_id, name, properties)
        if value is not None:
            request["SecretString"] = value
        else:
            LOG.info("secret created without a value", extra={"logical_id": logical_id})
        if properties.get("Tags"):
            request["Tags"] = _key_value_tags(properties["Tags"])

        arn = self._client("secretsmanager").create_secret(**request)["ARN"]
        applied = {"Name", "Description", "KmsKeyId", "SecretString", "GenerateSecretString"}
        self._report_ignored(
            logical_id, "AWS::SecretsManager::Secret", properties, applied | {"Tags"}
        )
        return ResourceRecord(
            logical_id, "AWS::SecretsManager::Secret", "created", arn, {"Id": arn}
        )

    # ------------------------------------------------------------------ logs and CloudWatch

    def _log_group(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        where = f"resource {logical_id}"
        name = str(properties.get("LogGroupName") or self._name(logical_id, 512))
        request: dict[str, Any] = {"logGroupName": name}
        if "KmsKeyId" in properties:
            request["kmsKeyId"] = properties["KmsKeyId"]
        if properties.get("Tags"):
            request["tags"] = _tag_dict(properties["Tags"])
        client = self._client("logs")
        client.create_log_group(**request)
        if "RetentionInDays" in properties:
            client.put_retention_policy(
                logGroupName=name,
                retentionInDays=_int(properties["RetentionInDays"], f"{where}.RetentionInDays"),
            )

        applied = {"LogGroupName", "KmsKeyId", "Tags", "RetentionInDays"}
        self._report_ignored(logical_id, "AWS::Logs::LogGroup", properties, applied)
        arn = self._arn("logs", f"log-group:{name}:*")
        return ResourceRecord(logical_id, "AWS::Logs::LogGroup", "created", name, {"Arn": arn})

    _ALARM_INTEGERS = ("Period", "EvaluationPeriods", "DatapointsToAlarm")
    _ALARM_FIELDS = (
        "AlarmDescription",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Dimensions",
        "Unit",
        "ComparisonOperator",
        "TreatMissingData",
        "EvaluateLowSampleCountPercentile",
        "Metrics",
        "ThresholdMetricId",
    )

    def _alarm(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        where = f"resource {logical_id}"
        name = str(properties.get("AlarmName") or self._name(logical_id, 255))
        request: dict[str, Any] = {"AlarmName": name}
        for key in self._ALARM_FIELDS:
            if key in properties:
                request[key] = properties[key]
        for key in self._ALARM_INTEGERS:
            if key in properties:
                request[key] = _int(properties[key], f"{where}.{key}")
        if "Threshold" in properties:
            request["Threshold"] = float(properties["Threshold"])
        if "ActionsEnabled" in properties:
            request["ActionsEnabled"] = _bool(properties["ActionsEnabled"], f"{where}.Actions")

        self._client("cloudwatch").put_metric_alarm(**request)
        self._report_ignored(logical_id, "AWS::CloudWatch::Alarm", properties, set(request))
        arn = self._arn("cloudwatch", f"alarm:{name}")
        return ResourceRecord(logical_id, "AWS::CloudWatch::Alarm", "created", name, {"Arn": arn})

    def _dashboard(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("DashboardName") or self._name(logical_id, 255))
        body = properties["DashboardBody"]
        self._client("cloudwatch").put_dashboard(
            DashboardName=name,
            DashboardBody=body if isinstance(body, str) else json.dumps(body),
        )
        return ResourceRecord(logical_id, "AWS::CloudWatch::Dashboard", "created", name)

    # ------------------------------------------------------------------ Scheduler

    def _schedule_group(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("Name") or self._name(logical_id, 64))
        arn = self._arn("scheduler", f"schedule-group/{name}")
        status = "created"
        try:
            arn = self._client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        except ClientError as exc:
            status = "recorded"
            LOG.info(
                "schedule group recorded only because moto rejected it",
                extra={"logical_id": logical_id, "error": exc.response["Error"]["Code"]},
            )
        return ResourceRecord(
            logical_id, "AWS::Scheduler::ScheduleGroup", status, name, {"Arn": arn}
        )

    def _schedule(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("Name") or self._name(logical_id, 64))
        group = str(properties.get("GroupName", "default"))
        arn = self._arn("scheduler", f"schedule/{group}/{name}")
        request: dict[str, Any] = {"Name": name, "GroupName": group}
        for key in (
            "Description",
            "ScheduleExpression",
            "ScheduleExpressionTimezone",
            "FlexibleTimeWindow",
            "Target",
            "State",
            "KmsKeyArn",
        ):
            if key in properties:
                request[key] = properties[key]

        status = "created"
        try:
            arn = self._client("scheduler").create_schedule(**request)["ScheduleArn"]
        except ClientError as exc:
            status = "recorded"
            LOG.info(
                "schedule recorded only because moto rejected it",
                extra={"logical_id": logical_id, "error": exc.response["Error"]["Code"]},
            )
        return ResourceRecord(logical_id, "AWS::Scheduler::Schedule", status, name, {"Arn": arn})

    # ------------------------------------------------------------------ IAM (records only)

    def _role(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("RoleName") or self._name(logical_id, 64))
        path = str(properties.get("Path", "/"))
        role_id = "AROA" + hashlib.sha256(name.encode()).hexdigest()[:17].upper()
        arn = self._arn("iam", f"role{path}{name}", region=False)
        return ResourceRecord(
            logical_id, "AWS::IAM::Role", "recorded", name, {"Arn": arn, "RoleId": role_id}
        )

    def _policy(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("PolicyName") or self._name(logical_id, 128))
        return ResourceRecord(logical_id, "AWS::IAM::Policy", "recorded", name)

    def _managed_policy(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("ManagedPolicyName") or self._name(logical_id, 128))
        path = str(properties.get("Path", "/"))
        arn = self._arn("iam", f"policy{path}{name}", region=False)
        return ResourceRecord(
            logical_id, "AWS::IAM::ManagedPolicy", "recorded", arn, {"PolicyArn": arn}
        )

    # ------------------------------------------------------------------ Lambda (records only)

    def _function(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("FunctionName") or self._name(logical_id, 64))
        arn = self._arn("lambda", f"function:{name}")
        return ResourceRecord(logical_id, "AWS::Lambda::Function", "recorded", name, {"Arn": arn})

    def _function_arn(self, name_or_arn: Any) -> str:
        text = str(name_or_arn)
        return text if text.startswith("arn:") else self._arn("lambda", f"function:{text}")

    def _function_version(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        function_arn = self._function_arn(properties["FunctionName"])
        arn = f"{function_arn}:1"
        return ResourceRecord(
            logical_id,
            "AWS::Lambda::Version",
            "recorded",
            arn,
            {"Version": "1", "FunctionArn": function_arn},
        )

    def _function_alias(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        function_arn = self._function_arn(properties["FunctionName"]).rsplit(":", 1)
        base_arn = function_arn[0] if function_arn[1].isdigit() else ":".join(function_arn)
        arn = f"{base_arn}:{properties['Name']}"
        return ResourceRecord(logical_id, "AWS::Lambda::Alias", "recorded", arn, {"AliasArn": arn})

    def _event_source_mapping(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        mapping_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.pseudo.stack_name}/{logical_id}"))
        return ResourceRecord(
            logical_id,
            "AWS::Lambda::EventSourceMapping",
            "recorded",
            mapping_id,
            {"Id": mapping_id},
        )

    def _permission(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        return ResourceRecord(
            logical_id, "AWS::Lambda::Permission", "recorded", self._name(logical_id, 64)
        )

    def _layer_version(self, logical_id: str, properties: dict[str, Any]) -> ResourceRecord:
        name = str(properties.get("LayerName") or logical_id)
        layer_arn = self._arn("lambda", f"layer:{name}")
        arn = f"{layer_arn}:1"
        return ResourceRecord(
            logical_id,
            "AWS::Lambda::LayerVersion",
            "recorded",
            arn,
            {"LayerVersionArn": arn},
        )


# ---------------------------------------------------------------------------- S3 shapes


def _lifecycle_rule(rule: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Convert a CloudFormation lifecycle rule to the PutBucketLifecycleConfiguration shape."""
    api: dict[str, Any] = {"Status": rule["Status"]}
    if "Id" in rule:
        api["ID"] = rule["Id"]

    conditions: dict[str, Any] = {}
    if "Prefix" in rule:
        conditions["Prefix"] = rule["Prefix"]
    if rule.get("TagFilters"):
        conditions["Tags"] = _key_value_tags(rule["TagFilters"])
    for key in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if key in rule:
            conditions[key] = _int(rule[key], f"{where}.{key}")
    if len(conditions) > 1 or len(conditions.get("Tags", [])) > 1:
        api["Filter"] = {"And": conditions}
    elif "Tags" in conditions:
        api["Filter"] = {"Tag": conditions["Tags"][0]}
    else:
        api["Filter"] = conditions

    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = _int(rule["ExpirationInDays"], f"{where}.ExpirationInDays")
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = _bool(
            rule["ExpiredObjectDeleteMarker"], f"{where}.ExpiredObjectDeleteMarker"
        )
    if expiration:
        api["Expiration"] = expiration

    if "NoncurrentVersionExpirationInDays" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": _int(rule["NoncurrentVersionExpirationInDays"], where)
        }
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            key: _int(value, f"{where}.NoncurrentVersionExpiration.{key}")
            for key, value in rule["NoncurrentVersionExpiration"].items()
        }
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": _int(days, where)}

    transitions = list(rule.get("Transitions", []))
    if "Transition" in rule:
        transitions.append(rule["Transition"])
    if transitions:
        api["Transitions"] = [
            {
                "StorageClass": item["StorageClass"],
                **(
                    {"Days": _int(item["TransitionInDays"], where)}
                    if "TransitionInDays" in item
                    else {}
                ),
                **({"Date": item["TransitionDate"]} if "TransitionDate" in item else {}),
            }
            for item in transitions
        ]
    if rule.get("NoncurrentVersionTransitions"):
        api["NoncurrentVersionTransitions"] = [
            {
                "StorageClass": item["StorageClass"],
                "NoncurrentDays": _int(item["TransitionInDays"], where),
            }
            for item in rule["NoncurrentVersionTransitions"]
        ]
    return api


def _cors_rules(properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    renames = {"ExposedHeaders": "ExposeHeaders", "Id": "ID", "MaxAge": "MaxAgeSeconds"}
    return [
        {renames.get(key, key): value for key, value in rule.items()}
        for rule in properties["CorsConfiguration"]["CorsRules"]
    ]


def _notification_configuration(configuration: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Convert a CloudFormation NotificationConfiguration to the S3 API shape."""
    unsupported = sorted(set(configuration) - {"QueueConfigurations", "EventBridgeConfiguration"})
    if unsupported:
        raise TemplateError(
            f"{where}.NotificationConfiguration: {unsupported} are not delivered locally, so "
            "send bucket notifications to a queue"
        )

    api: dict[str, Any] = {}
    queues = []
    for item in configuration.get("QueueConfigurations", []):
        queue: dict[str, Any] = {"QueueArn": item["Queue"], "Events": [item["Event"]]}
        rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("Rules")
        if rules:
            queue["Filter"] = {
                "Key": {
                    "FilterRules": [
                        {"Name": rule["Name"], "Value": rule["Value"]} for rule in rules
                    ]
                }
            }
        queues.append(queue)
    if queues:
        api["QueueConfigurations"] = queues
    if configuration.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        api["EventBridgeConfiguration"] = {}
    return api


# ---------------------------------------------------------------------------- entry point


def provision_stack(
    template_path: str | Path,
    endpoint_url: str,
    *,
    parameter_overrides: Mapping[str, Any] | None = None,
    secret_values: Mapping[str, str] | None = None,
    attribute_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    pseudo: PseudoParameters | None = None,
) -> ProvisionedStack:
    """Load, expand and provision the template at template_path in the moto server.

    secret_values maps a secret's logical id or Name to the SecretString to store, in place of
    the template's value. attribute_overrides maps a logical id to {"Ref": ..., attribute: ...}
    for resources that another local component serves (for example the HTTP API).
    """
    pseudo = pseudo or PseudoParameters()
    path = Path(template_path)
    source = load_template(path)
    parameters = resolve_parameters(source, parameter_overrides)
    template = expand_sam(source, parameters, pseudo)

    provisioner = Provisioner(endpoint_url, pseudo, secret_values)
    resolver = IntrinsicResolver(template, parameters, pseudo, _RecordLookup({}))
    records = provisioner.provision(template, resolver, attribute_overrides)
    LOG.info(
        "stack provisioned",
        extra={
            "stack_name": pseudo.stack_name,
            "resources_created": sum(record.status == "created" for record in records.values()),
            "resources_recorded": sum(record.status == "recorded" for record in records.values()),
            "resources_skipped": sum(record.status == "skipped" for record in records.values()),
            "resources_excluded": sum(record.status == "excluded" for record in records.values()),
        },
    )
    return ProvisionedStack(
        endpoint_url=endpoint_url,
        pseudo=pseudo,
        template_dir=path.parent.resolve(),
        source_template=source,
        template=template,
        parameters=parameters,
        records=records,
        resolver=resolver,
    )
