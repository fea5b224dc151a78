"""Replay delivery for the local stack: every webhook, bus event and queue message twice, shuffled.

Stripe, Twilio, EventBridge and SQS all deliver at least once and out of order. A local stack
started with `LocalService(replay=Replay(seed=7))` makes that happen to every delivery:

- Stripe webhooks (the Stripe shim's sender): each delivery is made twice, and deliveries are
  held for `hold_seconds` (or until `flush()`) and then sent in a shuffled order;
- Twilio status callbacks: each callback is sent twice, and a message's callbacks are held until
  the message is drained and then sent shuffled. Inbound SMS are posted twice with the same
  MessageSid and idempotency token;
- EventBridge bus events: moto puts every event that a rule routes to a queue into that queue
  twice;
- SQS messages (the local runtime's pollers): every received message is sent to its queue once
  more, delayed by 0 to `max_delay_seconds` seconds, and each batch is shuffled before the
  handler receives it.

This exists only in the local stack, for the reliability suite (`python -m infra.chaos.replay`).
The seed fixes each component's random choices, but the threads of the stack still interleave
differently from run to run, so two runs with one seed are alike but not identical.
"""

from __future__ import annotations

import copy
import random
import threading
from collections import Counter
from typing import Any, Final

# Kinds of the second deliveries that the mode counts.
STRIPE_WEBHOOKS: Final = "stripe_webhooks"
TWILIO_STATUS_CALLBACKS: Final = "twilio_status_callbacks"
TWILIO_INBOUND_SMS: Final = "twilio_inbound_sms"
BUS_EVENTS: Final = "bus_events"
QUEUE_MESSAGES: Final = "queue_messages"
KINDS: Final = (
    STRIPE_WEBHOOKS,
    TWILIO_STATUS_CALLBACKS,
    TWILIO_INBOUND_SMS,
    BUS_EVENTS,
    QUEUE_MESSAGES,
)


class Replay:
    """Settings, random sources and counts of one replay run.

    `hold_seconds` is how long the Stripe shim keeps webhook deliveries back before it sends
    them shuffled. `max_delay_seconds` is the longest SQS delay of a message's second copy (SQS
    allows at most 900).
    """

    def __init__(self, seed: int, *, hold_seconds: float = 0.5, max_delay_seconds: int = 2) -> None:
        if hold_seconds < 0:
            raise ValueError(f"hold_seconds must not be negative, got {hold_seconds}")
        if not 0 <= max_delay_seconds <= 900:
            raise ValueError(f"max_delay_seconds must be 0 to 900, got {max_delay_seconds}")
        self.seed = seed
        self.hold_seconds = hold_seconds
        self.max_delay_seconds = max_delay_seconds
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def random(self, stream: str) -> random.Random:
        """Return a random source of one component, seeded from the seed and `stream`.

        Each component has its own source, so its choices do not depend on how the other
        components' threads interleave with it.
        """
        return random.Random(f"{self.seed}:{stream}")

    def count(self, kind: str, deliveries: int = 1) -> None:
        """Count deliveries of `kind` that the mode made a second time."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        with self._lock:
            self._counts[kind] += deliveries

    def counts(self) -> dict[str, int]:
        """Return the second deliveries made so far, by kind (every kind, zeros included)."""
        with self._lock:
            return {kind: self._counts[kind] for kind in KINDS}


# The replay whose bus events moto delivers twice. moto's state is per process, like this.
_bus_replay: Replay | None = None
_bus_lock = threading.Lock()
_patched = False


def install_bus_replay(replay: Replay) -> None:
    """Make the moto of this process put every rule-routed event into its queue twice.

    moto must run in this process (not `moto_process=True`). `remove_bus_replay()` undoes it.
    """
    global _bus_replay, _patched
    from moto.events.models import Rule

    with _bus_lock:
        if not _patched:
            send_once = Rule._send_to_sqs_queue

            def send_to_sqs_queue(
                rule: Any, resource_id: str, event: dict[str, Any], group_id: str | None = None
            ) -> None:
                # moto rewrites the event's time in place, so each send gets its own copy.
                send_once(rule, resource_id, copy.deepcopy(event), group_id)
                active = _bus_replay
                if active is not None:
                    active.count(BUS_EVENTS)
                    send_once(rule, resource_id, copy.deepcopy(event), group_id)

            Rule._send_to_sqs_queue = send_to_sqs_queue  # type: ignore[method-assign,assignment]
            _patched = True
        _bus_replay = replay


def remove_bus_replay() -> None:
    """Deliver bus events once again."""
    global _bus_replay
    with _bus_lock:
        _bus_replay = None
