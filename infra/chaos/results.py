"""Figures of one reliability scenario, written as JSON for the page `make chaos` writes.

A scenario is a pytest test marked `reliability`. It runs at the fast size inside `make test` and
at the full size under `make chaos` (IDSENTRY_CHAOS_SIZE=full); both sizes record their figures
through `record()`, and `python -m infra.chaos` turns the full run's records into
docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
RESULTS_ENV = "IDSENTRY_RELIABILITY_DIR"
SIZE_ENV = "IDSENTRY_CHAOS_SIZE"
DEFAULT_RESULTS = REPOSITORY_ROOT / ".local" / "reliability"
SIZES = ("fast", "full")


@dataclass(frozen=True)
class ScenarioResult:
    """Record of one scenario's work and findings. Counts are whole items, never timings.

    `scenario` is a stable id (`replay.demo`, `faults.twilio_429`, `input.signup_body`,
    `load.signups_200`); `area` groups rows on the page (replay, faults, bad input, load).
    `lost` and `duplicated` are what the scenario counted at its end; a passing scenario has
    both at 0, and the page shows them as measured.
    """

    scenario: str
    area: str
    title: str
    events_replayed: int = 0
    faults_injected: int = 0
    inputs_tried: int = 0
    lost: int = 0
    duplicated: int = 0
    details: dict[str, int | str] = field(default_factory=dict)
    size: str = field(default_factory=lambda: chaos_size())


def chaos_size() -> str:
    """`fast` inside `make test`, `full` under `make chaos`."""
    size = os.environ.get(SIZE_ENV, "fast")
    if size not in SIZES:
        raise ValueError(f"{SIZE_ENV} must be one of {', '.join(SIZES)}, got {size!r}")
    return size


def full_size() -> bool:
    """Return whether this run is `make chaos`, which runs every scenario at its full size."""
    return chaos_size() == "full"


def sized(fast: int, full: int) -> int:
    """Pick a scenario's count for this run's size."""
    return full if full_size() else fast


def results_dir() -> Path:
    """Return the folder where scenarios write their records for this run."""
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS)


def record(result: ScenarioResult) -> Path:
    """Write one scenario's figures; a later record of the same scenario replaces it."""
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.scenario}.json"
    path.write_text(json.dumps(asdict(result), ensure_ascii=False, indent=2) + "\n", "utf-8")
    return path


def load_results(folder: Path) -> list[ScenarioResult]:
    """Read every record of a run, ordered by area and scenario id."""
    results = [
        ScenarioResult(**json.loads(path.read_text("utf-8")))
        for path in sorted(folder.glob("*.json"))
    ]
    return sorted(results, key=lambda result: (result.area, result.scenario))
