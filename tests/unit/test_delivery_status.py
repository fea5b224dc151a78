"""Unit tests for the order of SMS delivery states."""

from __future__ import annotations

import pytest
from twilio.rest.api.v2010.account.message import MessageInstance

from idsentry.services.delivery import STATUS_RANK

pytestmark = pytest.mark.unit

# Message status values as the pinned twilio SDK lists them.
TWILIO_STATUSES = {
    value
    for name, value in vars(MessageInstance.Status).items()
    if not name.startswith("_") and isinstance(value, str)
}
FINAL = ("delivered", "undelivered", "failed")


def test_ranks_use_twilio_statuses() -> None:
    assert "delivered" in TWILIO_STATUSES
    assert set(STATUS_RANK) <= TWILIO_STATUSES


def test_ranks_follow_progress() -> None:
    progress = ["accepted", "queued", "sending", "sent", "delivered"]

    ranks = [STATUS_RANK[status] for status in progress]

    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


@pytest.mark.parametrize("final", FINAL)
def test_final_states_rank_highest(final: str) -> None:
    assert STATUS_RANK[final] == max(STATUS_RANK.values())


@pytest.mark.parametrize("status", ["accepted", "queued", "sending", "sent"])
def test_late_progress_cannot_overwrite_final(status: str) -> None:
    # apply_sms_status writes only when the new rank is higher than the stored one.
    for final in FINAL:
        assert STATUS_RANK[status] < STATUS_RANK[final]


def test_final_states_do_not_replace_each_other() -> None:
    assert len({STATUS_RANK[final] for final in FINAL}) == 1
