"""Settings shared by every test tier: the Hypothesis profile of this run's size, and log levels."""

import logging
from collections.abc import Iterator

import pytest

from tests.hypothesis_profiles import load_profile

load_profile()

# Loggers whose level a module may change (the bench quiets the handlers' `idsentry` logger, and
# loading a handler lets Powertools set it), which later modules' log assertions depend on.
SHARED_LOGGERS = ("idsentry", "infra")


@pytest.fixture(autouse=True, scope="module")
def _restore_log_levels() -> Iterator[None]:
    """Give every test module the log levels the one before it started with."""
    levels = {name: logging.getLogger(name).level for name in SHARED_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
