"""Unit tests of the `idsentry` CLI: DLQ outputs, queue lookup, prefixes, signing, polling, usage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.credentials import Credentials
from click.testing import CliRunner

from idsentry_cli import intake as intake_logic
from idsentry_cli.api import SigV4Auth
from idsentry_cli.dlq import (
    DeadLetterQueue,
    QueueNotFoundError,
    ReplayError,
    choose_source,
    dead_letter_queues,
    find_dead_letter_queue,
)
from idsentry_cli.main import cli
from idsentry_cli.output import text
from infra.local.template import load_template
from tests.unit.test_template_rules import TEMPLATE_PATH

pytestmark = pytest.mark.unit

QUEUE_BASE = "https://sqs.eu-central-1.amazonaws.com/123456789012"
OUTPUTS = {
    "ApiUrl": "https://abc123.execute-api.eu-central-1.amazonaws.com",
    "NotificationQueueUrl": f"{QUEUE_BASE}/idsentry-prod-notifications",
    "NotificationDLQUrl": f"{QUEUE_BASE}/idsentry-prod-notifications-dlq",
    "RiskDLQUrl": f"{QUEUE_BASE}/idsentry-prod-risk-dlq",
}


def _logical_id(reference: Any) -> str | None:
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        attribute = reference["Fn::GetAtt"]
        parts = attribute.split(".") if isinstance(attribute, str) else attribute
        return str(parts[0])
    return None


def test_template_outputs_every_dlq() -> None:
    template = load_template(TEMPLATE_PATH)
    resources = template["Resources"]
    outputs = template["Outputs"]
    targets = {
        _logical_id(resource["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for resource in resources.values()
        if resource.get("Type") == "AWS::SQS::Queue"
        and "RedrivePolicy" in (resource.get("Properties") or {})
    }

    assert targets, "the template has no queue with a dead-letter queue"
    for logical_id in sorted(str(target) for target in targets):
        output = outputs.get(f"{logical_id}Url")
        assert output is not None, f"no output {logical_id}Url for dead-letter queue {logical_id}"
        assert output["Value"] == {"Ref": logical_id}
        assert f"{logical_id}Url".endswith("DLQUrl"), f"{logical_id} does not end in DLQ"


def test_template_dlq_outputs_are_dlqs() -> None:
    template = load_template(TEMPLATE_PATH)
    resources = template["Resources"]
    targets = {
        _logical_id(resource["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for resource in resources.values()
        if "RedrivePolicy" in (resource.get("Properties") or {})
    }

    for name, output in template["Outputs"].items():
        if name.endswith("DLQUrl"):
            assert output["Value"]["Ref"] in targets, f"{name} is not a dead-letter queue"


def test_dead_letter_queues_from_outputs() -> None:
    queues = dead_letter_queues(OUTPUTS)

    assert [queue.name for queue in queues] == [
        "idsentry-prod-notifications-dlq",
        "idsentry-prod-risk-dlq",
    ]
    assert queues[0].logical_id == "NotificationDLQ"


@pytest.mark.parametrize(
    "reference", ["idsentry-prod-risk-dlq", "RiskDLQ", "RiskDLQUrl"], ids=["name", "id", "output"]
)
def test_find_queue_by_reference(reference: str) -> None:
    found = find_dead_letter_queue(dead_letter_queues(OUTPUTS), reference)

    assert found.output == "RiskDLQUrl"


def test_find_queue_unknown_lists_names() -> None:
    with pytest.raises(QueueNotFoundError) as raised:
        find_dead_letter_queue(dead_letter_queues(OUTPUTS), "idsentry-prod-risk")

    assert "idsentry-prod-notifications-dlq, idsentry-prod-risk-dlq" in str(raised.value)


def test_choose_source_cases() -> None:
    dlq = DeadLetterQueue("NotificationDLQUrl", OUTPUTS["NotificationDLQUrl"])
    source = OUTPUTS["NotificationQueueUrl"]
    other = f"{QUEUE_BASE}/idsentry-prod-other"

    assert choose_source(dlq, [source], None) == source
    assert choose_source(dlq, [source, other], "idsentry-prod-other") == other
    with pytest.raises(ReplayError, match="pick one with --to"):
        choose_source(dlq, [source, other], None)
    with pytest.raises(ReplayError, match="no queue names"):
        choose_source(dlq, [], None)
    with pytest.raises(ReplayError, match="does not send failures"):
        choose_source(dlq, [source], "idsentry-prod-risk")


def test_choose_source_rejects_fifo() -> None:
    dlq = DeadLetterQueue("JobsDLQUrl", f"{QUEUE_BASE}/jobs-dlq.fifo")

    with pytest.raises(ReplayError, match="FIFO"):
        choose_source(dlq, [f"{QUEUE_BASE}/jobs.fifo"], None)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("incoming/shop-2026", "incoming/shop-2026"),
        ("/incoming/shop_2026/", "incoming/shop_2026"),
        ("shop.v2", "shop.v2"),
    ],
)
def test_prefix_normalized(prefix: str, expected: str) -> None:
    assert intake_logic.normalize_prefix(prefix) == expected


@pytest.mark.parametrize(
    "prefix", ["", "/", "incoming//shop", "incoming/../other", "incoming/商店", "a b"]
)
def test_prefix_rejected(prefix: str) -> None:
    with pytest.raises(intake_logic.PrefixError):
        intake_logic.normalize_prefix(prefix)


def test_sigv4_signs_for_execute_api() -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret", "session-token")
    request = requests.Request(
        "POST",
        "https://abc123.execute-api.eu-central-1.amazonaws.com/v1/admin/reviews/Shop/decision",
        json={"decision": "dismiss", "reason": "why"},
    ).prepare()

    signed = SigV4Auth(credentials, "eu-central-1")(request)

    authorization = signed.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-central-1/execute-api/aws4_request" in authorization
    signed_headers = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(signed_headers)
    assert signed.headers["X-Amz-Security-Token"] == "session-token"


def test_follow_backs_off_while_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    running = {"status": "running", "chunks_done": 0}
    progressed = {"status": "running", "chunks_done": 1}
    reads: list[dict[str, Any] | None] = [
        None,
        running,
        running,
        running,
        running,
        running,
        running,
        running,
        progressed,
        {"status": "done"},
    ]
    waits: list[float] = []
    monkeypatch.setattr(intake_logic, "wait_for_next_poll", waits.append)
    seen: list[dict[str, Any]] = []

    job = intake_logic.follow_job(lambda: reads.pop(0), seen.append, timeout_seconds=3600)

    assert job == {"status": "done"}
    assert len(seen) == 9
    assert waits[1] == intake_logic.POLL_SECONDS
    assert waits[2] > waits[1]
    assert max(waits) == intake_logic.MAX_POLL_SECONDS
    assert waits[-1] == intake_logic.POLL_SECONDS


def test_follow_returns_last_job_at_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake_logic, "wait_for_next_poll", lambda _seconds: None)

    job = intake_logic.follow_job(lambda: {"status": "running"}, lambda _job: None, 0)

    assert job == {"status": "running"}


def test_text_formats_epoch_fields() -> None:
    assert text(1796437188, "created_at") == "2026-12-05T02:19:48+00:00"
    assert text(1796437188, "rows_read") == "1796437188"
    assert text(["mobile", "email"]) == "mobile, email"
    assert text(None) == ""


# ---------------------------------------------------------------------------- usage


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Any:
    return CliRunner(env=env).invoke(cli, list(args), prog_name="idsentry")


def test_local_and_stack_conflict() -> None:
    result = invoke("--local", "--stack", "idsentry-prod", "target")

    assert result.exit_code == 2
    assert "either --local or --stack" in result.stderr


def test_region_needs_stack(tmp_path: Path) -> None:
    result = invoke(
        "--state-file", str(tmp_path / "stack.json"), "--region", "eu-central-1", "target"
    )

    assert result.exit_code == 2
    assert "add --stack NAME" in result.stderr


def test_unknown_command_is_usage_error() -> None:
    result = invoke("dlq", "purge")

    assert result.exit_code == 2


def test_state_file_not_json(tmp_path: Path) -> None:
    state_file = tmp_path / "stack.json"
    state_file.write_text("{not json", encoding="utf-8")

    result = invoke("--state-file", str(state_file), "dlq", "list")

    assert result.exit_code == 1
    assert "is not a state file of `make run`" in result.stderr


def test_state_file_missing_field(tmp_path: Path) -> None:
    state_file = tmp_path / "stack.json"
    state_file.write_text(json.dumps({"base_url": "http://127.0.0.1:1"}), encoding="utf-8")

    result = invoke("--state-file", str(state_file), "dlq", "list")

    assert result.exit_code == 1
    assert "has no field aws_endpoint_url" in result.stderr


def test_local_output_missing(tmp_path: Path) -> None:
    state_file = tmp_path / "stack.json"
    state = {
        "base_url": "http://127.0.0.1:1",
        "aws_endpoint_url": "http://127.0.0.1:1",
        "aws_region": "us-east-1",
        "admin": {"token_header": "x-local-admin-token", "token": "t"},
    }
    state_file.write_text(json.dumps(state), encoding="utf-8")
    data_file = tmp_path / "data.csv"
    data_file.write_text("手机号\n13912345678\n", encoding="utf-8")
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(
        json.dumps(
            {
                "breach": {
                    "Name": "UnitShop2026",
                    "Title": "Unit Shop",
                    "BreachDate": "2026-10-01",
                    "DataClasses": ["Phone numbers"],
                    "IsVerified": True,
                },
                "encoding": "utf-8",
                "format": "csv",
                "columns": {"手机号": "mobile"},
                "provenance": {
                    "source": "Unit test fixture; no real people",
                    "legal_basis": "PIPL art. 13(7)",
                    "approved_by": "operator-1",
                    "approved_at": "2026-12-04T08:00:00+08:00",
                },
            }
        ),
        encoding="utf-8",
    )

    result = invoke(
        "--state-file",
        str(state_file),
        "intake",
        "upload",
        str(data_file),
        "--manifest",
        str(manifest_file),
    )

    assert result.exit_code == 1, result.output
    assert "has no output IntakeBucketName: restart `make run`" in result.stderr
