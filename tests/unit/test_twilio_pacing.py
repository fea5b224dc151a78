"""The Twilio emulator's pacing: when a dequeued message's send counts as started."""

from infra.local.emulators.twilio import PACING_CARRY_S, pacing_slot


def test_pacing_keeps_schedule_when_late() -> None:
    # The previous message's slot ended at 10.0; the thread woke at 10.02.
    assert pacing_slot(next_free=10.0, enqueued_at=3.0, now=10.02) == 10.0


def test_pacing_starts_late_arrival_on_arrival() -> None:
    assert pacing_slot(next_free=10.0, enqueued_at=12.5, now=12.51) == 12.5


def test_pacing_carries_bounded_lateness() -> None:
    # After a pause of a minute the queue does not send a minute's worth of messages at once.
    assert pacing_slot(next_free=10.0, enqueued_at=3.0, now=70.0) == 70.0 - PACING_CARRY_S
