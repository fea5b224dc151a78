"""Unit tests for the order of SMS delivery states and the meaning of Twilio error codes."""

from __future__ import annotations

import pytest
from twilio.rest.api.v2010.account.message import MessageInstance

from idsentry.services.delivery import FAILED_STATUSES, STATUS_RANK, number_state

pytestmark = pytest.mark.unit

# Message status values as the pinned twilio SDK lists them.
TWILIO_STATUSES = {
    value
    for name, value in vars(MessageInstance.Status).items()
    if not name.startswith("_") and isinstance(value, str)
}
FINAL = ("delivered", "undelivered", "failed", "canceled")
EARLY = ("accepted", "scheduled", "queued")


def test_ranks_use_twilio_statuses() -> None:
    assert "delivered" in TWILIO_STATUSES
    assert set(STATUS_RANK) <= TWILIO_STATUSES


def test_ranks_follow_progress() -> None:
    progress = ["queued", "sending", "sent", "delivered", "read"]

    ranks = [STATUS_RANK[status] for status in progress]

    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


@pytest.mark.parametrize("early", EARLY)
def test_early_states_precede_sending(early: str) -> None:
    assert STATUS_RANK[early] < STATUS_RANK["sending"]


def test_accepted_and_scheduled_share_rank() -> None:
    assert STATUS_RANK["accepted"] == STATUS_RANK["scheduled"]
    assert STATUS_RANK["accepted"] <= STATUS_RANK["queued"]


@pytest.mark.parametrize("status", ["accepted", "scheduled", "queued", "sending", "sent"])
def test_late_progress_cannot_overwrite_final(status: str) -> None:
    # record_status writes only when the new rank is higher than the stored one.
    for final in FINAL:
        assert STATUS_RANK[status] < STATUS_RANK[final]


def test_final_states_do_not_replace_each_other() -> None:
    assert len({STATUS_RANK[final] for final in FINAL}) == 1


def test_read_ranks_after_delivered() -> None:
    assert STATUS_RANK["read"] > STATUS_RANK["delivered"]
    assert STATUS_RANK["read"] == max(STATUS_RANK.values())


def test_failed_statuses_are_final() -> None:
    assert FAILED_STATUSES == {"undelivered", "failed", "canceled"}


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("21610", "opted_out"),
        ("21211", "invalid"),
        ("21614", "invalid"),
        ("30005", "invalid"),
        ("30006", "invalid"),
    ],
)
def test_number_state_of_code(code: str, state: str) -> None:
    assert number_state(code) == state


@pytest.mark.parametrize("code", ["30001", "30003", "30004", "30007", "30008", "30036", "", None])
def test_message_codes_change_nothing(code: str | None) -> None:
    assert number_state(code) is None
