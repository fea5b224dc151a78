"""The `idsentry` CLI against the local stack: target, intake, reviews, DLQs, deliveries, errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

import infra.local.service as local_service_module
from idsentry.adapters.table import MainTable
from idsentry.services.ledger import STALE_PENDING_SECONDS, Ledger
from idsentry_cli import intake as intake_logic
from idsentry_cli.main import cli
from infra.local.service import LocalService
from infra.local.template import load_template
from tests.integration.conftest import IDENTITIES
from tests.integration.test_review import Harness as ReviewHarness

pytestmark = pytest.mark.integration

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
# The queues that redrive policies name as their dead-letter queue.
DLQ_COUNT = len(
    {
        json.dumps(resource["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for resource in TEMPLATE["Resources"].values()
        if "RedrivePolicy" in (resource.get("Properties") or {})
    }
)
BREACH = {
    "Name": "CliShop2026",
    "Title": "CLI Shop",
    "Domain": "shop.example.com",
    "BreachDate": "2026-10-01",
    "DataClasses": ["Names", "Phone numbers", "Email addresses"],
    "IsVerified": True,
}
PROVENANCE = {
    "source": "Test fixture written for this test; no real people",
    "legal_basis": "PIPL art. 13(7): processing publicly disclosed data within a reasonable scope",
    "approved_by": "operator-1",
    "approved_at": "2026-12-04T08:00:00+08:00",
}
ROWS = (
    "姓名,手机号,邮箱\n"
    "张三,13912345678,zhang@example.com\n"
    "李四,13812345678,li@example.com\n"
    "broken line without enough fields\n"
)
# A message body the DLQ tests look for in the CLI's output, which must never show it.
BODY_MARKER = "body-must-not-be-printed"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """A local stack whose state file is this module's own, so parallel runs keep theirs."""
    state_file = tmp_path_factory.mktemp("cli") / "stack.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_service_module, "STATE_FILE", state_file)
        with LocalService(port=0, identities_path=IDENTITIES, background=False) as started:
            yield started


@pytest.fixture
def state_file(service: LocalService) -> Path:
    path: Path = local_service_module.STATE_FILE
    assert path.is_file()
    return path


@pytest.fixture
def runner(state_file: Path) -> CliRunner:
    # A wide terminal, so that table cells with ids are not wrapped inside the id.
    return CliRunner(env={"IDSENTRY_LOCAL_STATE": str(state_file), "COLUMNS": "240"})


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, list(args), prog_name="idsentry")


def run_json(runner: CliRunner, *args: str) -> Any:
    result = run(runner, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def runtime(service: LocalService) -> Any:
    assert service.stack is not None
    return service.stack.runtime


def outputs(state_file: Path) -> dict[str, str]:
    document: dict[str, str] = json.loads(state_file.read_text(encoding="utf-8"))["outputs"]
    return document


def write_dataset(folder: Path, **manifest_changes: Any) -> tuple[Path, Path]:
    manifest: dict[str, Any] = {
        "breach": BREACH,
        "encoding": "gb18030",
        "format": "csv",
        "columns": {"姓名": "name", "手机号": "mobile", "邮箱": "email"},
        "provenance": PROVENANCE,
        **manifest_changes,
    }
    data_file = folder / "breach.csv"
    data_file.write_bytes(ROWS.encode("gb18030"))
    manifest_file = folder / "manifest.json"
    manifest_file.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return data_file, manifest_file


@pytest.fixture
def deliver_between_polls(service: LocalService, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deliver the queued messages where `intake upload` would wait for the next poll."""
    monkeypatch.setattr(
        intake_logic, "wait_for_next_poll", lambda _seconds: runtime(service).run_until_idle()
    )


def drain(service: LocalService, url: str) -> list[str]:
    """Receive and delete every message of a queue; return their bodies."""
    sqs = runtime(service).client("sqs")
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def depth(service: LocalService, url: str) -> int:
    """Count a queue's messages, those waiting and those received but not deleted."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = (
        runtime(service).client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)
    )["Attributes"]
    return sum(int(attributes[name]) for name in names)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------------------- target


def test_target_local(runner: CliRunner, service: LocalService) -> None:
    document = run_json(runner, "target")

    assert document["kind"] == "local"
    assert document["api_url"] == service.base_url
    assert isinstance(document["api_status"], int)
    assert document["account"] == "123456789012"
    assert document["intake_bucket"] == runtime(service).environment["INTAKE_BUCKET"]
    assert document["dead_letter_queues"] == DLQ_COUNT


def test_target_human_output(runner: CliRunner, service: LocalService) -> None:
    result = run(runner, "target")

    assert result.exit_code == 0, result.output
    assert "Target: the local stack" in result.stdout
    assert f"Admin API: {service.base_url} (responded with HTTP " in result.stdout


# ---------------------------------------------------------------------------- intake


def test_upload_follows_job_to_done(
    runner: CliRunner, service: LocalService, tmp_path: Path, deliver_between_polls: None
) -> None:
    data_file, manifest_file = write_dataset(tmp_path)

    result = run(
        runner,
        "intake",
        "upload",
        str(data_file),
        "--manifest",
        str(manifest_file),
        "--prefix",
        "incoming/cli-done",
    )

    assert result.exit_code == 0, result.output
    assert "uploaded breach.csv as s3://" in result.stdout
    assert "incoming/cli-done/data.csv" in result.stdout
    assert "done: breach CliShop2026, 3 rows read, 2 accepted, 1 rejected" in result.stdout
    assert "rows_rejected: wrong_field_count 1" in result.stdout
    assert "uploading breach.csv" in result.stderr


def test_upload_json_and_show(
    runner: CliRunner, service: LocalService, tmp_path: Path, deliver_between_polls: None
) -> None:
    data_file, manifest_file = write_dataset(tmp_path)

    document = run_json(
        runner,
        "intake",
        "upload",
        str(data_file),
        "--manifest",
        str(manifest_file),
        "--prefix",
        "incoming/cli-json",
    )
    job_id = document["upload"]["job_id"]
    shown = run_json(runner, "intake", "show", job_id)

    assert document["upload"]["manifest_key"] == "incoming/cli-json/manifest.json"
    assert document["upload"]["size"] == len(ROWS.encode("gb18030"))
    assert document["job"]["status"] == "done"
    assert (shown["job_id"], shown["status"]) == (job_id, "done")
    assert (shown["chunks_done"], shown["chunks_total"]) == (1, 1)
    assert shown["rows_accepted"] == 2


def test_upload_rejected_exits_1(
    runner: CliRunner, tmp_path: Path, deliver_between_polls: None
) -> None:
    data_file, manifest_file = write_dataset(tmp_path, encoding="utf-8")

    result = run(
        runner, "--json", "intake", "upload", str(data_file), "--manifest", str(manifest_file)
    )

    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["job"]["status"] == "rejected"
    assert document["job"]["reason"] == "encoding_mismatch"


def test_upload_no_follow(runner: CliRunner, service: LocalService, tmp_path: Path) -> None:
    data_file, manifest_file = write_dataset(tmp_path)

    document = run_json(
        runner,
        "intake",
        "upload",
        str(data_file),
        "--manifest",
        str(manifest_file),
        "--no-follow",
        "--prefix",
        "incoming/cli-no-follow",
    )
    runtime(service).run_until_idle()
    shown = run_json(runner, "intake", "show", document["upload"]["job_id"])

    assert document["job"] is None
    assert shown["status"] == "done"


def test_invalid_manifest_uploads_nothing(
    runner: CliRunner, service: LocalService, tmp_path: Path
) -> None:
    data_file, manifest_file = write_dataset(tmp_path)
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    del manifest["provenance"]
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    s3 = runtime(service).client("s3")
    bucket = runtime(service).environment["INTAKE_BUCKET"]

    result = run(
        runner,
        "intake",
        "upload",
        str(data_file),
        "--manifest",
        str(manifest_file),
        "--prefix",
        "incoming/cli-invalid",
    )

    assert result.exit_code == 2
    assert "provenance" in result.stderr
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="incoming/cli-invalid")
    assert listed.get("KeyCount", 0) == 0


def test_invalid_prefix_is_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    data_file, manifest_file = write_dataset(tmp_path)

    result = run(
        runner,
        "intake",
        "upload",
        str(data_file),
        "--manifest",
        str(manifest_file),
        "--prefix",
        "incoming/../elsewhere",
    )

    assert result.exit_code == 2
    assert "--prefix" in result.stderr


def test_show_unknown_job(runner: CliRunner) -> None:
    result = run(runner, "intake", "show", "ijob_" + "0" * 26)

    assert result.exit_code == 1
    assert "intake job ijob_00000000000000000000000000 not found" in result.stderr


def test_show_malformed_job_id(runner: CliRunner) -> None:
    result = run(runner, "intake", "show", "job-1")

    assert result.exit_code == 2
    assert "JOB_ID" in result.stderr


# ---------------------------------------------------------------------------- reviews


@pytest.fixture
def review_harness(service: LocalService) -> ReviewHarness:
    return ReviewHarness(service)


def test_reviews_list_and_decide(runner: CliRunner, review_harness: ReviewHarness) -> None:
    review_harness.add_breach("CliReview2026")
    first_subscriber, first_alert = review_harness.add_exposure("CliReview2026", ("mobile",))
    _, second_alert = review_harness.add_exposure("CliReview2026", ("email",))

    listed = run_json(runner, "reviews", "list", "--breach", "CliReview2026")
    table = run(runner, "reviews", "list")
    decided = run_json(
        runner,
        "reviews",
        "decide",
        "CliReview2026",
        "--dismiss",
        "--reason",
        "Only a shared mobile number matched.",
        "--alert",
        first_alert,
    )
    after = run_json(runner, "reviews", "list", "--breach", "CliReview2026")

    (group,) = listed["groups"]
    assert group["breach_name"] == "CliReview2026"
    assert {row["alert_id"] for row in group["exposures"]} == {first_alert, second_alert}
    assert table.exit_code == 0, table.output
    assert first_alert in table.stdout
    assert "mobile 139****5678" in table.stdout
    assert decided["decided"] == 1
    assert decided["results"] == [
        {
            "alert_id": first_alert,
            "subscriber_id": first_subscriber,
            "outcome": "dismissed",
            "status": "dismissed",
        }
    ]
    assert [row["alert_id"] for row in after["groups"][0]["exposures"]] == [second_alert]


def test_decide_human_output(runner: CliRunner, review_harness: ReviewHarness) -> None:
    review_harness.add_breach("CliConfirm2026")
    _, alert_id = review_harness.add_exposure("CliConfirm2026")

    result = run(
        runner,
        "reviews",
        "decide",
        "CliConfirm2026",
        "--confirm",
        "--reason",
        "ID number and mobile both matched.",
    )

    assert result.exit_code == 0, result.output
    assert "confirmed 1 alerts of CliConfirm2026" in result.stdout
    assert alert_id in result.stdout


def test_decide_needs_one_decision(runner: CliRunner) -> None:
    neither = run(runner, "reviews", "decide", "CliShop2026", "--reason", "why")
    both = run(
        runner, "reviews", "decide", "CliShop2026", "--confirm", "--dismiss", "--reason", "why"
    )

    assert neither.exit_code == 2
    assert both.exit_code == 2
    assert "exactly one of --confirm and --dismiss" in neither.stderr


def test_decide_invalid_alert_names_option(
    runner: CliRunner, review_harness: ReviewHarness
) -> None:
    review_harness.add_breach("CliInvalid2026")

    result = run(
        runner,
        "reviews",
        "decide",
        "CliInvalid2026",
        "--dismiss",
        "--reason",
        "why",
        "--alert",
        "not-an-alert",
    )

    assert result.exit_code == 2
    assert "--alert" in result.stderr
    assert "invalid alert_ids" in result.stderr


def test_reviews_unknown_breach(runner: CliRunner) -> None:
    result = run(runner, "reviews", "list", "--breach", "NoSuchBreach2026")

    assert result.exit_code == 1
    assert "breach NoSuchBreach2026 not found" in result.stderr


# ---------------------------------------------------------------------------- DLQs


def test_dlq_list_shows_every_queue(
    runner: CliRunner, service: LocalService, state_file: Path
) -> None:
    dlq_url = outputs(state_file)["NotificationDLQUrl"]
    drain(service, dlq_url)
    runtime(service).client("sqs").send_message(QueueUrl=dlq_url, MessageBody=BODY_MARKER)

    document = run_json(runner, "dlq", "list")
    table = run(runner, "dlq", "list")

    queues = {queue["name"]: queue for queue in document["queues"]}
    assert len(queues) == DLQ_COUNT
    assert queues["idsentry-local-notifications-dlq"]["messages"] == 1
    assert queues["idsentry-local-notifications-dlq"]["sources"] == ["idsentry-local-notifications"]
    assert queues["idsentry-local-breach-chunks-dlq"]["sources"] == ["idsentry-local-breach-chunks"]
    assert all(len(queue["sources"]) == 1 for queue in queues.values())
    assert "idsentry-local-ses-events-dlq" in table.stdout
    assert BODY_MARKER not in table.output
    drain(service, dlq_url)


def test_dlq_replay_moves_messages_back(
    runner: CliRunner, service: LocalService, state_file: Path
) -> None:
    dlq_url = outputs(state_file)["NotificationDLQUrl"]
    source_url = outputs(state_file)["NotificationQueueUrl"]
    drain(service, dlq_url)
    drain(service, source_url)
    sqs = runtime(service).client("sqs")
    for number in range(3):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=f"{BODY_MARKER}-{number}")

    dry_run = run(runner, "dlq", "replay", "NotificationDLQ", "--dry-run")
    depth_after_dry_run = depth(service, dlq_url)
    partial = run(
        runner, "--json", "dlq", "replay", "idsentry-local-notifications-dlq", "--max", "2"
    )
    depth_after_partial = depth(service, dlq_url)
    rest = run(runner, "dlq", "replay", "idsentry-local-notifications-dlq")

    assert dry_run.exit_code == 0, dry_run.output
    assert "would move up to 3 of 3 messages" in dry_run.stdout
    assert depth_after_dry_run == 3
    assert partial.exit_code == 0, partial.output
    document = json.loads(partial.stdout)
    assert (document["moved"], len(document["moved_message_ids"])) == (2, 2)
    assert document["source"] == "idsentry-local-notifications"
    assert depth_after_partial == 1
    assert rest.exit_code == 0, rest.output
    assert "moved 1 messages from idsentry-local-notifications-dlq" in rest.stdout
    assert depth(service, dlq_url) == 0
    assert sorted(drain(service, source_url)) == [f"{BODY_MARKER}-{n}" for n in range(3)]
    for result in (dry_run, partial, rest):
        assert BODY_MARKER not in result.output


def test_dlq_replay_unknown_queue(runner: CliRunner) -> None:
    result = run(runner, "dlq", "replay", "no-such-dlq")

    assert result.exit_code == 2
    assert "idsentry-local-notifications-dlq" in result.stderr


# ---------------------------------------------------------------------------- deliveries


def test_deliveries_unknown_lists_entry(runner: CliRunner, service: LocalService) -> None:
    table = MainTable(
        runtime(service).environment["TABLE_NAME"], runtime(service).client("dynamodb")
    )
    now = [1_796_000_000]
    ledger = Ledger(table, lambda: now[0])

    def crash() -> str:
        raise RuntimeError("the process stopped after sending")

    with pytest.raises(RuntimeError):
        ledger.deliver("test:cli-support", "sms", "sbr_cli_support", crash)
    now[0] += STALE_PENDING_SECONDS + 1
    ledger.deliver("test:cli-support", "sms", "sbr_cli_support", lambda: "never")

    document = run_json(runner, "deliveries", "unknown")
    human = run(runner, "deliveries", "unknown")

    entry = next(e for e in document["deliveries"] if e["message_key"] == "test:cli-support")
    assert (entry["channel"], entry["subject_id"]) == ("sms", "sbr_cli_support")
    assert "test:cli-support" in human.stdout


# ---------------------------------------------------------------------------- unreachable


def test_missing_state_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--state-file", str(tmp_path / "stack.json"), "dlq", "list"], prog_name="idsentry"
    )

    assert result.exit_code == 1
    assert "no local stack" in result.stderr
    assert "make run" in result.stderr


def test_stopped_local_stack(tmp_path: Path, state_file: Path) -> None:
    stale = json.loads(state_file.read_text(encoding="utf-8"))
    closed = f"http://127.0.0.1:{free_port()}"
    stale.update({"base_url": closed, "aws_endpoint_url": closed})
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(stale), encoding="utf-8")

    dlq_result = CliRunner().invoke(cli, ["--state-file", str(path), "dlq", "list"])
    api_result = CliRunner().invoke(cli, ["--state-file", str(path), "deliveries", "unknown"])

    for result in (dlq_result, api_result):
        assert result.exit_code == 1, result.output
        assert f"cannot connect to the local stack at {closed}" in result.stderr
        assert "start `make run` again" in result.stderr


@pytest.fixture
def aws_environment(service: LocalService, tmp_path: Path) -> dict[str, str | None]:
    """Environment of a deployed target whose AWS endpoint is this module's moto server.

    None unsets a variable while the CLI runs.
    """
    assert service.stack is not None
    return {
        "AWS_ENDPOINT_URL": service.stack.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        # Keeps botocore from asking an instance metadata endpoint for credentials.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PROFILE": None,
        "AWS_REGION": None,
        "AWS_DEFAULT_REGION": None,
        "IDSENTRY_STACK": None,
    }


def test_deployed_stack_not_found(aws_environment: dict[str, str | None]) -> None:
    result = CliRunner(env=aws_environment).invoke(
        cli, ["--stack", "idsentry-missing", "--region", "us-east-1", "target"]
    )

    assert result.exit_code == 1, result.output
    assert "stack idsentry-missing not found in us-east-1" in result.stderr


def test_deployed_without_credentials(aws_environment: dict[str, str | None]) -> None:
    environment = {
        **aws_environment,
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
    }

    result = CliRunner(env=environment).invoke(
        cli, ["--stack", "idsentry-prod", "--region", "us-east-1", "dlq", "list"]
    )

    assert result.exit_code == 1, result.output
    assert "no AWS credentials found" in result.stderr


def test_deployed_without_region(aws_environment: dict[str, str | None]) -> None:
    result = CliRunner(env=aws_environment).invoke(cli, ["--stack", "idsentry-prod", "target"])

    assert result.exit_code == 1, result.output
    assert "no AWS region for stack idsentry-prod" in result.stderr


def test_deployed_stack_outputs(
    service: LocalService, state_file: Path, aws_environment: dict[str, str | None]
) -> None:
    """A stack in moto's CloudFormation whose outputs name the local stack's resources."""
    local = outputs(state_file)
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "ApiUrl": {"Value": service.base_url},
            "IntakeBucketName": {"Value": local["IntakeBucketName"]},
            **{name: {"Value": url} for name, url in local.items() if name.endswith("DLQUrl")},
        },
    }
    assert service.stack is not None
    boto3.client(
        "cloudformation",
        endpoint_url=service.stack.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_stack(StackName="idsentry-cli-test", TemplateBody=json.dumps(template))
    deployed = CliRunner(env=aws_environment)
    options = ["--stack", "idsentry-cli-test", "--region", "us-east-1"]

    target = deployed.invoke(cli, [*options, "--json", "target"])
    queues = deployed.invoke(cli, [*options, "--json", "dlq", "list"])
    # The local HTTP API accepts its admin token, not SigV4, so a signed request is rejected.
    rejected = deployed.invoke(cli, [*options, "deliveries", "unknown"])
    local_wins = deployed.invoke(
        cli,
        ["--local", "--state-file", str(state_file), "--json", "target"],
        env={"IDSENTRY_STACK": "idsentry-cli-test"},
    )

    assert target.exit_code == 0, target.output
    document = json.loads(target.stdout)
    assert (document["kind"], document["stack_name"]) == ("deployed", "idsentry-cli-test")
    assert document["stack_status"] == "CREATE_COMPLETE"
    assert document["dead_letter_queues"] == DLQ_COUNT
    assert queues.exit_code == 0, queues.output
    assert len(json.loads(queues.stdout)["queues"]) == DLQ_COUNT
    assert rejected.exit_code == 1
    assert "rejected with HTTP 401" in rejected.stderr
    assert local_wins.exit_code == 0, local_wins.output
    assert json.loads(local_wins.stdout)["kind"] == "local"


# ---------------------------------------------------------------------------- console script


def test_console_script_installed(state_file: Path) -> None:
    script = Path(sys.executable).with_name("idsentry")

    completed = subprocess.run(  # noqa: S603 - the virtualenv's own console script
        [str(script), "--state-file", str(state_file), "--json", "dlq", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    usage = subprocess.run(  # noqa: S603
        [str(script), "--local", "--stack", "idsentry-prod", "target"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert len(json.loads(completed.stdout)["queues"]) == DLQ_COUNT
    assert usage.returncode == 2
    assert "either --local or --stack" in usage.stderr
