"""Unit tests that keep the sample events in events/ valid for the models, routes and signatures."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import typing
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import TypeAdapter
from twilio.request_validator import RequestValidator

from idsentry.crypto import Pepper, verify_token
from idsentry.http import parse_http_event
from idsentry.models.account_jobs import AccountDeletionJob, ReportJob
from idsentry.models.billing_jobs import ReconciliationJob, StripeEventJob
from idsentry.models.breach_jobs import CheckJob, ChunkJob, HibpJob, PlanPageJob
from idsentry.models.events import ALL_EVENT_TYPES, ExposureDetected
from idsentry.models.jobs import NotificationJob
from idsentry.routes import account_authorizer
from idsentry.routes.breach_jobs import manifest_keys
from idsentry.services.tokens import VerificationKey
from idsentry.settings.account import AccountAuthorizerSettings
from infra.local.http_api import Route, extract_routes
from infra.local.template import IntrinsicResolver, PseudoParameters, load_template

pytestmark = pytest.mark.unit

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = REPOSITORY_ROOT / "events"
TEMPLATE_PATH = REPOSITORY_ROOT / "template.yaml"

BUS_SAMPLES = sorted((EVENTS_DIR / "bus").glob("*.json"))
SQS_SAMPLES = sorted((EVENTS_DIR / "sqs").glob("*.json"))
HTTP_SAMPLES = sorted((EVENTS_DIR / "http").glob("*.json"))
SCHEDULE_SAMPLES = sorted((EVENTS_DIR / "schedule").glob("*.json"))
AUTHORIZER_SAMPLES = sorted((EVENTS_DIR / "authorizer").glob("*.json"))
# The public half of the key that signed the access token in the account samples (the private
# half was discarded), with the key id the token names.
SAMPLE_TOKEN_KEY = EVENTS_DIR / "authorizer" / "sample_token_key.pem"
SAMPLE_TOKEN_KEY_ID = "0b8c2c65-6f3f-4d0e-9f5c-3d6a2e1b7c90"
ACCOUNT_AUTHORIZER = "AccountTokenAuthorizer"

# Values documented in events/README.md: the Twilio auth token and the pepper that signed the
# samples. Neither is a real secret.
TWILIO_AUTH_TOKEN = "test-auth-token"
TWILIO_CALLBACK_URL = "https://idsentry.example.com/v1/webhooks/twilio/status"
SAMPLE_PEPPER = "sample-pepper-for-event-fixtures-only-0001"

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-notifications"
STRIPE_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-stripe-events"
CHUNK_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-breach-chunks"
INTAKE_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-breach-intake"
CHECK_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-breach-checks"
HIBP_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-hibp-lookups"
RISK_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-risk"
DELETION_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-account-deletions"
REPORT_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-reports"
RECONCILIATION_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:idsentry-dev-reconciliations"
# EventBridge events that a rule delivers to a queue, whole; this stands for their kind below.
BUS_EVENT = "eventbridge_event"
# S3 event notifications are not jobs of ours; this stands for their kind in the tables below.
S3_NOTIFICATION = "s3_notification"
ENVELOPE_FIELDS = {
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
}
SQS_RECORD_FIELDS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}

PROJECT_ID = re.compile(r"(?:sgn|sbr|code|sin|tok)_[0-9A-HJKMNP-TV-Z]{26}")
# Field names such as `code_id` are not ids.
PROJECT_ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(?:sgn|sbr|code|sin|tok)_(?!id\b)[0-9A-Za-z]+")

# What a phone number, an e-mail address or a resident ID number looks like in text. Digit
# boundaries keep 13-digit millisecond timestamps from matching the 11-digit mobile pattern.
PERSONAL_DATA_PATTERNS = {
    "+86 phone number": re.compile(r"\+86"),
    "11-digit mobile number": re.compile(r"(?<!\d)(?:86)?1[3-9]\d{9}(?!\d)"),
    "e-mail address": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "18-character ID number": re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"),
}

_job_adapter: TypeAdapter[NotificationJob] = TypeAdapter(NotificationJob)


def validate_job(body: str) -> tuple[str, str]:
    """Validate a queue message body as the job of its queue; return its kind and queue ARN."""
    compact = body.replace(" ", "")
    if '"kind":"stripe_event"' in compact:
        return StripeEventJob.model_validate_json(body).kind, STRIPE_QUEUE_ARN
    if '"kind":"breach_chunk"' in compact:
        return ChunkJob.model_validate_json(body).kind, CHUNK_QUEUE_ARN
    if '"kind":"breach_check"' in compact:
        return CheckJob.model_validate_json(body).kind, CHECK_QUEUE_ARN
    if '"kind":"breach_plan_page"' in compact:
        return PlanPageJob.model_validate_json(body).kind, CHECK_QUEUE_ARN
    if '"kind":"hibp_lookup"' in compact:
        return HibpJob.model_validate_json(body).kind, HIBP_QUEUE_ARN
    if '"kind":"account_deletion"' in compact:
        return AccountDeletionJob.model_validate_json(body).kind, DELETION_QUEUE_ARN
    if '"kind":"report"' in compact:
        return ReportJob.model_validate_json(body).kind, REPORT_QUEUE_ARN
    if '"kind":"reconciliation"' in compact:
        return ReconciliationJob.model_validate_json(body).kind, RECONCILIATION_QUEUE_ARN
    if '"detail-type":"Exposure.Detected"' in compact:
        envelope = json.loads(body)
        ExposureDetected.model_validate(envelope["detail"])
        return BUS_EVENT, RISK_QUEUE_ARN
    if '"eventSource":"aws:s3"' in compact:
        assert manifest_keys(body), "the S3 notification names no manifest"
        return S3_NOTIFICATION, INTAKE_QUEUE_ARN
    return _job_adapter.validate_json(body).kind, QUEUE_ARN


def load_sample(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        sample: dict[str, Any] = json.load(file)
    return sample


def sample_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def job_kinds() -> set[str]:
    """Return the `kind` of every job class in the NotificationJob union."""
    union = typing.get_args(NotificationJob)[0]
    kinds = {str(job_class.model_fields["kind"].default) for job_class in typing.get_args(union)}
    return kinds | {
        str(StripeEventJob.model_fields["kind"].default),
        str(ChunkJob.model_fields["kind"].default),
        str(CheckJob.model_fields["kind"].default),
        str(PlanPageJob.model_fields["kind"].default),
        str(HibpJob.model_fields["kind"].default),
        str(AccountDeletionJob.model_fields["kind"].default),
        str(ReportJob.model_fields["kind"].default),
        str(ReconciliationJob.model_fields["kind"].default),
        S3_NOTIFICATION,
        BUS_EVENT,
    }


def personal_data_found(text: str) -> list[str]:
    """Return the names of the personal-data patterns that match text."""
    return [name for name, pattern in PERSONAL_DATA_PATTERNS.items() if pattern.search(text)]


class _NoResources:
    def ref(self, logical_id: str) -> Any:
        raise AssertionError(f"unexpected Ref {logical_id}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        raise AssertionError(f"unexpected GetAtt {logical_id}.{attribute}")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def routes(template: dict[str, Any]) -> dict[str, Route]:
    return {route.route_key: route for route in extract_routes(template)}


def default_parameter(template: dict[str, Any], name: str) -> str:
    return str(template["Parameters"][name]["Default"])


# ---------------------------------------------------------------------------- bus events


def test_bus_samples_exist() -> None:
    assert BUS_SAMPLES, "events/bus contains no sample"


@pytest.mark.parametrize("path", BUS_SAMPLES, ids=sample_id)
def test_bus_sample_envelope(path: Path) -> None:
    sample = load_sample(path)

    assert set(sample) == ENVELOPE_FIELDS
    assert sample["version"] == "0"
    assert uuid.UUID(sample["id"]).version == 4
    assert re.fullmatch(r"\d{12}", sample["account"])
    assert sample["time"].endswith("Z")
    assert datetime.fromisoformat(sample["time"]).utcoffset() is not None
    assert sample["region"] == "us-east-1"
    assert sample["resources"] == []


@pytest.mark.parametrize("path", BUS_SAMPLES, ids=sample_id)
def test_bus_sample_detail(path: Path) -> None:
    sample = load_sample(path)
    models = {model.detail_type: model for model in ALL_EVENT_TYPES}

    assert sample["detail-type"] in models, f"no model has detail_type {sample['detail-type']!r}"
    model = models[sample["detail-type"]]
    assert sample["source"] == model.source
    detail = model.model_validate(sample["detail"])
    assert detail.model_dump(mode="json") == sample["detail"]


def test_bus_samples_cover_models() -> None:
    sampled = {load_sample(path)["detail-type"] for path in BUS_SAMPLES}

    missing = {model.detail_type for model in ALL_EVENT_TYPES} - sampled
    assert not missing, f"event types without a sample in events/bus: {sorted(missing)}"


# ---------------------------------------------------------------------------- queue messages


def test_sqs_samples_exist() -> None:
    assert SQS_SAMPLES, "events/sqs contains no sample"


@pytest.mark.parametrize("path", SQS_SAMPLES, ids=sample_id)
def test_sqs_sample_records(path: Path) -> None:
    records = load_sample(path)["Records"]

    assert records
    for record in records:
        assert set(record) == SQS_RECORD_FIELDS
        assert record["eventSource"] == "aws:sqs"
        _, queue_arn = validate_job(record["body"])
        assert record["eventSourceARN"] == queue_arn
        assert record["awsRegion"] == queue_arn.split(":")[3]
        assert uuid.UUID(record["messageId"]).version == 4
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324


@pytest.mark.parametrize("path", SQS_SAMPLES, ids=sample_id)
def test_sqs_sample_timestamps(path: Path) -> None:
    for record in load_sample(path)["Records"]:
        attributes = record["attributes"]
        assert int(attributes["ApproximateReceiveCount"]) >= 1
        assert int(attributes["ApproximateFirstReceiveTimestamp"]) >= int(
            attributes["SentTimestamp"]
        )


def test_sqs_samples_cover_job_kinds() -> None:
    sampled = {
        validate_job(record["body"])[0]
        for path in SQS_SAMPLES
        for record in load_sample(path)["Records"]
    }

    missing = job_kinds() - sampled
    assert not missing, f"job kinds without a sample in events/sqs: {sorted(missing)}"


def test_sqs_queue_matches_template(template: dict[str, Any]) -> None:
    pseudo = PseudoParameters()
    resolver = IntrinsicResolver(
        template=template,
        parameters={"Stage": default_parameter(template, "Stage")},
        pseudo=pseudo,
        resources=_NoResources(),
    )
    for logical_id, arn in (
        ("NotificationQueue", QUEUE_ARN),
        ("StripeEventsQueue", STRIPE_QUEUE_ARN),
        ("ChunkQueue", CHUNK_QUEUE_ARN),
        ("IntakeQueue", INTAKE_QUEUE_ARN),
        ("CheckQueue", CHECK_QUEUE_ARN),
        ("HibpQueue", HIBP_QUEUE_ARN),
        ("RiskQueue", RISK_QUEUE_ARN),
        ("AccountDeletionQueue", DELETION_QUEUE_ARN),
        ("ReconciliationQueue", RECONCILIATION_QUEUE_ARN),
    ):
        queue_name = resolver.resolve(template["Resources"][logical_id]["Properties"]["QueueName"])
        assert arn == f"arn:aws:sqs:{pseudo.region}:{pseudo.account_id}:{queue_name}"


# ---------------------------------------------------------------------------- schedules


def schedule_rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the properties of every `Type: Schedule` event (an EventBridge rule) by rule name."""
    resolver = IntrinsicResolver(
        template=template,
        parameters={"Stage": default_parameter(template, "Stage")},
        pseudo=PseudoParameters(),
        resources=_NoResources(),
    )
    rules = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "Schedule":
                rules[resolver.resolve(event["Properties"]["Name"])] = event["Properties"]
    return rules


def test_schedule_samples_exist() -> None:
    assert SCHEDULE_SAMPLES, "events/schedule contains no sample"


@pytest.mark.parametrize("path", SCHEDULE_SAMPLES, ids=sample_id)
def test_schedule_sample_envelope(path: Path) -> None:
    sample = load_sample(path)

    assert set(sample) == ENVELOPE_FIELDS
    assert sample["version"] == "0"
    assert uuid.UUID(sample["id"]).version == 4
    assert sample["detail-type"] == "Scheduled Event"
    assert sample["source"] == "aws.events"
    assert sample["detail"] == {}
    assert sample["time"].endswith("Z")


@pytest.mark.parametrize("path", SCHEDULE_SAMPLES, ids=sample_id)
def test_schedule_sample_rule_in_template(path: Path, template: dict[str, Any]) -> None:
    sample = load_sample(path)
    pseudo = PseudoParameters()
    (rule_arn,) = sample["resources"]
    prefix = f"arn:aws:events:{pseudo.region}:{pseudo.account_id}:rule/"
    rules = schedule_rules(template)

    assert rule_arn.startswith(prefix)
    assert rule_arn.removeprefix(prefix) in rules, f"{rule_arn} is not a schedule of template.yaml"
    # With an Input the function would receive that instead of this envelope.
    assert "Input" not in rules[rule_arn.removeprefix(prefix)]


# ---------------------------------------------------------------------------- HTTP requests


def path_parameters_of(route: Route, path: str) -> dict[str, str] | None:
    """Match path against the route's path template; return its parameters or None."""
    pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
    match = re.fullmatch(pattern, path)
    return match.groupdict() if match else None


@pytest.mark.parametrize("path", HTTP_SAMPLES, ids=sample_id)
def test_http_sample_route(path: Path, routes: dict[str, Route]) -> None:
    sample = load_sample(path)
    request = parse_http_event(sample)

    assert request.route_key in routes, f"route {request.route_key!r} is not in template.yaml"
    assert sample["requestContext"]["routeKey"] == request.route_key
    assert request.method == routes[request.route_key].method
    assert path_parameters_of(routes[request.route_key], request.path) == dict(
        request.path_parameters
    )


@pytest.mark.parametrize("path", HTTP_SAMPLES, ids=sample_id)
def test_http_sample_content_length(path: Path) -> None:
    sample = load_sample(path)
    request = parse_http_event(sample)

    if "body" in sample:
        assert int(request.headers["content-length"]) == len(request.body)
    else:
        assert "content-length" not in request.headers


@pytest.mark.parametrize("path", HTTP_SAMPLES, ids=sample_id)
def test_http_sample_form_body_base64(path: Path) -> None:
    # HTTP APIs base64-encode form bodies for Lambda. AWS documents this only for binary media
    # types, and TEXT_MEDIA_TYPES in infra/local/http_api.py gives the observed split.
    sample = load_sample(path)
    content_type = sample["headers"].get("content-type", "")

    if content_type.startswith("application/x-www-form-urlencoded"):
        assert sample["isBase64Encoded"] is True


def test_http_samples_cover_routes(routes: dict[str, Route]) -> None:
    sampled = {load_sample(path)["routeKey"] for path in HTTP_SAMPLES}

    missing = set(routes) - sampled
    assert not missing, f"routes without a sample in events/http: {sorted(missing)}"


def twilio_callback() -> tuple[dict[str, str], str]:
    """Return the Twilio sample's form parameters and its X-Twilio-Signature value."""
    request = parse_http_event(load_sample(EVENTS_DIR / "http" / "twilio_status_callback.json"))
    params = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    return params, request.header("x-twilio-signature") or ""


def test_twilio_sample_signature() -> None:
    params, signature = twilio_callback()

    assert signature
    assert RequestValidator(TWILIO_AUTH_TOKEN).validate(TWILIO_CALLBACK_URL, params, signature)


def test_twilio_sample_signature_tampered() -> None:
    params, signature = twilio_callback()
    params["MessageStatus"] = "failed"

    assert not RequestValidator(TWILIO_AUTH_TOKEN).validate(TWILIO_CALLBACK_URL, params, signature)


def test_twilio_sample_url_matches_template(template: dict[str, Any]) -> None:
    # The handler rebuilds the signed URL from PublicBaseUrl, so the default must match.
    base_url = default_parameter(template, "PublicBaseUrl")

    assert TWILIO_CALLBACK_URL == f"{base_url}/v1/webhooks/twilio/status"


def test_confirm_email_token_signed() -> None:
    sample = load_sample(EVENTS_DIR / "http" / "confirm_email.json")
    request = parse_http_event(sample)
    pepper = Pepper(versions={"1": SAMPLE_PEPPER.encode()}, current="1")

    sent_at = sample["requestContext"]["timeEpoch"] // 1000
    claims = verify_token(
        pepper.derive_key("email-link"), request.path_parameters["token"], sent_at
    )
    assert PROJECT_ID.fullmatch(claims["sub"])


def test_billing_link_sample_verifies() -> None:
    sample = load_sample(EVENTS_DIR / "http" / "open_billing_link.json")
    request = parse_http_event(sample)
    pepper = Pepper(versions={"1": SAMPLE_PEPPER.encode()}, current="1")

    sent_at = sample["requestContext"]["timeEpoch"] // 1000
    claims = verify_token(
        pepper.derive_key("billing-link"), request.path_parameters["token"], sent_at
    )
    assert claims["act"] == "portal"
    assert PROJECT_ID.fullmatch(claims["sub"])


# ---------------------------------------------------------------------------- account authorizer


def sample_token_key() -> VerificationKey:
    public_key = load_pem_public_key(SAMPLE_TOKEN_KEY.read_bytes())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    return VerificationKey(SAMPLE_TOKEN_KEY_ID, public_key)


def bearer_claims(sample: dict[str, Any]) -> dict[str, Any]:
    """Return the claims of the sample's bearer token, decoded without checking the signature."""
    token = sample["headers"]["authorization"].removeprefix("Bearer ")
    claims = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4))
    )
    return decoded


def sample_authorizer_settings(template: dict[str, Any]) -> AccountAuthorizerSettings:
    return AccountAuthorizerSettings(
        stage="dev",
        table_name="idsentry-dev",
        key_table_name="idsentry-dev-keys",
        event_bus_name="idsentry-dev",
        data_key_arn="arn:aws:kms:us-east-1:123456789012:key/data",
        pepper_secret_id="idsentry/fingerprint-pepper",
        notification_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/notifications",
        public_base_url=default_parameter(template, "PublicBaseUrl"),
        account_token_key_arn=f"arn:aws:kms:us-east-1:123456789012:key/{SAMPLE_TOKEN_KEY_ID}",
        access_token_seconds=int(default_parameter(template, "AccessTokenSeconds")),
    )


def test_authorizer_samples_exist() -> None:
    assert AUTHORIZER_SAMPLES, "events/authorizer contains no sample"


@pytest.mark.parametrize("path", AUTHORIZER_SAMPLES, ids=sample_id)
def test_authorizer_sample_shape(path: Path, routes: dict[str, Route]) -> None:
    sample = load_sample(path)
    context = sample["requestContext"]
    method = sample["routeKey"].split(" ", 1)[0]

    assert sample["version"] == "2.0"
    assert sample["type"] == "REQUEST"
    assert routes[sample["routeKey"]].authorizer == ACCOUNT_AUTHORIZER
    assert sample["identitySource"] == [sample["headers"]["authorization"]]
    assert sample["routeArn"] == (
        f"arn:aws:execute-api:us-east-1:{context['accountId']}:{context['apiId']}/"
        f"{context['stage']}/{method}{sample['rawPath']}"
    )
    assert path_parameters_of(routes[sample["routeKey"]], sample["rawPath"]) is not None
    # API Gateway sends an authorizer neither the body nor its own earlier result.
    assert "body" not in sample
    assert "authorizer" not in context


@pytest.mark.parametrize("path", AUTHORIZER_SAMPLES, ids=sample_id)
def test_authorizer_sample_allowed(path: Path, template: dict[str, Any]) -> None:
    sample = load_sample(path)
    key = sample_token_key()
    at = sample["requestContext"]["timeEpoch"] // 1000

    response = account_authorizer.handle(
        sample, settings=sample_authorizer_settings(template), key=lambda: key, now=lambda: at
    )

    assert response["isAuthorized"] is True
    assert response["context"]["subscriber_id"] == bearer_claims(sample)["sub"]
    assert PROJECT_ID.fullmatch(response["context"]["subscriber_id"])


@pytest.mark.parametrize("path", AUTHORIZER_SAMPLES, ids=sample_id)
def test_authorizer_sample_expires(path: Path, template: dict[str, Any]) -> None:
    sample = load_sample(path)
    key = sample_token_key()
    later = bearer_claims(sample)["exp"] + 3600

    response = account_authorizer.handle(
        sample, settings=sample_authorizer_settings(template), key=lambda: key, now=lambda: later
    )

    assert response == {"isAuthorized": False}


def account_http_samples() -> list[Path]:
    """Return the HTTP samples of routes behind the account authorizer."""
    protected = {
        route.route_key
        for route in extract_routes(load_template(TEMPLATE_PATH))
        if route.authorizer == ACCOUNT_AUTHORIZER
    }
    return [path for path in HTTP_SAMPLES if load_sample(path)["routeKey"] in protected]


def test_account_samples_found() -> None:
    assert len(account_http_samples()) >= 4


@pytest.mark.parametrize("path", account_http_samples(), ids=sample_id)
def test_account_sample_has_authorizer_context(path: Path) -> None:
    sample = load_sample(path)

    context = parse_http_event(sample).authorizer["lambda"]

    assert PROJECT_ID.fullmatch(context["subscriber_id"])
    assert context["subscriber_id"] == bearer_claims(sample)["sub"]


def test_account_samples_cover_authorizer_sample() -> None:
    # The authorizer sample is the check that API Gateway runs before http/account.json.
    (authorizer_sample,) = AUTHORIZER_SAMPLES
    account = load_sample(EVENTS_DIR / "http" / "account.json")
    checked = load_sample(authorizer_sample)

    assert checked["headers"] == account["headers"]
    assert checked["requestContext"]["requestId"] == account["requestContext"]["requestId"]
    assert (
        account["requestContext"]["authorizer"]["lambda"]["subscriber_id"]
        == (bearer_claims(checked)["sub"])
    )


# ---------------------------------------------------------------------------- ids and privacy


@pytest.mark.parametrize(
    "path", [*BUS_SAMPLES, *SQS_SAMPLES, *HTTP_SAMPLES, *AUTHORIZER_SAMPLES], ids=sample_id
)
def test_sample_ids_format(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    candidates = PROJECT_ID_CANDIDATE.findall(text)

    for candidate in candidates:
        assert PROJECT_ID.fullmatch(candidate), f"{candidate} is not prefix + 26-char ULID"
        # A ULID's first character encodes the top 3 bits of a 48-bit timestamp.
        assert candidate.split("_")[1][0] in "01234567", f"{candidate} overflows a ULID"


@pytest.mark.parametrize(
    "path", [*BUS_SAMPLES, *SQS_SAMPLES, *SCHEDULE_SAMPLES, *AUTHORIZER_SAMPLES], ids=sample_id
)
def test_sample_no_personal_data(path: Path) -> None:
    text = path.read_text(encoding="utf-8")

    assert personal_data_found(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"to": "+8613800138000"}', ["+86 phone number", "11-digit mobile number"]),
        ('{"mobile": "13800138000"}', ["11-digit mobile number"]),
        ('{"mobile": "8613800138000"}', ["11-digit mobile number"]),
        ('{"email": "zhangsan@example.com"}', ["e-mail address"]),
        ('{"id": "11010519491231002X"}', ["18-character ID number"]),
        ('{"SentTimestamp": "1796415218000"}', []),
        ('{"subscriber_id": "sbr_01M91B4ABG36G2R8D4PV2HM6CG"}', []),
    ],
)
def test_personal_data_patterns(text: str, expected: list[str]) -> None:
    assert personal_data_found(text) == expected
