"""Hypothesis profiles for the property-based tests, chosen by the reliability suite's size.

`make test` runs the fast profile and `make chaos` (IDSENTRY_CHAOS_SIZE=full) the full one.
Both are derandomized, so a run draws the same examples on every machine and a failure seen
in CI repeats with the same command. Neither keeps an example database, so a run leaves no
files behind. Examples have no deadline, because each one calls handlers against the local
stack and its time depends on the machine's load, not on the code under test.
"""

from __future__ import annotations

from hypothesis import settings

from infra.chaos.results import chaos_size, sized

FAST_EXAMPLES = 20
FULL_EXAMPLES = 200

for name, examples in (("fast", FAST_EXAMPLES), ("full", FULL_EXAMPLES)):
    settings.register_profile(
        f"idsentry-{name}",
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
    )


def load_profile() -> None:
    """Load the profile of this run's size (IDSENTRY_CHAOS_SIZE)."""
    settings.load_profile(f"idsentry-{chaos_size()}")


def examples(fast: int, full: int) -> int:
    """Return a test's example count for this run's size, when it differs from the profile's."""
    return sized(fast=fast, full=full)
