"""The billing consumer through the local runtime, reading events from the local Stripe server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from idsentry.adapters.table import MainTable
from idsentry.models.billing_jobs import StripeEventJob
from idsentry.routes.billing_jobs import retry_delay
from infra.local.emulators.stripe import TEST_API_KEY
from infra.local.service import LocalService

pytestmark = pytest.mark.integration

SUBSCRIBER = "sbr_01M91F0000000000000000000A"


@pytest.fixture
def stripe_client(local_service: LocalService) -> stripe.StripeClient:
    assert local_service.stripe is not None
    return stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": local_service.stripe.base_url}, max_network_retries=0
    )


@pytest.fixture
def table(local_service: LocalService) -> Iterator[MainTable]:
    assert local_service.stack is not None
    main = MainTable("idsentry-local", local_service.stack.runtime.client("dynamodb"))
    main.put(
        {
            "pk": f"SUB#{SUBSCRIBER}",
            "sk": "PROFILE",
            "subscriber_id": SUBSCRIBER,
            "status": "pending_payment",
        }
    )
    yield main
    main.delete(f"SUB#{SUBSCRIBER}", "PROFILE")


def _subscribe(client: stripe.StripeClient, metadata: dict[str, str]) -> Any:
    customer = client.v1.customers.create(params={"metadata": metadata})
    product = client.v1.products.create(params={"name": "IDSentry monthly"})
    plan = client.v1.plans.create(
        params={"product": product.id, "amount": 1800, "currency": "cny", "interval": "month"}
    )
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    return client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}], "metadata": metadata}
    )


def _event_for(client: stripe.StripeClient, event_type: str, object_id: str) -> str:
    # The local server lists events oldest first, so read a full page.
    for event in client.v1.events.list(params={"limit": 100}).data:
        if event.type == event_type and event.data.object["id"] == object_id:
            return str(event.id)
    raise AssertionError(f"local Stripe has no {event_type} event for the object")


def _enqueue(service: LocalService, event_id: str) -> str:
    assert service.stack is not None
    url = service.stack.runtime.environment["STRIPE_EVENTS_QUEUE_URL"]
    service.stack.runtime.client("sqs").send_message(
        QueueUrl=url, MessageBody=StripeEventJob(event_id=event_id).model_dump_json()
    )
    return url


def test_subscription_event_entitles(
    local_service: LocalService, stripe_client: stripe.StripeClient, table: MainTable
) -> None:
    assert local_service.stack is not None
    subscription = _subscribe(stripe_client, {"subscriber_id": SUBSCRIBER})
    event_id = _event_for(stripe_client, "customer.subscription.created", subscription.id)

    _enqueue(local_service, event_id)
    report = local_service.stack.runtime.run_until_idle(max_rounds=20, deadline_s=60)

    assert report.succeeded >= 1
    profile = table.get(f"SUB#{SUBSCRIBER}", "PROFILE")
    assert profile is not None
    assert profile["status"] == subscription.status
    assert profile["subscription_id"] == subscription.id
    assert table.get(f"STRIPE_EVENT#{event_id}", "APPLIED") is not None


def _waiting(service: LocalService) -> int:
    """Return how many messages the Stripe event queue holds, hidden or visible."""
    assert service.stack is not None
    attributes = service.stack.runtime.client("sqs").get_queue_attributes(
        QueueUrl=service.stack.runtime.environment["STRIPE_EVENTS_QUEUE_URL"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_unlinked_event_deferred(
    local_service: LocalService, stripe_client: stripe.StripeClient, table: MainTable
) -> None:
    assert local_service.stack is not None
    subscription = _subscribe(stripe_client, {})
    event_id = _event_for(stripe_client, "customer.subscription.created", subscription.id)
    # The shim's own webhook deliveries of this subscription are deferred too: let them land
    # and empty the queue, so that only the job below is left in it. Their deferrals may end
    # while the queue runs, so the count includes visible messages as well as hidden ones.
    assert local_service.stripe_shim is not None
    local_service.stripe_shim.flush()
    local_service.stack.runtime.run_until_idle(max_rounds=20, deadline_s=60)
    url = local_service.stack.runtime.environment["STRIPE_EVENTS_QUEUE_URL"]
    local_service.stack.runtime.client("sqs").purge_queue(QueueUrl=url)
    _enqueue(local_service, event_id)

    local_service.stack.runtime.run_until_idle(max_rounds=20, deadline_s=60)

    # The job was neither applied nor deleted: it waits in the queue for its next try.
    assert _waiting(local_service) == 1
    assert table.get(f"STRIPE_EVENT#{event_id}", "APPLIED") is None


@pytest.mark.parametrize(
    ("count", "delay"), [(1, 30), (2, 60), (3, 120), (5, 480), (6, 900), (9, 900)]
)
def test_retry_delay_grows(count: int, delay: int) -> None:
    assert retry_delay(count) == delay
