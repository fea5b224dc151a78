"""Replay a demo story with every delivery made twice and shuffled, and compare it to a clean run.

`python -m infra.chaos.replay` plays the story twice on fresh local stacks, without printing
it: once as `make demo` does, then in replay mode (infra.local.replay), where every Stripe
webhook, Twilio status callback and inbound SMS, EventBridge bus event and SQS message is
delivered twice and in shuffled order. After each run it waits until nothing is in flight and
captures the end state (infra.chaos.end_state). It then compares the two (infra.chaos.compare)
and exits 0 only when the replay's end state equals the clean one (nothing lost, nothing
duplicated, nothing different) and the replay sent no SMS or e-mail twice.

`--size short` plays events/demo/replay_short.json (signup, verification, checkout and one
alert) instead of the whole story. Each run's demo output goes to `.local/replay/clean.txt`
and `replay.txt`, its normalised end state to `clean.records.jsonl` and
`replay.records.jsonl`, and the service logs of both runs to `service.log`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from infra.chaos.compare import Comparison, Record, compare, normalise, repeated_sends
from infra.chaos.end_state import EndState, capture, settle
from infra.local.demo import (
    DEFAULT_STORY,
    EXIT_OK,
    Demo,
    StoryError,
    _service_logs_to,
    load_story,
)
from infra.local.replay import Replay
from infra.local.stack import REPOSITORY_ROOT

SHORT_STORY = REPOSITORY_ROOT / "events" / "demo" / "replay_short.json"
STORIES = {"short": SHORT_STORY, "demo": DEFAULT_STORY}
OUTPUT_DIR = REPOSITORY_ROOT / ".local" / "replay"
DEFAULT_SEED = 20261205
# Upper bound for the stack to settle after the last step. Replay copies wait up to
# Replay.max_delay_seconds in SQS, and each can start more work.
SETTLE_SECONDS = 120.0


class ReplayRunError(RuntimeError):
    """A run of the story failed before its end state could be captured."""


@dataclass
class RunOutcome:
    """One run of the story: its end state and how long it took."""

    state: EndState
    seconds: float


@dataclass
class ReplayReport:
    """The figures of one clean run and one replay run of a story, and their comparison."""

    story: str
    seed: int
    replayed: dict[str, int]
    clean_seconds: float
    replay_seconds: float
    lost: int
    duplicated: int
    differing: int
    sent_twice: int
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return (self.lost, self.duplicated, self.differing, self.sent_twice) == (0, 0, 0, 0)

    @property
    def events_replayed(self) -> int:
        return sum(self.replayed.values())


def run_story(story_path: Path, replay: Replay | None, name: str, output_dir: Path) -> RunOutcome:
    """Play the story quietly on a fresh stack and return its settled end state.

    The demo's output goes to `<output_dir>/<name>.txt`. Raises ReplayRunError naming that
    file when a step fails.
    """
    story = load_story(story_path)
    text_path = output_dir / f"{name}.txt"
    captured: list[EndState] = []

    def inspect(demo: Demo) -> None:
        settle(demo, SETTLE_SECONDS)
        captured.append(capture(demo))

    started = time.monotonic()
    with text_path.open("w", encoding="utf-8") as out:
        status = Demo(story, "en", out, replay=replay).run(inspect)
    seconds = time.monotonic() - started
    if status != EXIT_OK or not captured:
        raise ReplayRunError(
            f"the {name} run of {story_path.name} failed (exit status {status}); see "
            f"{text_path} and {output_dir / 'service.log'}"
        )
    return RunOutcome(captured[0], seconds)


def replay_story(
    story_path: Path, *, seed: int = DEFAULT_SEED, output_dir: Path = OUTPUT_DIR
) -> ReplayReport:
    """Run the story clean and in replay mode, and compare the two end states."""
    output_dir.mkdir(parents=True, exist_ok=True)
    replay = Replay(seed)
    # One log file for both runs: the handlers' Powertools logger keeps the stream it found
    # at its first import for the rest of the process.
    with (
        (output_dir / "service.log").open("w", encoding="utf-8") as log,
        _service_logs_to(log),
    ):
        clean = run_story(story_path, None, "clean", output_dir)
        replayed = run_story(story_path, replay, "replay", output_dir)

    clean_records = normalise(clean.state)
    replay_records = normalise(replayed.state)
    write_records(output_dir / "clean.records.jsonl", clean_records)
    write_records(output_dir / "replay.records.jsonl", replay_records)
    comparison: Comparison = compare(clean_records, replay_records)
    return ReplayReport(
        story=_shown_path(story_path),
        seed=seed,
        replayed=replay.counts(),
        clean_seconds=round(clean.seconds, 1),
        replay_seconds=round(replayed.seconds, 1),
        lost=comparison.lost,
        duplicated=comparison.duplicated,
        differing=comparison.differing,
        sent_twice=repeated_sends(replayed.state),
        categories={
            name: {
                "clean": diff.first,
                "replay": diff.second,
                "lost": diff.lost,
                "duplicated": diff.duplicated,
                "differing": diff.differing,
            }
            for name, diff in comparison.categories.items()
        },
        examples=[
            f"{name}: {example}"
            for name, diff in comparison.categories.items()
            for example in diff.examples
        ],
    )


def write_records(path: Path, records: list[Record]) -> None:
    """Write normalised records one JSON object a line, sorted, for a look at a difference."""
    lines = sorted(
        json.dumps(
            {
                "category": r.category,
                "kind": r.kind,
                "key": r.key,
                "content": json.loads(r.content),
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        for r in records
    )
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(REPOSITORY_ROOT))
    except ValueError:
        return str(path)


def print_report(report: ReplayReport) -> None:
    """Print the deliveries made twice and the comparison, one line per category."""
    print(f"story {report.story}, seed {report.seed}")
    print(f"clean run {report.clean_seconds} s, replay run {report.replay_seconds} s")
    print("deliveries made twice: " + ", ".join(f"{k} {v}" for k, v in report.replayed.items()))
    for name, counts in report.categories.items():
        print(
            f"{name}: clean {counts['clean']}, replay {counts['replay']}, lost {counts['lost']}, "
            f"duplicated {counts['duplicated']}, differing {counts['differing']}"
        )
    for example in report.examples:
        print(f"  {example}")
    verdict = "identical" if report.identical else "DIFFERENT"
    print(
        f"end state {verdict}: lost {report.lost}, duplicated {report.duplicated}, "
        f"differing {report.differing}; SMS or e-mails sent twice in the replay {report.sent_twice}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the replay; return 0 when the end states are identical, 1 when not, 2 on error."""
    parser = argparse.ArgumentParser(prog="python -m infra.chaos.replay", description=__doc__)
    parser.add_argument(
        "--size",
        choices=sorted(STORIES),
        default="demo",
        help="demo: the whole demo story (default); short: signup, checkout and one alert",
    )
    parser.add_argument("--story", type=Path, help="another story file (overrides --size)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the shuffles")
    parser.add_argument("--json", type=Path, help="also write the report to this JSON file")
    options = parser.parse_args(argv)

    story_path = (options.story or STORIES[options.size]).resolve()
    try:
        report = replay_story(story_path, seed=options.seed)
    except (ReplayRunError, StoryError, TimeoutError) as exc:
        print(f"replay failed: {exc}", file=sys.stderr)
        return 2

    print_report(report)
    if options.json:
        payload = {**asdict(report), "events_replayed": report.events_replayed}
        options.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if report.identical else 1


if __name__ == "__main__":
    sys.exit(main())
