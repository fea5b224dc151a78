"""Unit tests of `idsentry reports run` and `idsentry dossier` against a recorded admin API."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from idsentry_cli import reports as reports_logic
from idsentry_cli.context import CliContext
from idsentry_cli.errors import ApiError, CliError
from idsentry_cli.main import cli

pytestmark = pytest.mark.unit

WANG = "sbr_01M91B4ABG36G2R8D4PV2HM6CG"
ALICE = "sbr_01KM055RE8TNXREA072ZYSS84Q"
DOSSIER = {
    "dossier_id": "dos_c686498a9b415df213efe68ad3",
    "reference": "DOS-2330F193DDAB",
    "audience": "police",
    "locale": "zh-CN",
    "url": "https://reports.example.com/dossier.pdf?X-Amz-Signature=secret",
    "expires_at": "2026-12-05T02:15:00+00:00",
}


class RecordedApi:
    """Returns queued responses (or raises queued errors) and records every request."""

    def __init__(
        self, responses: list[Any], states: Callable[[list[str]], list[Any]] | None = None
    ):
        self.responses = list(responses)
        self.states = states
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.gets: list[tuple[str, dict[str, str] | None]] = []

    def post(self, path: str, body: dict[str, Any], headers: Any = None) -> Any:
        self.posts.append((path, body))
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response

    def get(self, path: str, params: dict[str, str] | None = None, **_options: Any) -> Any:
        self.gets.append((path, params))
        assert self.states is not None and params is not None
        return {"reports": self.states(params["subscriber_ids"].split(","))}


class PdfResponse:
    def __init__(self, content: bytes, status: int = 200) -> None:
        self.content = content
        self.status_code = status
        self.ok = status < 400


@pytest.fixture
def use_api(monkeypatch: pytest.MonkeyPatch) -> Callable[[RecordedApi], RecordedApi]:
    def install(api: RecordedApi) -> RecordedApi:
        monkeypatch.setattr(CliContext, "api", lambda _self: api)
        return api

    return install


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports_logic, "wait_for_next_poll", lambda _seconds: None)


def run(*args: str) -> Result:
    runner = CliRunner(env={"COLUMNS": "240"})
    return runner.invoke(cli, list(args), prog_name="idsentry")


def run_result(
    queued: list[str], *, finished: bool = True, month: str = "2026-11", scope: str = "entitled"
) -> dict[str, Any]:
    return {
        "month": month,
        "scope": scope,
        "queued": len(queued),
        "reports": [
            {"subscriber_id": sid, "report_id": f"rpt_{index:026d}", "state": "queued"}
            for index, sid in enumerate(queued)
        ],
        "finished": finished,
        "already_finished": False,
    }


def api_error(status: int, field: str | None, detail: str) -> ApiError:
    return ApiError(
        status, "invalid_request", f"failed with HTTP {status}: {detail}", detail, field
    )


# ---------------------------------------------------------------------------- reports run


def test_run_all_posts_empty_body(use_api: Any) -> None:
    api = use_api(RecordedApi([run_result([WANG, ALICE])]))

    result = run("reports", "run")

    assert result.exit_code == 0, result.output
    assert api.posts == [("/v1/admin/reports", {})]
    assert "queued 2 reports of 2026-11 for every entitled subscriber" in result.stdout
    assert WANG in result.stdout
    assert "rpt_00000000000000000000000001" in result.stdout


def test_run_one_posts_month_and_subscriber(use_api: Any) -> None:
    api = use_api(RecordedApi([run_result([WANG], month="2026-10", scope="subscriber")]))

    result = run("reports", "run", "--subscriber", WANG, "--month", "2026-10")

    assert result.exit_code == 0, result.output
    assert api.posts == [("/v1/admin/reports", {"month": "2026-10", "subscriber_id": WANG})]
    assert f"queued the 2026-10 report of {WANG}" in result.stdout


def test_run_continues_until_finished(use_api: Any) -> None:
    api = use_api(
        RecordedApi([run_result([WANG], finished=False), run_result([ALICE], finished=True)])
    )

    result = run("--json", "reports", "run")
    document = json.loads(result.stdout)

    assert result.exit_code == 0, result.output
    assert len(api.posts) == 2
    assert document["queued"] == 2
    assert document["finished"] is True
    assert [entry["subscriber_id"] for entry in document["reports"]] == [WANG, ALICE]
    assert "queued 1 reports, continuing the run" in result.stderr


def test_run_already_finished(use_api: Any) -> None:
    use_api(RecordedApi([{**run_result([]), "already_finished": True}]))

    result = run("reports", "run")

    assert result.exit_code == 0, result.output
    assert "had finished before: nothing queued" in result.stdout
    assert "Subscriber" not in result.stdout


def test_run_long_table_cut(use_api: Any) -> None:
    subscribers = [f"sbr_01M91B4ABG36G2R8D4PV2H{index:04d}" for index in range(130)]
    use_api(RecordedApi([run_result(subscribers)]))

    result = run("reports", "run")

    assert result.exit_code == 0, result.output
    assert subscribers[99] in result.stdout
    assert subscribers[100] not in result.stdout
    assert "and 30 more: --json lists every report" in result.stdout


def test_run_lists_announced_apart(use_api: Any, no_sleep: None) -> None:
    result_of_request = run_result([ALICE])
    result_of_request["reports"].append(
        {"subscriber_id": WANG, "report_id": "rpt_wang", "state": "announced"}
    )
    result_of_request["already_announced"] = 1

    def states(subscriber_ids: list[str]) -> list[dict[str, Any]]:
        return [
            {"subscriber_id": sid, "report_id": f"rpt_{sid}", "state": "announced"}
            for sid in subscriber_ids
        ]

    use_api(RecordedApi([result_of_request], states))

    result = run("reports", "run", "--wait")

    assert result.exit_code == 0, result.output
    assert "queued 1 report of 2026-11 for every entitled subscriber" in result.stdout
    assert "1 report already announced: not queued again" in result.stdout
    queued_part, announced_part = result.stdout.split("Already announced")
    assert ALICE in queued_part
    assert WANG not in queued_part
    assert WANG in announced_part
    assert "2 of 2 reports announced" in result.stderr


def test_run_counts_skipped(use_api: Any) -> None:
    chen = "sbr_01M91CHEN00000000000000000"
    skipped = {**run_result([WANG]), "skipped": 1}
    skipped["skipped_subscribers"] = [{"subscriber_id": chen, "reason": "signed_up_after_month"}]
    use_api(RecordedApi([skipped]))

    result = run("reports", "run")

    assert result.exit_code == 0, result.output
    assert "queued 1 report of 2026-11" in result.stdout
    assert "1 subscriber skipped" in result.stdout
    assert "Skipped" in result.stdout
    assert chen in result.stdout
    assert "account created after 2026-11 ended" in result.stdout


def test_run_one_skipped(use_api: Any) -> None:
    skipped = {**run_result([], month="2026-10", scope="subscriber"), "skipped": 1}
    skipped["skipped_subscribers"] = [{"subscriber_id": WANG, "reason": "signed_up_after_month"}]
    use_api(RecordedApi([skipped]))

    result = run("reports", "run", "--subscriber", WANG, "--month", "2026-10")

    assert result.exit_code == 0, result.output
    assert (
        f"skipped the 2026-10 report of {WANG}: account created after 2026-10 ended, "
        "so nothing queued"
    ) in result.stdout


def test_run_merges_counts_of_parts(use_api: Any) -> None:
    first = {**run_result([WANG], finished=False), "already_announced": 2, "skipped": 1}
    first["skipped_subscribers"] = [{"subscriber_id": ALICE, "reason": "no_account"}]
    second = {**run_result([], finished=True), "already_announced": 1, "skipped": 0}
    second["skipped_subscribers"] = []
    use_api(RecordedApi([first, second]))

    result = run("--json", "reports", "run")
    document = json.loads(result.stdout)

    assert result.exit_code == 0, result.output
    assert document["queued"] == 1
    assert document["already_announced"] == 3
    assert document["skipped"] == 1
    assert document["skipped_subscribers"] == [{"subscriber_id": ALICE, "reason": "no_account"}]


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "november"])
def test_run_month_checked_before_request(use_api: Any, month: str) -> None:
    api = use_api(RecordedApi([]))

    result = run("reports", "run", "--month", month)

    assert result.exit_code == 2
    assert "--month" in result.output
    assert api.posts == []


@pytest.mark.parametrize(
    ("field", "option"), [("month", "--month"), ("subscriber_id", "--subscriber")]
)
def test_run_rejected_field_names_option(use_api: Any, field: str, option: str) -> None:
    use_api(RecordedApi([api_error(400, field, f"invalid {field}")]))

    result = run("reports", "run")

    assert result.exit_code == 2
    assert f"Invalid value for {option}: invalid {field}" in result.output


@pytest.mark.parametrize("status", [404, 409])
def test_run_subscriber_refused(use_api: Any, status: int) -> None:
    detail = f"subscriber_id {WANG} not found: no such account"
    use_api(RecordedApi([api_error(status, "subscriber_id", detail)]))

    result = run("reports", "run", "--subscriber", WANG)

    assert result.exit_code == 1
    assert f"Error: {detail} (--subscriber)" in result.output


def test_run_wait_follows_states(use_api: Any, no_sleep: None) -> None:
    reads: list[list[str]] = []

    def states(subscriber_ids: list[str]) -> list[dict[str, Any]]:
        reads.append(subscriber_ids)
        state = "announced" if len(reads) > 1 else "stored"
        return [
            {"subscriber_id": sid, "report_id": "rpt_x", "state": state} for sid in subscriber_ids
        ]

    api = use_api(RecordedApi([run_result([WANG, ALICE])], states))

    result = run("reports", "run", "--wait")

    assert result.exit_code == 0, result.output
    assert reads == [[WANG, ALICE], [WANG, ALICE]]
    assert api.gets[0] == ("/v1/admin/reports/2026-11", {"subscriber_ids": f"{WANG},{ALICE}"})
    assert "2 of 2 reports announced" in result.stderr


def test_run_wait_times_out(use_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def states(subscriber_ids: list[str]) -> list[dict[str, Any]]:
        return [
            {"subscriber_id": sid, "report_id": "rpt_x", "state": "pending"}
            for sid in subscriber_ids
        ]

    use_api(RecordedApi([run_result([WANG])], states))
    ticks = iter(range(0, 10_000, 100))
    follow = functools.partial(reports_logic.follow_reports, clock=lambda: float(next(ticks)))
    monkeypatch.setattr(reports_logic, "follow_reports", follow)
    monkeypatch.setattr(reports_logic, "wait_for_next_poll", lambda _seconds: None)

    result = run("reports", "run", "--wait", "--timeout", "150")

    assert result.exit_code == 1
    assert "1 of 1 reports were not announced within 150 s" in result.output
    assert "pending" in result.stdout


def test_follow_reads_in_batches() -> None:
    subscribers = [f"sbr_{index:026d}" for index in range(150)]
    batches: list[int] = []

    def read(subscriber_ids: list[str]) -> list[dict[str, Any]]:
        batches.append(len(subscriber_ids))
        return [
            {"subscriber_id": sid, "report_id": "rpt_x", "state": "announced"}
            for sid in subscriber_ids
        ]

    followed = reports_logic.follow_reports(
        read, [{"subscriber_id": sid, "state": "queued"} for sid in subscribers], 60
    )

    assert batches == [100, 50]
    assert [entry["subscriber_id"] for entry in followed] == subscribers


def test_run_stops_after_max_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports_logic, "MAX_RUN_REQUESTS", 3)
    api = RecordedApi([run_result([WANG], finished=False) for _ in range(3)])

    with pytest.raises(CliError, match="did not finish after 3 requests"):
        reports_logic.run_reports(api, {"month": "2026-11"})  # type: ignore[arg-type]

    assert len(api.posts) == 3


# ---------------------------------------------------------------------------- dossier


def test_dossier_posts_and_downloads(
    use_api: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api = use_api(RecordedApi([DOSSIER]))
    fetched: list[str] = []

    def fetch(url: str, timeout: Any) -> PdfResponse:
        fetched.append(url)
        return PdfResponse(b"%PDF-1.7 dossier")

    monkeypatch.setattr(reports_logic.requests, "get", fetch)

    result = run(
        "dossier", WANG, "--reason", "ticket 4711", "--audience", "police", "--locale", "zh-CN",
        "--breach", "ExampleShop2026", "--breach", "ExampleForum2026", "--out", str(tmp_path),
    )  # fmt: skip

    written = tmp_path / "idsentry-dossier-DOS-2330F193DDAB.pdf"
    assert result.exit_code == 0, result.output
    assert api.posts == [
        (
            f"/v1/admin/subscribers/{WANG}/dossier",
            {
                "reason": "ticket 4711",
                "audience": "police",
                "locale": "zh-CN",
                "breach_names": ["ExampleShop2026", "ExampleForum2026"],
            },
        )
    ]
    assert fetched == [DOSSIER["url"]]
    assert written.read_bytes() == b"%PDF-1.7 dossier"
    assert "reference DOS-2330F193DDAB" in result.stdout
    assert f"wrote {written} (16 bytes)" in result.stdout
    assert "X-Amz-Signature" not in result.output


def test_dossier_json_without_link(
    use_api: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_api(RecordedApi([DOSSIER]))
    monkeypatch.setattr(reports_logic.requests, "get", lambda _url, timeout: PdfResponse(b"%PDF"))

    result = run("--json", "dossier", WANG, "--reason", "ticket", "--out", str(tmp_path))
    document = json.loads(result.stdout)

    assert result.exit_code == 0, result.output
    assert "url" not in document
    assert document["subscriber_id"] == WANG
    assert document["downloaded"].endswith("idsentry-dossier-DOS-2330F193DDAB.pdf")


def test_dossier_default_body(
    use_api: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api = use_api(RecordedApi([DOSSIER]))
    monkeypatch.setattr(reports_logic.requests, "get", lambda _url, timeout: PdfResponse(b"%PDF"))

    result = run("dossier", WANG, "--reason", "ticket", "--out", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert api.posts[0][1] == {"reason": "ticket", "audience": "general"}


def test_dossier_unknown_subscriber(use_api: Any, tmp_path: Path) -> None:
    use_api(RecordedApi([api_error(404, "subscriber_id", "subscriber_id not found")]))

    result = run("dossier", WANG, "--reason", "ticket", "--out", str(tmp_path))

    assert result.exit_code == 1
    assert f"subscriber {WANG} not found (SUBSCRIBER_ID)" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("field", "option"),
    [("breach_names", "--breach"), ("reason", "--reason"), ("subscriber_id", "SUBSCRIBER_ID")],
)
def test_dossier_rejected_field(use_api: Any, field: str, option: str) -> None:
    use_api(RecordedApi([api_error(400, field, f"invalid {field}")]))

    result = run("dossier", WANG, "--reason", "ticket")

    assert result.exit_code == 2
    assert f"Invalid value for {option}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([WANG], "Missing option '--reason'"),
        ([WANG, "--reason", "x", "--audience", "newspaper"], "--audience"),
        ([WANG, "--reason", "x", "--locale", "fr"], "--locale"),
        (["--reason", "x"], "Missing argument 'SUBSCRIBER_ID'"),
    ],
)
def test_dossier_usage(use_api: Any, args: list[str], message: str) -> None:
    api = use_api(RecordedApi([]))

    result = run("dossier", *args)

    assert result.exit_code == 2
    assert message in result.output
    assert api.posts == []


@pytest.mark.parametrize(
    ("created", "response", "message"),
    [
        ({**DOSSIER, "reference": "../../etc/passwd"}, PdfResponse(b"%PDF"), "not a dossier"),
        (DOSSIER, PdfResponse(b"", 403), "failed with HTTP 403"),
        (DOSSIER, PdfResponse(b"<html>"), "is not a PDF"),
    ],
)
def test_download_dossier_refused(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    created: dict[str, Any],
    response: PdfResponse,
    message: str,
) -> None:
    monkeypatch.setattr(reports_logic.requests, "get", lambda _url, timeout: response)

    with pytest.raises(CliError, match=message):
        reports_logic.download_dossier(created, tmp_path)

    assert list(tmp_path.iterdir()) == []
