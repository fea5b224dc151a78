"""`idsentry reports run` and `idsentry dossier` against the local stack.

Reports are queued for one subscriber and for every entitled one, followed with --wait and
repeated without a second render or e-mail. A dossier is made, downloaded and audited.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from pypdf import PdfReader

import infra.local.service as local_service_module
from idsentry.adapters.dynamo import from_item
from idsentry.object_keys import report_prefix
from idsentry.routes import admin_routes
from idsentry.services.report_ids import report_id_for
from idsentry.services.subscriber_reports import queue_monthly_reports
from idsentry_cli import reports as reports_logic
from idsentry_cli.main import cli
from infra.local.service import ADMIN_TOKEN_HEADER, LocalService
from tests.integration.conftest import IDENTITIES, MovableClock
from tests.integration.test_account_api import _alert
from tests.integration.test_breach_intake import BREACH
from tests.integration.test_reports import SIGNED_UP_EARLY, _entitle, _signed_up
from tests.integration.test_sign_in import SignInHarness
from tests.integration.test_signup_service import PEOPLE

pytestmark = pytest.mark.integration

# Months that have ended whenever these tests run after 2026-11; the stack's clock is real.
ONE_MONTH = "2026-10"
ALL_MONTH = "2026-11"
# Alice signs up on 10 November 2026 in China: after ONE_MONTH ended, before ALL_MONTH did.
ALICE_SIGNED_UP = datetime(2026, 11, 9, 16, 0, tzinfo=UTC)
LOCAL_ADMIN_ARN = "arn:aws:iam::123456789012:user/local-admin"
UNKNOWN_SUBSCRIBER = "sbr_01M91NEVERS1GNEDVP00000000"
REASON = "The subscriber asked for a dossier for a police report (support ticket 4711)."


@dataclass
class Stack:
    """The local stack with three subscribers: 王小明 and Alice entitled, 陈静 not.

    王小明 signed up before both months, Alice during ALL_MONTH.
    """

    service: LocalService
    harness: SignInHarness
    state_file: Path
    wang: str
    alice: str
    chen: str

    def run_queues(self) -> None:
        assert self.service.stack is not None
        # The in-process handlers print metric lines to stdout, which is the CLI's output
        # while a command runs.
        with contextlib.redirect_stdout(io.StringIO()):
            self.service.stack.runtime.run_until_idle()

    def report_emails(self, person: str) -> list[dict[str, Any]]:
        return [
            email
            for email in self.service.sent_emails()
            if f"{person}@example.com" in email["to"]
            and "account/#reports" in (email["text"] or email["body"] or "")
        ]

    def report_objects(self, subscriber: str) -> list[str]:
        assert self.service.stack is not None
        runtime = self.service.stack.runtime
        listed = runtime.client("s3").list_object_versions(
            Bucket=runtime.environment["REPORTS_BUCKET"], Prefix=report_prefix(subscriber)
        )
        return sorted(version["Key"] for version in listed.get("Versions", []))

    def audit_records(self, subject: str) -> list[dict[str, Any]]:
        assert self.service.stack is not None
        runtime = self.service.stack.runtime
        response = runtime.client("dynamodb").query(
            TableName=runtime.environment["AUDIT_TABLE_NAME"],
            KeyConditionExpression="pk = :subject",
            ExpressionAttributeValues={":subject": {"S": subject}},
            ConsistentRead=True,
        )
        return [from_item(item) for item in response["Items"]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_file = tmp_path_factory.mktemp("cli-reports") / "stack.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_service_module, "STATE_FILE", state_file)
        with LocalService(port=0, identities_path=IDENTITIES, background=False) as service:
            harness = SignInHarness(service, MovableClock())
            wang = harness.subscriber("wang")
            alice = harness.subscriber("alice")
            chen = harness.subscriber("chen")
            for subscriber in (wang, alice):
                _entitle(harness, subscriber)
            _signed_up(harness, wang, SIGNED_UP_EARLY)
            _signed_up(harness, alice, ALICE_SIGNED_UP)
            _alert(harness, wang, BREACH)
            yield Stack(service, harness, state_file, wang, alice, chen)


@pytest.fixture
def runner(stack: Stack) -> CliRunner:
    # A wide terminal, so that table cells with ids are not wrapped inside the id.
    return CliRunner(env={"IDSENTRY_LOCAL_STATE": str(stack.state_file), "COLUMNS": "240"})


@pytest.fixture
def deliver_between_polls(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deliver the queued jobs where `idsentry reports run --wait` would sleep."""
    monkeypatch.setattr(reports_logic, "wait_for_next_poll", lambda _seconds: stack.run_queues())


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, list(args), prog_name="idsentry")


def pdf_text(path: Path) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(path.read_bytes())).pages)


# ---------------------------------------------------------------------------- reports run


def test_run_one_subscriber_waits(
    runner: CliRunner, stack: Stack, deliver_between_polls: None
) -> None:
    result = run(
        runner, "reports", "run", "--subscriber", stack.wang, "--month", ONE_MONTH, "--wait"
    )

    report_id = report_id_for(stack.wang, "monthly", ONE_MONTH)
    assert result.exit_code == 0, result.output
    assert f"queued the {ONE_MONTH} report of {stack.wang}" in result.stdout
    assert report_id in result.stdout
    assert "announced" in result.stdout
    assert "1 of 1 reports announced" in result.stderr
    assert len(stack.report_emails("wang")) == 1
    assert stack.report_emails("alice") == []
    assert len(stack.report_objects(stack.wang)) == 2


def test_run_one_subscriber_again(runner: CliRunner, stack: Stack) -> None:
    objects_before = stack.report_objects(stack.wang)

    result = run(
        runner, "--json", "reports", "run", "--subscriber", stack.wang, "--month", ONE_MONTH
    )
    stack.run_queues()
    document = json.loads(result.stdout)

    assert result.exit_code == 0, result.output
    assert document["queued"] == 0
    assert document["already_finished"] is True
    assert document["reports"][0]["state"] == "announced"
    assert len(stack.report_emails("wang")) == 1
    assert stack.report_objects(stack.wang) == objects_before


def test_run_all_entitled_counts_apart(
    runner: CliRunner, stack: Stack, deliver_between_polls: None
) -> None:
    # 王小明's report of ONE_MONTH was announced above, and Alice signed up after it ended.
    emails_before = len(stack.service.sent_emails())

    result = run(runner, "reports", "run", "--month", ONE_MONTH, "--wait")
    as_json = run(runner, "--json", "reports", "run", "--month", ONE_MONTH)

    assert result.exit_code == 0, result.output
    assert f"queued 0 reports of {ONE_MONTH} for every entitled subscriber" in result.stdout
    assert "1 report already announced: not queued again" in result.stdout
    assert "1 subscriber skipped" in result.stdout
    assert f"account created after {ONE_MONTH} ended" in result.stdout
    queued_part, rest = result.stdout.split("Already announced")
    announced_part, skipped_part = rest.split("Skipped")
    assert stack.wang not in queued_part
    assert stack.wang in announced_part
    assert stack.alice in skipped_part
    assert len(stack.service.sent_emails()) == emails_before
    assert stack.report_objects(stack.alice) == []
    # The run over every entitled subscriber finished with the first request.
    assert json.loads(as_json.stdout)["already_finished"] is True


def test_run_one_subscriber_signed_up_later(runner: CliRunner, stack: Stack) -> None:
    result = run(runner, "reports", "run", "--subscriber", stack.alice, "--month", ONE_MONTH)
    stack.run_queues()

    assert result.exit_code == 0, result.output
    assert (
        f"skipped the {ONE_MONTH} report of {stack.alice}: account created after "
        f"{ONE_MONTH} ended, so nothing queued"
    ) in result.stdout
    assert stack.report_objects(stack.alice) == []
    assert stack.report_emails("alice") == []


def test_run_all_entitled_waits(
    runner: CliRunner, stack: Stack, deliver_between_polls: None
) -> None:
    wang_emails = len(stack.report_emails("wang"))

    result = run(runner, "--json", "reports", "run", "--month", ALL_MONTH, "--wait")
    document = json.loads(result.stdout)

    assert result.exit_code == 0, result.output
    assert document["scope"] == "entitled"
    assert document["queued"] == 2
    assert document["finished"] is True
    assert sorted(
        (entry["subscriber_id"], entry["report_id"]) for entry in document["reports"]
    ) == (
        sorted(
            (subscriber, report_id_for(subscriber, "monthly", ALL_MONTH))
            for subscriber in (stack.wang, stack.alice)
        )
    )
    assert {entry["state"] for entry in document["reports"]} == {"announced"}
    assert stack.chen not in result.stdout
    assert len(stack.report_emails("wang")) == wang_emails + 1
    assert len(stack.report_emails("alice")) == 1


def test_run_all_entitled_again(runner: CliRunner, stack: Stack) -> None:
    emails_before = len(stack.service.sent_emails())

    result = run(runner, "reports", "run", "--month", ALL_MONTH)
    stack.run_queues()

    assert result.exit_code == 0, result.output
    assert "had finished before: nothing queued" in result.stdout
    assert len(stack.service.sent_emails()) == emails_before


def test_run_output_has_no_personal_data(runner: CliRunner, stack: Stack) -> None:
    result = run(runner, "reports", "run", "--subscriber", stack.wang, "--month", ONE_MONTH)

    assert result.exit_code == 0, result.output
    for name, id_number, mobile in PEOPLE.values():
        assert name not in result.output
        assert id_number not in result.output
        assert mobile[3:] not in result.output


def test_run_records_audit(stack: Stack) -> None:
    one = stack.audit_records(f"SUBSCRIBER#{stack.wang}")
    everyone = stack.audit_records(f"REPORTRUN#{ALL_MONTH}")

    requests_of_one = [record for record in one if record["action"] == "report.request"]
    assert [record["outcome"] for record in requests_of_one][:2] == ["queued", "no_change"]
    assert [record["outcome"] for record in everyone] == ["queued", "no_change"]
    assert {record["actor"] for record in one + everyone} == {LOCAL_ADMIN_ARN}


def test_run_unknown_subscriber(runner: CliRunner) -> None:
    result = run(runner, "reports", "run", "--subscriber", UNKNOWN_SUBSCRIBER)

    assert result.exit_code == 1
    assert f"subscriber_id {UNKNOWN_SUBSCRIBER} not found" in result.output
    assert "--subscriber" in result.output


def test_run_subscriber_not_entitled(runner: CliRunner, stack: Stack) -> None:
    result = run(runner, "reports", "run", "--subscriber", stack.chen)

    assert result.exit_code == 1
    assert "is not entitled" in result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--month", "2026-13"], "--month"),
        (["--month", "2099-01"], "--month"),
        (["--subscriber", "not-an-id"], "--subscriber"),
    ],
)
def test_run_invalid_option(runner: CliRunner, args: list[str], option: str) -> None:
    result = run(runner, "reports", "run", *args)

    assert result.exit_code == 2, result.output
    assert option in result.output


# ---------------------------------------------------------------------------- dossier


@pytest.fixture(scope="module")
def police_dossier(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Make 王小明's dossier for the police in Chinese with the CLI; return its JSON output."""
    folder = tmp_path_factory.mktemp("dossier")
    runner = CliRunner(env={"IDSENTRY_LOCAL_STATE": str(stack.state_file)})
    result = runner.invoke(
        cli,
        [
            *("--json", "dossier", stack.wang, "--reason", REASON),
            *("--audience", "police", "--locale", "zh-CN", "--out", str(folder)),
        ],
        prog_name="idsentry",
    )
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_dossier_downloaded_in_chinese(stack: Stack, police_dossier: dict[str, Any]) -> None:
    written = Path(police_dossier["downloaded"])
    text = pdf_text(written)
    masked = stack.harness.table.get(f"SUB#{stack.wang}", "IDENT#id_number")

    assert written.name == f"idsentry-dossier-{police_dossier['reference']}.pdf"
    assert "个人信息泄露情况说明材料" in text
    assert "供向公安机关报案使用" in text
    assert police_dossier["reference"] in text
    assert masked is not None and masked["masked"] in text
    assert PEOPLE["wang"][1] not in text
    assert "url" not in police_dossier
    assert police_dossier["locale"] == "zh-CN"


def test_dossier_audited(stack: Stack, police_dossier: dict[str, Any]) -> None:
    records = [
        record
        for record in stack.audit_records(f"SUBSCRIBER#{stack.wang}")
        if record["action"] == "subscriber.dossier"
    ]

    assert len(records) == 1
    record = records[0]
    assert record["actor"] == LOCAL_ADMIN_ARN
    assert record["reason"] == REASON
    assert record["object_id"] == police_dossier["dossier_id"]
    assert record["outcome"] == "created"
    assert record["request_id"]
    item = stack.harness.table.get(f"SUB#{stack.wang}", f"DOSSIER#{police_dossier['dossier_id']}")
    assert item is not None
    assert item["locale"] == "zh-CN"


def test_dossier_in_english(runner: CliRunner, stack: Stack, tmp_path: Path) -> None:
    result = run(
        runner, "dossier", stack.wang, "--reason", REASON, "--locale", "en", "--out", str(tmp_path)
    )

    (written,) = tmp_path.iterdir()
    assert result.exit_code == 0, result.output
    assert f"of {stack.wang}, for general, in en" in result.stdout
    assert "Incident dossier" in pdf_text(written)


def test_dossier_unknown_subscriber(runner: CliRunner, stack: Stack, tmp_path: Path) -> None:
    result = run(runner, "dossier", UNKNOWN_SUBSCRIBER, "--reason", REASON, "--out", str(tmp_path))
    response = requests.post(
        f"{stack.service.base_url}/v1/admin/subscribers/{UNKNOWN_SUBSCRIBER}/dossier",
        json={"reason": REASON},
        headers={ADMIN_TOKEN_HEADER: stack.service.admin_token},
        timeout=30,
    )

    assert result.exit_code == 1
    assert f"subscriber {UNKNOWN_SUBSCRIBER} not found (SUBSCRIBER_ID)" in result.output
    assert list(tmp_path.iterdir()) == []
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "subscriber_id"
    assert stack.audit_records(f"SUBSCRIBER#{UNKNOWN_SUBSCRIBER}") == []


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--breach", "NoSuchLeak2026"], "--breach"),
        (["--reason", "  "], "--reason"),
        (["--locale", "fr"], "--locale"),
    ],
)
def test_dossier_invalid_option(
    runner: CliRunner, stack: Stack, tmp_path: Path, args: list[str], option: str
) -> None:
    reason = [] if "--reason" in args else ["--reason", REASON]
    result = run(runner, "dossier", stack.wang, *reason, *args, "--out", str(tmp_path))

    assert result.exit_code == 2, result.output
    assert option in result.output
    assert list(tmp_path.iterdir()) == []


def test_dossier_needs_reason(runner: CliRunner, stack: Stack) -> None:
    result = run(runner, "dossier", stack.wang)

    assert result.exit_code == 2
    assert "--reason" in result.output


def test_dossier_invalid_subscriber_id(runner: CliRunner) -> None:
    result = run(runner, "dossier", "sbr_short", "--reason", REASON)

    assert result.exit_code == 2
    assert "SUBSCRIBER_ID" in result.output


# ---------------------------------------------------------------------------- credentials


def test_wrong_credentials_refused(stack: Stack, tmp_path: Path) -> None:
    state = json.loads(stack.state_file.read_text(encoding="utf-8"))
    state["admin"]["token"] = "not-the-token"
    wrong_state = tmp_path / "stack.json"
    wrong_state.write_text(json.dumps(state), encoding="utf-8")
    runner = CliRunner(env={"IDSENTRY_LOCAL_STATE": str(wrong_state)})
    audited_before = len(stack.audit_records(f"SUBSCRIBER#{stack.wang}"))

    dossier = runner.invoke(
        cli, ["dossier", stack.wang, "--reason", REASON, "--out", str(tmp_path)]
    )
    reports = runner.invoke(cli, ["reports", "run", "--subscriber", stack.wang])

    assert dossier.exit_code == 1
    assert "rejected with HTTP 401" in dossier.output
    assert "AnalystRoleArn for reviews, deliveries and dossiers" in dossier.output
    assert reports.exit_code == 1
    assert "OperatorRoleArn for intake, breaches and reports" in reports.output
    assert not list(tmp_path.glob("*.pdf"))
    assert len(stack.audit_records(f"SUBSCRIBER#{stack.wang}")) == audited_before


def test_dossier_without_caller_forbidden(stack: Stack) -> None:
    path = f"/v1/admin/subscribers/{stack.wang}/dossier"
    route_key = "POST /v1/admin/subscribers/{subscriber_id}/dossier"
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": path, "sourceIp": "1.2.3.4"},
            "requestId": "no-caller",
            "routeKey": route_key,
            "stage": "$default",
        },
        "pathParameters": {"subscriber_id": stack.wang},
        "body": json.dumps({"reason": REASON}),
        "isBase64Encoded": False,
    }

    response = admin_routes.handle(event)

    assert response["statusCode"] == 403
    assert json.loads(response["body"])["error"]["code"] == "forbidden"


# ---------------------------------------------------------------------------- the run in parts


class RecordingQueue:
    """Takes report jobs without sending them, so no report is rendered."""

    def __init__(self) -> None:
        self.subscribers: list[str] = []

    def send_many(self, jobs: list[Any]) -> None:
        self.subscribers.extend(job.subscriber_id for job in jobs)


def test_run_continues_in_parts(stack: Stack) -> None:
    queue: Any = RecordingQueue()
    table = stack.harness.table

    def queue_part() -> Any:
        # A month after both signed up, which no other test runs.
        return queue_monthly_reports(table, queue, "2026-12", page_size=1, max_pages=1)

    parts = [queue_part()]
    while not parts[-1].finished and len(parts) < 5:
        parts.append(queue_part())
    after = queue_part()

    assert (len(parts[0].subscriber_ids), parts[0].finished) == (1, False)
    # DynamoDB may end the last full page with a LastEvaluatedKey, and then only a query
    # past it shows that nothing is left, so the run takes two or three parts.
    assert 2 <= len(parts) <= 3
    assert parts[-1].finished is True
    assert after.already_finished is True
    assert len(after.subscriber_ids) == 0
    assert sorted(queue.subscribers) == sorted([stack.wang, stack.alice])
