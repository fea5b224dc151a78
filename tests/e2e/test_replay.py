"""Replay scenario: a story with every delivery made twice and shuffled ends as its clean run does.

At the fast size (`make test`) it replays events/demo/replay_short.json: signup, verification,
checkout and one alert. At the full size (`make chaos`) it replays the whole demo story.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.chaos.results import ScenarioResult, full_size, record
from infra.local.replay import KINDS, TWILIO_INBOUND_SMS

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# Bounds for the whole command: two runs of the story on fresh stacks, each settled.
TIMEOUT_SECONDS = {"short": 300, "demo": 1500}


def run_replay(size: str, report_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m infra.chaos.replay` in a fresh process, as its own moto needs."""
    # The command is this interpreter with fixed arguments, so S603 does not apply.
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "infra.chaos.replay", "--size", size, "--json", str(report_path)],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS[size],
        check=False,
    )


def test_replayed_story_ends_as_clean_run(tmp_path: Path) -> None:
    size = "demo" if full_size() else "short"
    report_path = tmp_path / "replay.json"

    completed = run_replay(size, report_path)

    assert report_path.exists(), completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    replayed = report["replayed"]
    record(
        ScenarioResult(
            scenario=f"replay.{size}",
            area="replay",
            title=("the whole demo story" if size == "demo" else "signup, checkout and one alert")
            + ", every webhook, bus event and queue message delivered twice and shuffled",
            events_replayed=report["events_replayed"],
            lost=report["lost"],
            duplicated=report["duplicated"],
            details={
                **{kind: replayed[kind] for kind in KINDS},
                "records compared": sum(c["clean"] for c in report["categories"].values()),
                "records differing": report["differing"],
                "sent twice": report["sent_twice"],
                "SMS": report["categories"]["sms"]["clean"],
                "e-mails": report["categories"]["email"]["clean"],
            },
        )
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert (report["lost"], report["duplicated"], report["differing"]) == (0, 0, 0)
    assert report["sent_twice"] == 0
    assert report["categories"]["sms"]["clean"] > 0
    assert report["categories"]["email"]["clean"] > 0
    # The stories send no inbound SMS: every number is +86, and Twilio does not support replies
    # from mainland China numbers.
    for kind in KINDS:
        if kind != TWILIO_INBOUND_SMS:
            assert replayed[kind] > 0, f"the replay made no second delivery of {kind}"
