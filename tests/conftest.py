"""Settings shared by every test tier: the Hypothesis profile of this run's size, and log levels."""

import logging
from collections.abc import Iterator

import pytest

from tests.hypothesis_profiles import load_profile

load_profile()

# Loggers that a module may quiet (the bench sets the handlers' `idsentry` logger to WARNING),
# which later modules' log assertions depend on. Powertools sets `idsentry` to INFO when it
# loads a handler, and later modules rely on that level too, so it is kept.
SHARED_LOGGERS = ("idsentry", "infra")


@pytest.fixture(autouse=True, scope="module")
def _undo_quieted_loggers() -> Iterator[None]:
    """Lower a shared logger that a test module raised above INFO back to where it was."""
    levels = {name: logging.getLogger(name).level for name in SHARED_LOGGERS}
    yield
    for name, level in levels.items():
        allowed = max(level, logging.INFO)
        if logging.getLogger(name).level > allowed:
            logging.getLogger(name).setLevel(allowed)
