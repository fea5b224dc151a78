"""Unit tests that keep the SES event samples in events/ses valid for the model and the template."""

from __future__ import annotations

import copy
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from idsentry.errors import PoisonMessageError
from idsentry.models.ses_events import SesEvent
from idsentry.routes.email_event_jobs import process_ses_event_record
from infra.local.template import IntrinsicResolver, PseudoParameters, load_template

pytestmark = pytest.mark.unit

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SES_SAMPLES = sorted((REPOSITORY_ROOT / "events" / "ses").glob("*.json"))
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
ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# SES's mailbox simulator addresses, and the template's default sender.
ALLOWED_ADDRESSES = {
    "bounce@simulator.amazonses.com",
    "complaint@simulator.amazonses.com",
    "no-reply@idsentry.example.com",
}


class _NoResources:
    def ref(self, logical_id: str) -> Any:
        raise AssertionError(f"unexpected Ref {logical_id}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        raise AssertionError(f"unexpected GetAtt {logical_id}.{attribute}")


def load_sample(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        sample: dict[str, Any] = json.load(file)
    return sample


def sample_id(path: Path) -> str:
    return path.name


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPOSITORY_ROOT / "template.yaml")


@pytest.fixture(scope="module")
def configuration_set_name(template: dict[str, Any]) -> str:
    resolver = IntrinsicResolver(
        template=template,
        parameters={"Stage": str(template["Parameters"]["Stage"]["Default"])},
        pseudo=PseudoParameters(),
        resources=_NoResources(),
    )
    name = template["Resources"]["EmailConfigurationSet"]["Properties"]["Name"]
    return str(resolver.resolve(name))


def test_ses_samples_exist() -> None:
    assert len(SES_SAMPLES) >= 3


@pytest.mark.parametrize("path", SES_SAMPLES, ids=sample_id)
def test_ses_sample_envelope(path: Path) -> None:
    sample = load_sample(path)

    assert set(sample) == ENVELOPE_FIELDS
    assert sample["version"] == "0"
    assert sample["source"] == "aws.ses"
    assert uuid.UUID(sample["id"]).version == 4
    assert sample["time"].endswith("Z")


@pytest.mark.parametrize("path", SES_SAMPLES, ids=sample_id)
def test_ses_sample_validates(path: Path) -> None:
    event = SesEvent.model_validate(load_sample(path))

    assert event.detail.mail.message_id


@pytest.mark.parametrize("path", SES_SAMPLES, ids=sample_id)
def test_ses_sample_matches_rule(
    path: Path, template: dict[str, Any], configuration_set_name: str
) -> None:
    sample = load_sample(path)
    pattern = template["Resources"]["SesEventsRule"]["Properties"]["EventPattern"]

    assert sample["source"] in pattern["source"]
    assert sample["detail-type"] in pattern["detail-type"]
    assert sample["detail"]["mail"]["tags"]["ses:configuration-set"] == [configuration_set_name]


def test_ses_samples_cover_rule(template: dict[str, Any]) -> None:
    pattern = template["Resources"]["SesEventsRule"]["Properties"]["EventPattern"]
    sampled = {load_sample(path)["detail-type"] for path in SES_SAMPLES}

    assert sampled == set(pattern["detail-type"])


def test_ses_samples_bounce_types() -> None:
    bounces = [
        load_sample(path)["detail"]["bounce"]["bounceType"]
        for path in SES_SAMPLES
        if load_sample(path)["detail-type"] == "Email Bounced"
    ]

    assert sorted(bounces) == ["Permanent", "Transient"]


@pytest.mark.parametrize("path", SES_SAMPLES, ids=sample_id)
def test_ses_sample_addresses_simulated(path: Path) -> None:
    # SES events carry recipient addresses; the samples use SES's mailbox simulator only.
    found = set(ADDRESS.findall(path.read_text(encoding="utf-8")))

    assert found
    assert found <= ALLOWED_ADDRESSES


def test_bounce_without_object_rejected() -> None:
    sample = load_sample(REPOSITORY_ROOT / "events" / "ses" / "email_bounced_permanent.json")
    del sample["detail"]["bounce"]

    with pytest.raises(ValidationError):
        SesEvent.model_validate(sample)


def test_complaint_without_object_rejected() -> None:
    sample = load_sample(REPOSITORY_ROOT / "events" / "ses" / "email_complaint_received.json")
    del sample["detail"]["complaint"]

    with pytest.raises(ValidationError):
        SesEvent.model_validate(sample)


@pytest.mark.parametrize(
    ("field", "value"),
    [("detail-type", "Email Delivered"), ("source", "idsentry.signup")],
)
def test_other_events_rejected(field: str, value: str) -> None:
    sample = copy.deepcopy(
        load_sample(REPOSITORY_ROOT / "events" / "ses" / "email_bounced_permanent.json")
    )
    sample[field] = value

    with pytest.raises(ValidationError):
        SesEvent.model_validate(sample)


def test_unknown_fields_ignored() -> None:
    # SES may add fields to its events at any time.
    sample = load_sample(REPOSITORY_ROOT / "events" / "ses" / "email_bounced_permanent.json")
    sample["detail"]["bounce"]["newField"] = {"added": "later"}
    sample["detail"]["mail"]["anotherField"] = 1

    assert SesEvent.model_validate(sample).detail.bounce is not None


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"source": "aws.ses", "detail-type": "Email Bounced"}',
        json.dumps({"source": "idsentry.signup", "detail-type": "Email.Confirmed", "detail": {}}),
    ],
)
def test_invalid_body_poisoned(body: str, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(PoisonMessageError):
        process_ses_event_record("msg-1", body)

    assert [record.getMessage() for record in caplog.records] == ["ses event invalid"]


def test_invalid_body_address_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    sample = load_sample(REPOSITORY_ROOT / "events" / "ses" / "email_bounced_permanent.json")
    del sample["detail"]["bounce"]

    with pytest.raises(PoisonMessageError) as raised:
        process_ses_event_record("msg-2", json.dumps(sample))

    assert raised.value.__cause__ is None
    assert "simulator.amazonses.com" not in caplog.text
