"""Unit tests of the staff report requests: input checks, and the one-subscriber path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from idsentry.services import report_requests, subscriber_reports
from idsentry.services.report_ids import report_id_for
from idsentry.services.report_requests import ReportRequestError, ReportRunRequest

pytestmark = pytest.mark.unit

WANG = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"
# 2026-12-01 07:30 in China, still 30 November in UTC.
START_OF_DECEMBER = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


class MemoryTable:
    """The MainTable methods the one-subscriber path and the state read use, over a dict."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = {(item["pk"], item["sk"]): item for item in items}

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.items.get((pk, sk))

    def get_many(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        assert len(keys) <= 100
        return {key: self.items[key] for key in keys if key in self.items}


class RecordingJobs:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, job: Any) -> None:
        self.sent.append(job)


def profile(**fields: Any) -> dict[str, Any]:
    return {"pk": f"SUB#{WANG}", "sk": "PROFILE", "gsi1pk": "ENTITLED", **fields}


def report_item(month: str, state: str) -> dict[str, Any]:
    report_id = report_id_for(WANG, "monthly", month)
    return {"pk": f"SUB#{WANG}", "sk": f"REPORT#{report_id}", "state": state}


def test_month_defaults_to_last_in_china() -> None:
    parsed = report_requests.parse_run_request({}, START_OF_DECEMBER)

    assert parsed == ReportRunRequest(month="2026-11", subscriber_id=None)


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"month": "2026-12"}, "month", "choose a month before 2026-12"),
        ({"month": "2027-01"}, "month", "choose a month before 2026-12"),
        ({"month": "2026-13"}, "month", "expected YYYY-MM"),
        ({"month": 202611}, "month", "expected YYYY-MM"),
        ({"subscriber_id": "sbr_123"}, "subscriber_id", "expected sbr_ and 26 characters"),
        ({"subscriber_id": None, "months": "2026-11"}, "months", "unknown field months"),
    ],
)
def test_run_request_invalid(payload: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ReportRequestError, match=message) as raised:
        report_requests.parse_run_request(payload, START_OF_DECEMBER)

    assert raised.value.field == field
    assert raised.value.status == 400


def test_one_subscriber_queued() -> None:
    jobs = RecordingJobs()

    result = report_requests.request_monthly_reports(
        MemoryTable([profile()]),  # type: ignore[arg-type]
        jobs,  # type: ignore[arg-type]
        ReportRunRequest(month="2026-10", subscriber_id=WANG),
    )

    assert result["queued"] == 1
    assert result["reports"] == [
        {
            "subscriber_id": WANG,
            "report_id": report_id_for(WANG, "monthly", "2026-10"),
            "state": "queued",
        }
    ]
    assert [job.job_id for job in jobs.sent] == [f"report_monthly_2026-10_{WANG}"]


@pytest.mark.parametrize(("state", "queued"), [("announced", 0), ("stored", 1)])
def test_one_subscriber_existing_report(state: str, queued: int) -> None:
    jobs = RecordingJobs()
    table = MemoryTable([profile(), report_item("2026-10", state)])

    result = report_requests.request_monthly_reports(
        table,  # type: ignore[arg-type]
        jobs,  # type: ignore[arg-type]
        ReportRunRequest(month="2026-10", subscriber_id=WANG),
    )

    assert result["queued"] == queued
    assert len(jobs.sent) == queued
    assert result["already_finished"] is (queued == 0)


def test_one_subscriber_signed_up_after_month() -> None:
    jobs = RecordingJobs()
    # 10 November 2026 in China, after October ended.
    table = MemoryTable([profile(created_at=1794240000)])

    result = report_requests.request_monthly_reports(
        table,  # type: ignore[arg-type]
        jobs,  # type: ignore[arg-type]
        ReportRunRequest(month="2026-10", subscriber_id=WANG),
    )

    assert result["queued"] == 0
    assert result["skipped"] == 1
    assert result["reports"] == []
    assert result["skipped_subscribers"] == [
        {"subscriber_id": WANG, "reason": "signed_up_after_month"}
    ]
    assert jobs.sent == []


# 2026-11-01 00:30 in China, which is still 31 October in London.
JUST_AFTER_CHINA_OCTOBER = int(datetime(2026, 10, 31, 16, 30, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("timezone", "after"),
    [("Asia/Shanghai", True), ("Europe/London", False), (None, True), ("Mars/Base", True)],
)
def test_signed_up_after_month_in_own_zone(timezone: str | None, after: bool) -> None:
    preferences = None if timezone is None else {"timezone": timezone}

    result = subscriber_reports.signed_up_after(
        "2026-10", {"created_at": JUST_AFTER_CHINA_OCTOBER}, preferences
    )

    assert result is after


@pytest.mark.parametrize(
    ("month", "end"),
    [
        ("2026-10", datetime(2026, 10, 31, 16, 0, tzinfo=UTC)),
        ("2026-12", datetime(2026, 12, 31, 16, 0, tzinfo=UTC)),
    ],
)
def test_month_end_in_china(month: str, end: datetime) -> None:
    assert subscriber_reports.month_end(month, None) == end


def test_profile_without_created_at_not_after() -> None:
    assert subscriber_reports.signed_up_after("2026-10", {}, None) is False


@pytest.mark.parametrize(
    ("items", "status", "message"),
    [
        ([], 404, "not found"),
        ([profile(deletion_requested_at=1796400000)], 404, "not found"),
        ([{**profile(), "gsi1pk": None}], 409, "is not entitled"),
    ],
)
def test_one_subscriber_refused(items: list[dict[str, Any]], status: int, message: str) -> None:
    jobs = RecordingJobs()

    with pytest.raises(ReportRequestError, match=message) as raised:
        report_requests.request_monthly_reports(
            MemoryTable(items),  # type: ignore[arg-type]
            jobs,  # type: ignore[arg-type]
            ReportRunRequest(month="2026-10", subscriber_id=WANG),
        )

    assert raised.value.status == status
    assert raised.value.field == "subscriber_id"
    assert jobs.sent == []


def test_states_read_by_key() -> None:
    other = "sbr_01KM055RE8TNXREA072ZYSS84Q"
    table = MemoryTable([report_item("2026-11", "stored")])

    states = report_requests.report_states(
        table,  # type: ignore[arg-type]
        "2026-11",
        [WANG, other],
    )

    assert [entry["state"] for entry in states["reports"]] == ["stored", "pending"]
    assert states["reports"][1]["report_id"] == report_id_for(other, "monthly", "2026-11")


@pytest.mark.parametrize(
    ("month", "query", "field"),
    [
        ("2026-1", {"subscriber_ids": WANG}, "month"),
        ("2026-11", {}, "subscriber_ids"),
        ("2026-11", {"subscriber_ids": " , "}, "subscriber_ids"),
        ("2026-11", {"subscriber_ids": f"{WANG},sbr_bad"}, "subscriber_ids"),
        (
            "2026-11",
            {"subscriber_ids": ",".join(f"sbr_{n:026d}" for n in range(101))},
            "subscriber_ids",
        ),
    ],
)
def test_state_request_invalid(month: str, query: dict[str, str], field: str) -> None:
    with pytest.raises(ReportRequestError) as raised:
        report_requests.parse_state_request(month, query)

    assert raised.value.field == field


def test_state_request_unique_ids() -> None:
    month, subscriber_ids = report_requests.parse_state_request(
        "2026-11", {"subscriber_ids": f"{WANG}, {WANG}"}
    )

    assert (month, subscriber_ids) == ("2026-11", [WANG])
