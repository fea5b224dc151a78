"""`idsentry reconcile` against the local stack: start, follow, print counts, download files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import infra.local.service as local_service_module
from idsentry.adapters.table import MainTable
from idsentry.clock import SHANGHAI
from idsentry_cli import reconcile as reconcile_logic
from idsentry_cli.main import cli
from infra.local.service import LocalService
from tests.integration.conftest import IDENTITIES
from tests.integration.test_reconcile_repair import SUBSCRIBER, subscribe

pytestmark = pytest.mark.integration

FILE_NAMES = (
    "reconciliation.csv",
    "summary.zh-CN.html",
    "summary.en.html",
    "reconciliation.json",
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """A local stack with one paid subscription, whose state file is this module's own."""
    state_file = tmp_path_factory.mktemp("cli-reconcile") / "stack.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_service_module, "STATE_FILE", state_file)
        with LocalService(port=0, identities_path=IDENTITIES, background=False) as started:
            assert started.stack is not None and started.stripe_shim is not None
            MainTable("idsentry-local", started.stack.runtime.client("dynamodb")).put(
                {
                    "pk": f"SUB#{SUBSCRIBER}",
                    "sk": "PROFILE",
                    "subscriber_id": SUBSCRIBER,
                    "status": "pending_payment",
                }
            )
            subscribe(started.stripe_shim.base_url)
            started.stripe_shim.flush()
            started.stack.runtime.run_until_idle()
            yield started


@pytest.fixture
def runner(service: LocalService) -> CliRunner:
    state_file: Path = local_service_module.STATE_FILE
    # A wide terminal, so that table cells with ids are not wrapped inside the id.
    return CliRunner(env={"IDSENTRY_LOCAL_STATE": str(state_file), "COLUMNS": "240"})


@pytest.fixture
def deliver_between_polls(service: LocalService, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deliver the queued jobs where `idsentry reconcile` would wait for the next poll."""
    assert service.stack is not None
    runtime = service.stack.runtime
    monkeypatch.setattr(reconcile_logic, "wait_for_next_poll", lambda _s: runtime.run_until_idle())


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, list(args), prog_name="idsentry")


def shanghai_today() -> date:
    return datetime.now(SHANGHAI).date()


def period_args() -> list[str]:
    """Yesterday and today in Asia/Shanghai at the time of the call.

    The module's subscription was paid when its service started, at most a day before, so it is
    inside the period even when midnight in Shanghai passed in between.
    """
    today = shanghai_today()
    return ["--from", (today - timedelta(days=1)).isoformat(), "--to", today.isoformat()]


def test_reconcile_downloads_files(
    runner: CliRunner, tmp_path: Path, deliver_between_polls: None
) -> None:
    result = run(runner, "reconcile", *period_args(), "--locale", "en", "--out", str(tmp_path))
    files = sorted(path.name for path in tmp_path.iterdir())
    reconciliation_id = files[0].split("-", 1)[0]
    csv_bytes = (tmp_path / f"{reconciliation_id}-reconciliation.csv").read_bytes()

    assert result.exit_code == 0, result.output
    assert f"started reconciliation {reconciliation_id}" in result.stdout
    assert "Matched" in result.stdout
    assert "Missing in the ledger" in result.stdout
    assert "CNY" in result.stdout
    assert files == sorted(f"{reconciliation_id}-{name}" for name in FILE_NAMES)
    assert csv_bytes.startswith(b"\xef\xbb\xbfResult,Object,Stripe id")
    assert f"{reconciliation_id}: done (attempt 1)" in result.stderr


def test_reconcile_json(runner: CliRunner, tmp_path: Path, deliver_between_polls: None) -> None:
    result = run(runner, "--json", "reconcile", *period_args(), "--repair", "--out", str(tmp_path))
    document = json.loads(result.stdout)

    assert result.exit_code == 0, result.output
    assert document["status"] == "done"
    assert document["repair"] is True
    assert document["counts"]["matched"] >= 1
    assert sorted(Path(path).name for path in document["downloaded"]) == sorted(
        f"{document['reconciliation_id']}-{name}" for name in FILE_NAMES
    )
    assert all("url" in entry for entry in document["files"])


def test_reconcile_by_id(runner: CliRunner, tmp_path: Path, deliver_between_polls: None) -> None:
    first = run(runner, "--json", "reconcile", *period_args()[:2], "--out", str(tmp_path))
    reconciliation_id = json.loads(first.stdout)["reconciliation_id"]
    again_folder = tmp_path / "again"

    result = run(runner, "reconcile", "--id", reconciliation_id, "--out", str(again_folder))

    assert result.exit_code == 0, result.output
    assert "started" not in result.stdout
    assert sorted(path.name for path in again_folder.iterdir()) == sorted(
        f"{reconciliation_id}-{name}" for name in FILE_NAMES
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--from", "2026-13-01"], "--from"),
        (["--from", "2026-12-04", "--to", "2026-12-01"], "--to"),
        # Two days ahead at collection, so still in the future after a midnight in the run.
        (["--from", (shanghai_today() + timedelta(days=2)).isoformat()], "--from"),
        (["--id", "not-a-run"], "--id"),
    ],
)
def test_reconcile_invalid_option(runner: CliRunner, args: list[str], option: str) -> None:
    result = run(runner, "reconcile", *args)

    assert result.exit_code == 2, result.output
    assert option in result.output


@pytest.mark.parametrize(
    "args", [[], ["--id", "rcn_day_20261204", "--from", "2026-12-04"], ["--to", "2026-12-04"]]
)
def test_reconcile_usage(runner: CliRunner, args: list[str]) -> None:
    result = run(runner, "reconcile", *args)

    assert result.exit_code == 2, result.output
    assert "--id" in result.output


def test_reconcile_unknown_id(runner: CliRunner) -> None:
    result = run(runner, "reconcile", "--id", "rcn_01M91NOSUCHRUN0000000000")

    assert result.exit_code == 1
    assert "rcn_01M91NOSUCHRUN0000000000 not found" in result.output


def test_reconcile_failed_run(runner: CliRunner, service: LocalService, tmp_path: Path) -> None:
    assert service.stack is not None
    MainTable("idsentry-local", service.stack.runtime.client("dynamodb")).put(
        {
            "pk": "RECON#rcn_01M91FA1LEDRUN000000000000",
            "sk": "RUN",
            "reconciliation_id": "rcn_01M91FA1LEDRUN000000000000",
            "from": "2026-12-04",
            "to": "2026-12-04",
            "repair": False,
            "locale": "zh-CN",
            "requested_by": "admin",
            "status": "failed",
            "attempts": 3,
            "error": {"type": "ProviderError", "transient": True},
        }
    )

    result = run(
        runner, "reconcile", "--id", "rcn_01M91FA1LEDRUN000000000000", "--out", str(tmp_path)
    )

    assert result.exit_code == 1
    assert "failed (ProviderError, attempt 3)" in result.output
    assert list(tmp_path.iterdir()) == []


def test_follow_run_times_out() -> None:
    ticks = iter(range(100))
    reads: list[dict[str, Any]] = []

    def read() -> dict[str, Any]:
        run = {"status": "running", "attempts": 1}
        reads.append(run)
        return run

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reconcile_logic, "wait_for_next_poll", lambda _seconds: None)
        last = reconcile_logic.follow_run(
            read, lambda _run: None, timeout_seconds=5, clock=lambda: float(next(ticks))
        )

    assert last == {"status": "running", "attempts": 1}
    assert 1 < len(reads) < 10
