"""China playbooks over the local HTTP API, and the quarterly reminder against moto and SES."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from pydantic import BaseModel

from idsentry.models.jobs import CheckReminderJob
from idsentry.services import notify, quarterly_checks
from idsentry.services.preferences import set_email_list
from infra.local.service import LocalService
from tests.integration.conftest import MovableClock
from tests.integration.test_account_api import SECOND_BREACH, _alert, _token
from tests.integration.test_breach_intake import BREACH
from tests.integration.test_sign_in import SignInHarness
from tests.integration.test_signup_service import _clear_table

pytestmark = pytest.mark.integration

STEP = "check_phone_cards_and_accounts"


@dataclass
class Playbooks:
    """Two subscribers, A with an alert about a leaked ID number and B with one of their own."""

    service: LocalService
    harness: SignInHarness
    a: str
    b: str
    a_token: str
    a_alert: str
    b_alert: str

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
        headers["Authorization"] = f"Bearer {self.a_token}"
        return requests.request(
            method, f"{self.service.base_url}{path}", json=body, headers=headers, timeout=30
        )


@pytest.fixture(scope="module")
def playbooks(local_service: LocalService) -> Iterator[Playbooks]:
    harness = SignInHarness(local_service, MovableClock())
    a = harness.subscriber("wang")
    b = harness.subscriber("alice")
    yield Playbooks(
        service=local_service,
        harness=harness,
        a=a,
        b=b,
        a_token=_token(harness, a),
        a_alert=_alert(harness, a, BREACH),
        b_alert=_alert(harness, b, SECOND_BREACH),
    )
    _clear_table(local_service)


def _steps(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["step_id"]: step for step in body["steps"]}


def test_playbook_lists_id_number_steps(playbooks: Playbooks) -> None:
    response = playbooks.call("GET", f"/v1/account/alerts/{playbooks.a_alert}/playbook")

    assert response.status_code == 200, response.text
    body = response.json()
    steps = _steps(body)
    assert "id_number" in body["data_kinds"]
    assert {STEP, "dispute_credit_report", "report_identity_misuse"} <= set(steps)
    assert body["done"] == 0
    assert all(step["done"] is False for step in steps.values())
    services = {service["id"]: service for service in steps[STEP]["services"]}
    assert services["yizhengtongcha"]["url"] == "https://getsimnum.caict.ac.cn"
    assert "一证通查" in steps[STEP]["title"] or "一证通查" in steps[STEP]["detail"]


def test_playbook_in_english(playbooks: Playbooks) -> None:
    response = playbooks.call(
        "GET", f"/v1/account/alerts/{playbooks.a_alert}/playbook", **{"Accept-Language": "en"}
    )

    steps = _steps(response.json())
    assert steps[STEP]["title"] == "Check the phone cards and internet accounts under your ID"


def test_mark_step_done_and_undone(playbooks: Playbooks) -> None:
    path = f"/v1/account/alerts/{playbooks.a_alert}/playbook/{STEP}"

    done = playbooks.call("PUT", path, {"done": True})
    again = playbooks.call("PUT", path, {"done": True})

    assert done.status_code == 200, done.text
    assert _steps(done.json())[STEP]["done"] is True
    first_time = _steps(done.json())[STEP]["done_at"]
    assert _steps(again.json())[STEP]["done_at"] == first_time
    assert again.json()["done"] == 1

    undone = playbooks.call("PUT", path, {"done": False})
    repeated = playbooks.call("PUT", path, {"done": False})

    assert _steps(undone.json())[STEP]["done"] is False
    assert repeated.status_code == 200
    assert repeated.json()["done"] == 0


def test_mark_step_invalid_body_names_field(playbooks: Playbooks) -> None:
    path = f"/v1/account/alerts/{playbooks.a_alert}/playbook/{STEP}"

    response = playbooks.call("PUT", path, {"done": "yes"}, **{"Accept-Language": "en"})

    assert response.status_code == 422
    assert [field["field"] for field in response.json()["error"]["fields"]] == ["done"]


def test_unknown_step_is_404(playbooks: Playbooks) -> None:
    path = f"/v1/account/alerts/{playbooks.a_alert}/playbook/freeze_bank_card"

    response = playbooks.call("PUT", path, {"done": True})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "playbook.step_not_found"


def test_other_subscribers_alert_is_404(playbooks: Playbooks) -> None:
    read = playbooks.call("GET", f"/v1/account/alerts/{playbooks.b_alert}/playbook")
    mark = playbooks.call(
        "PUT", f"/v1/account/alerts/{playbooks.b_alert}/playbook/{STEP}", {"done": True}
    )

    assert read.status_code == 404
    assert read.json()["error"]["code"] == "alert.not_found"
    assert mark.status_code == 404
    b_items = playbooks.harness.table.get_partition(f"SUB#{playbooks.b}")
    assert not [sk for sk in b_items if sk.startswith("PLAYBOOK#")]
    a_items = playbooks.harness.table.get_partition(f"SUB#{playbooks.a}")
    assert not [sk for sk in a_items if playbooks.b_alert in sk]


def test_record_checks_flags_change(playbooks: Playbooks) -> None:
    # Last quarter's result, recorded then.
    earlier = datetime(2026, 9, 15, 4, 0, tzinfo=UTC)
    result = quarterly_checks.CheckResult(
        "yizhengtongcha", {"phone_cards": 2, "internet_accounts": 14}
    )
    quarterly_checks.record_check(playbooks.harness.table, playbooks.a, result, earlier, "en")
    body = {"check": "yizhengtongcha", "counts": {"phone_cards": 3, "internet_accounts": 14}}

    first = playbooks.call("POST", "/v1/account/checks", body)
    second = playbooks.call("POST", "/v1/account/checks", body)
    listed = playbooks.call("GET", "/v1/account/checks")

    assert first.status_code == 200, first.text
    recorded = first.json()
    assert recorded["changed_from_last"] is True
    assert recorded["changes"] == {"phone_cards": {"previous": 2, "current": 3}}
    assert second.json()["quarter"] == recorded["quarter"]
    results = [entry for entry in listed.json()["results"] if entry["check"] == "yizhengtongcha"]
    assert [entry["quarter"] for entry in results] == [recorded["quarter"], "2026q3"]
    assert results[0]["changed_from_last"] is True
    assert results[1]["changed_from_last"] is None


def test_record_check_unchanged(playbooks: Playbooks) -> None:
    earlier = datetime(2026, 9, 15, 4, 0, tzinfo=UTC)
    result = quarterly_checks.CheckResult("bank_cards", {"bank_cards": 4})
    quarterly_checks.record_check(playbooks.harness.table, playbooks.a, result, earlier, "en")

    response = playbooks.call(
        "POST", "/v1/account/checks", {"check": "bank_cards", "counts": {"bank_cards": 4}}
    )

    assert response.json()["changed_from_last"] is False
    assert response.json()["changes"] == {}


def test_record_check_invalid_names_field(playbooks: Playbooks) -> None:
    response = playbooks.call(
        "POST",
        "/v1/account/checks",
        {"check": "bank_cards", "counts": {"bank_cards": -2}},
    )

    assert response.status_code == 422
    (problem,) = response.json()["error"]["fields"]
    assert problem["field"] == "counts.bank_cards"
    assert problem["message"] == "数量应为 0 到 10000 之间的整数。"


class RecordingQueue:
    """Collects jobs instead of sending them; fails on the send named by `fail_on`."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.jobs: list[Any] = []
        self.sends = 0
        self.fail_on = fail_on

    def send(self, job: BaseModel) -> None:
        self.send_many([job])

    def send_many(self, jobs: Sequence[BaseModel]) -> None:
        self.sends += 1
        if self.sends == self.fail_on:
            raise RuntimeError("queue unavailable")
        self.jobs.extend(jobs)


def _entitle(playbooks: Playbooks, subscriber_id: str) -> None:
    playbooks.harness.table.update(
        f"SUB#{subscriber_id}",
        "PROFILE",
        "SET gsi1pk = :entitled, gsi1sk = :subscriber, monitored = :true",
        values={":entitled": "ENTITLED", ":subscriber": subscriber_id, ":true": True},
    )


def test_reminders_queued_once_per_quarter(playbooks: Playbooks) -> None:
    _entitle(playbooks, playbooks.a)
    _entitle(playbooks, playbooks.b)
    table = playbooks.harness.table
    now = datetime(2027, 1, 1, 2, 0, tzinfo=UTC)

    # The first attempt fails after its first page; the retry continues from the checkpoint.
    failing = RecordingQueue(fail_on=2)
    with pytest.raises(RuntimeError):
        quarterly_checks.plan_reminders(table, failing, now, page_size=1)  # type: ignore[arg-type]
    retry = RecordingQueue()
    summary = quarterly_checks.plan_reminders(table, retry, now, page_size=1)  # type: ignore[arg-type]
    repeat = RecordingQueue()
    repeated = quarterly_checks.plan_reminders(table, repeat, now, page_size=1)  # type: ignore[arg-type]
    next_quarter = RecordingQueue()
    quarterly_checks.plan_reminders(table, next_quarter, datetime(2027, 4, 1, 2, 0, tzinfo=UTC))  # type: ignore[arg-type]

    queued = [job.subscriber_id for job in failing.jobs + retry.jobs]
    assert sorted(queued) == sorted([playbooks.a, playbooks.b])
    assert summary["queued"] == 1
    assert repeated == {"quarter": "2027q1", "queued": 0, "already_finished": True}
    assert repeat.jobs == []
    assert {job.quarter for job in next_quarter.jobs} == {"2027q2"}
    assert {job.job_id for job in retry.jobs} <= {
        f"check_reminder_2027q1_{subscriber}" for subscriber in (playbooks.a, playbooks.b)
    }


def test_reminder_sent_once(playbooks: Playbooks) -> None:
    _entitle(playbooks, playbooks.a)
    job = quarterly_checks.reminder_job(playbooks.a, "2027q1")
    before = len(playbooks.service.sent_emails())

    first = notify.process_job(playbooks.harness.notifier, job)
    second = notify.process_job(playbooks.harness.notifier, job)

    emails = playbooks.service.sent_emails()[before:]
    assert (first, second) == ("sent", "skipped")
    assert len(emails) == 1
    assert "https://getsimnum.caict.ac.cn" in emails[0]["text"]
    assert "list-unsubscribe" in emails[0]["headers"]
    record = playbooks.harness.table.get(f"NOTIFY#check_reminder:2027q1:{playbooks.a}", "email")
    assert record is not None and record["state"] == "sent"


def test_reminder_respects_reports_list(playbooks: Playbooks) -> None:
    _entitle(playbooks, playbooks.b)
    set_email_list(playbooks.harness.table, playbooks.b, "reports", False, 0)
    job = CheckReminderJob(
        job_id="check_reminder_2027q3_b", subscriber_id=playbooks.b, quarter="2027q3"
    )
    before = len(playbooks.service.sent_emails())

    outcome = notify.process_job(playbooks.harness.notifier, job)

    assert outcome == "skipped"
    assert len(playbooks.service.sent_emails()) == before
