"""Replay mode of the local stack: every delivery is made twice, held and shuffled, and counted."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.emulators.stripe_webhooks import WebhookEndpoint, WebhookSender
from infra.local.emulators.twilio import TwilioEmulator, new_account_sid
from infra.local.replay import Replay, install_bus_replay, remove_bus_replay
from infra.local.runtime import LocalRuntime
from infra.local.stack import LocalStack
from infra.local.template import PseudoParameters
from tests.integration.stripe_support import WebhookReceiver
from tests.integration.test_twilio_emulator import AUTH_TOKEN, SENDER, US_MOBILE, CallbackReceiver

pytestmark = pytest.mark.integration

MINI_TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "mini_template.yaml"
WAIT_SECONDS = 10.0


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(
        MINI_TEMPLATE,
        pseudo=PseudoParameters(stack_name="mini-replay"),
        visibility_timeout_override=0,
    )
    local.start()
    yield local
    local.stop()


@pytest.fixture
def recorded(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The `id` (work) or `order_id` (bus event) of every record each invocation received."""
    runtime = stack.runtime
    runtime.run_until_idle()
    seen: list[str] = []
    invoke = runtime.invoke

    def recording(function_logical_id: str, event: Any) -> Any:
        for record in event.get("Records", []):
            body = json.loads(record["body"])
            # A bus event's own `id` is the event id, so its order id names it instead.
            seen.append(str(body["detail"]["order_id"] if "detail" in body else body.get("id")))
        return invoke(function_logical_id, event)

    monkeypatch.setattr(runtime, "invoke", recording)
    yield seen
    runtime.set_replay(None)
    remove_bus_replay()


def test_queue_message_delivered_twice(stack: LocalStack, recorded: list[str]) -> None:
    runtime: LocalRuntime = stack.runtime
    replay = Replay(11, max_delay_seconds=1)
    runtime.set_replay(replay)
    stack.provisioned.client("sqs").send_message_batch(
        QueueUrl=stack.provisioned.queue_url("WorkQueue"),
        Entries=[
            {"Id": str(index), "MessageBody": json.dumps({"id": f"rp-{index}"})}
            for index in range(3)
        ],
    )

    runtime.run_until_idle()

    assert Counter(recorded) == {"rp-0": 2, "rp-1": 2, "rp-2": 2}
    assert replay.counts()["queue_messages"] == 3
    assert runtime.pending_replay_copies() == 0


def test_bus_event_routed_twice(stack: LocalStack, recorded: list[str]) -> None:
    runtime: LocalRuntime = stack.runtime
    replay = Replay(12, max_delay_seconds=0)
    install_bus_replay(replay)
    stack.provisioned.client("events").put_events(
        Entries=[
            {
                "Source": "fixture.orders",
                "DetailType": "Order.Placed",
                "Detail": json.dumps({"order_id": "rp-order"}),
                "EventBusName": stack.provisioned.event_bus_name("EventBus"),
            }
        ]
    )
    remove_bus_replay()

    runtime.set_replay(replay)
    runtime.run_until_idle()

    # Two deliveries from the bus, each of them delivered twice by SQS.
    assert recorded.count("rp-order") == 4
    assert replay.counts()["bus_events"] == 1
    assert replay.counts()["queue_messages"] == 2


def test_status_callbacks_sent_twice() -> None:
    receiver = CallbackReceiver()
    receiver.start()
    replay = Replay(13)
    try:
        with TwilioEmulator(
            new_account_sid(), AUTH_TOKEN, paused=True, callback_backoff_seconds=0.01
        ) as emulator:
            emulator.set_replay(replay)
            client = _twilio_client(emulator)
            client.messages.create(
                to=US_MOBILE, from_=SENDER, body="Twice", status_callback=receiver.url()
            )

            emulator.drain_all()
            callbacks = receiver.wait_for(4)
            assert emulator.wait_for_callbacks(timeout=WAIT_SECONDS)
    finally:
        receiver.stop()

    statuses = Counter(callback.params["MessageStatus"] for callback in callbacks)
    tokens = Counter(callback.idempotency_token for callback in callbacks)
    assert statuses == {"sent": 2, "delivered": 2}
    assert sorted(tokens.values()) == [2, 2]
    assert replay.counts()["twilio_status_callbacks"] == 2


def test_inbound_sms_posted_twice() -> None:
    receiver = CallbackReceiver()
    receiver.start()
    replay = Replay(14)
    try:
        with TwilioEmulator(
            new_account_sid(), AUTH_TOKEN, paused=True, inbound_url=receiver.url("/inbound")
        ) as emulator:
            emulator.set_replay(replay)

            reply = emulator.send_inbound(US_MOBILE, "STOP")
            posts = receiver.wait_for(2)
    finally:
        receiver.stop()

    assert reply.status == 200
    assert posts[0].params == posts[1].params
    assert posts[0].idempotency_token == posts[1].idempotency_token
    assert replay.counts()["twilio_inbound_sms"] == 1


def test_webhooks_held_then_sent_twice() -> None:
    receiver = WebhookReceiver()
    sender = WebhookSender((), random.Random(0))
    replay = Replay(15, hold_seconds=0.2)
    sender.configure(WebhookEndpoint(receiver.url, "whsec_test", None))
    sender.set_replay(replay)
    sender.start()
    try:
        for index in range(3):
            sender.submit({"id": f"evt_replay{index}", "type": "invoice.paid"})

        # No flush(): the held deliveries go out once hold_seconds have passed.
        delivered = [delivery.event()["id"] for delivery in receiver.wait_for(6)]
    finally:
        sender.stop()
        receiver.close()

    assert Counter(delivered) == {"evt_replay0": 2, "evt_replay1": 2, "evt_replay2": 2}
    assert replay.counts()["stripe_webhooks"] == 3
    assert len(sender.records()) == 6


def _twilio_client(emulator: TwilioEmulator) -> Any:
    from twilio.rest import Client

    client = Client(emulator.account_sid, AUTH_TOKEN)
    client.api.base_url = emulator.base_url
    return client
