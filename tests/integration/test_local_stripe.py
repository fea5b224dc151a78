"""Integration tests of the in-process localstripe server, driven through the official stripe SDK."""

from __future__ import annotations

import gc
import http.client
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from localstripe import webhooks

from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from tests.integration.stripe_support import LoopbackOnlyClient, WebhookReceiver

pytestmark = pytest.mark.integration

# stripe-python 16.1.0 pins this version (stripe/_api_version.py) and sends it as Stripe-Version.
PINNED_API_VERSION = "2026-10-28.endive"
# localstripe 1.15.10 pickles its store here (localstripe/resources.py, Store.dump_to_disk).
LOCALSTRIPE_PICKLE = Path("/tmp/localstripe.pickle")
WEBHOOK_SECRET = "whsec_local_test"
WAIT_SECONDS = 10.0


@pytest.fixture
def emulator() -> Iterator[LocalStripe]:
    with LocalStripe() as local_stripe:
        yield local_stripe


@pytest.fixture
def http_client() -> LoopbackOnlyClient:
    return LoopbackOnlyClient()


@pytest.fixture
def client(emulator: LocalStripe, http_client: LoopbackOnlyClient) -> stripe.StripeClient:
    return make_client(emulator, http_client)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    webhook_receiver = WebhookReceiver()
    yield webhook_receiver
    webhook_receiver.close()


def make_client(emulator: LocalStripe, http_client: LoopbackOnlyClient) -> stripe.StripeClient:
    """Build an SDK client whose API base is the emulator, never api.stripe.com."""
    client = stripe.StripeClient(
        TEST_API_KEY,
        base_addresses={"api": emulator.base_url},
        http_client=http_client,
        max_network_retries=0,
    )
    # stripe-python 16 exposes no public getter for the base, so read the requestor's options.
    assert client._requestor._options.base_addresses.get("api") == emulator.base_url
    return client


def subscribe(client: stripe.StripeClient) -> tuple[stripe.Customer, stripe.Subscription]:
    """Create a customer with a default test card and a monthly subscription to a legacy Plan."""
    customer = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_001"}})
    product = client.v1.products.create(params={"name": "IDSentry monthly"})
    plan = client.v1.plans.create(
        params={"product": product.id, "amount": 1800, "currency": "cny", "interval": "month"}
    )

    # Attaching the test id pm_card_visa creates a new PaymentMethod with its own id, as on Stripe.
    payment_method = client.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": customer.id}
    )
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": payment_method.id}}
    )

    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )
    return customer, subscription


def file_state(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_mtime_ns, status.st_size


def test_sdk_pinned_api_version(
    client: stripe.StripeClient, http_client: LoopbackOnlyClient
) -> None:
    client.v1.customers.list()

    assert stripe.api_version == PINNED_API_VERSION
    assert http_client.calls
    assert http_client.calls[0][2]["Stripe-Version"] == PINNED_API_VERSION


def test_sdk_requests_stay_on_emulator(
    emulator: LocalStripe, client: stripe.StripeClient, http_client: LoopbackOnlyClient
) -> None:
    subscribe(client)

    assert stripe.DEFAULT_API_BASE == "https://api.stripe.com"
    assert http_client.calls
    for _, url, _ in http_client.calls:
        assert url.startswith(emulator.base_url + "/v1/")


def test_base_url_loopback(emulator: LocalStripe) -> None:
    assert emulator.base_url == f"http://127.0.0.1:{emulator.port}"
    assert emulator.port > 0


def test_customer_metadata(client: stripe.StripeClient) -> None:
    created = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_001"}})

    fetched = client.v1.customers.retrieve(created.id)

    assert fetched.id.startswith("cus_")
    assert fetched.metadata.to_dict() == {"subscriber_id": "sbr_001"}
    assert fetched.livemode is False


def test_subscription_card_payment(client: stripe.StripeClient) -> None:
    customer, subscription = subscribe(client)

    assert subscription.status == "active"
    assert subscription.customer == customer.id
    assert isinstance(subscription.latest_invoice, str)

    invoice = client.v1.invoices.retrieve(subscription.latest_invoice)
    assert invoice.status == "paid"
    assert invoice.amount_paid == 1800
    assert invoice.currency == "cny"
    assert invoice.customer == customer.id
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == subscription.id


def test_prices_route_missing(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "IDSentry monthly"})

    with pytest.raises(stripe.APIError) as raised:
        client.v1.prices.create(
            params={
                "product": product.id,
                "unit_amount": 1800,
                "currency": "cny",
                "recurring": {"interval": "month"},
            }
        )

    assert raised.value.http_status == 404


def test_event_list_and_retrieve(client: stripe.StripeClient) -> None:
    customer, _ = subscribe(client)

    events = client.v1.events.list(params={"limit": 100}).data
    types = [event.type for event in events]
    assert "customer.created" in types
    assert "invoice.created" in types
    assert "invoice.payment_succeeded" in types
    assert "customer.subscription.created" in types

    created = next(event for event in events if event.type == "customer.created")
    fetched = client.v1.events.retrieve(created.id)
    assert fetched.id == created.id
    assert fetched.data.object["id"] == customer.id

    filtered = client.v1.events.list(params={"type": "invoice.created"}).data
    assert [event.type for event in filtered] == ["invoice.created"]


def test_webhook_signed_delivery(
    emulator: LocalStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    emulator.configure_webhook(receiver.url, WEBHOOK_SECRET, ["customer.created"])

    customer = client.v1.customers.create(params={"metadata": {"subscriber_id": "sbr_002"}})
    delivery = receiver.wait_for(1)[0]

    event = stripe.Webhook.construct_event(
        delivery.body, delivery.signature, WEBHOOK_SECRET, tolerance=300
    )
    assert event.type == "customer.created"
    assert event.data.object["id"] == customer.id
    assert event.data.object["metadata"].to_dict() == {"subscriber_id": "sbr_002"}

    # localstripe signs with the event's creation time, not the send time.
    stored = client.v1.events.retrieve(event.id)
    assert delivery.signature.startswith(f"t={stored.created},v1=")


def test_webhook_signature_rejects_tampering(
    emulator: LocalStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    emulator.configure_webhook(receiver.url, WEBHOOK_SECRET, ["customer.created"])

    client.v1.customers.create()
    delivery = receiver.wait_for(1)[0]

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            delivery.body, delivery.signature, "whsec_other", tolerance=300
        )
    tampered = delivery.body.replace(b'"livemode": false', b'"livemode": true')
    assert tampered != delivery.body
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, delivery.signature, WEBHOOK_SECRET, tolerance=300)


def test_webhook_event_filter(
    emulator: LocalStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    emulator.configure_webhook(receiver.url, WEBHOOK_SECRET, ["customer.subscription.created"])

    _, subscription = subscribe(client)
    delivery = receiver.wait_for(1)[0]

    event = stripe.Webhook.construct_event(
        delivery.body, delivery.signature, WEBHOOK_SECRET, tolerance=300
    )
    assert event.type == "customer.subscription.created"
    assert event.data.object["id"] == subscription.id
    # localstripe builds this event after the first invoice is paid.
    assert event.data.object["status"] == "active"


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.10/stripe",
        "http://localhost:8080/stripe",
        "https://127.0.0.1:8443/stripe",
        "ftp://127.0.0.1/stripe",
        "not a url",
    ],
)
def test_configure_webhook_rejects_url(emulator: LocalStripe, url: str) -> None:
    with pytest.raises(ValueError, match="url"):
        emulator.configure_webhook(url, WEBHOOK_SECRET)

    assert webhooks._webhooks == {}


def test_configure_webhook_rejects_arguments(emulator: LocalStripe) -> None:
    with pytest.raises(ValueError, match="secret"):
        emulator.configure_webhook("http://127.0.0.1:9/stripe", "")
    with pytest.raises(ValueError, match="events"):
        emulator.configure_webhook("http://127.0.0.1:9/stripe", WEBHOOK_SECRET, "invoice.paid")
    with pytest.raises(ValueError, match="events"):
        emulator.configure_webhook("http://127.0.0.1:9/stripe", WEBHOOK_SECRET, [""])
    with pytest.raises(ValueError, match="endpoint_id"):
        emulator.configure_webhook(
            "http://127.0.0.1:9/stripe", WEBHOOK_SECRET, endpoint_id="../data"
        )

    assert webhooks._webhooks == {}


@pytest.mark.parametrize(
    "url",
    ["http://192.0.2.10/stripe", "http://localhost:8080/stripe", 8080, ["http://127.0.0.1:9/"]],
)
def test_config_route_rejects_url(emulator: LocalStripe, url: object) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=WAIT_SECONDS)
    try:
        connection.request(
            "POST",
            "/_config/webhooks/remote",
            body=json.dumps({"url": url, "secret": WEBHOOK_SECRET}),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 400
    assert body["error"]["param"] == "url"
    assert webhooks._webhooks == {}


def test_instances_do_not_share_state(
    http_client: LoopbackOnlyClient, receiver: WebhookReceiver
) -> None:
    with LocalStripe() as first:
        client = make_client(first, http_client)
        first.configure_webhook(receiver.url, WEBHOOK_SECRET)
        customer, _ = subscribe(client)
        assert client.v1.events.list().data

    with LocalStripe() as second:
        client = make_client(second, http_client)

        assert client.v1.customers.list().data == []
        assert client.v1.events.list().data == []
        assert client.v1.invoices.list().data == []
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.customers.retrieve(customer.id)
        assert webhooks._webhooks == {}


def test_no_pickle_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = file_state(LOCALSTRIPE_PICKLE)

    with LocalStripe() as local_stripe:
        client = make_client(local_stripe, LoopbackOnlyClient())
        subscribe(client)
        client.v1.customers.delete(client.v1.customers.create().id)

    assert os.listdir(tmp_path) == []
    assert file_state(LOCALSTRIPE_PICKLE) == before


def test_stop_releases_thread_and_port(
    http_client: LoopbackOnlyClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    threads_before = set(threading.enumerate())

    local_stripe = LocalStripe().start()
    port = local_stripe.port
    client = make_client(local_stripe, http_client)
    # Nothing listens on port 9, and localstripe waits about a second before each delivery,
    # so stop() has a pending delivery task to cancel.
    local_stripe.configure_webhook("http://127.0.0.1:9/stripe", WEBHOOK_SECRET)
    client.v1.customers.create()
    local_stripe.stop()
    # A task left pending on a closed loop is reported by asyncio when it is collected.
    gc.collect()

    assert set(threading.enumerate()) - threads_before == set()
    assert [record.getMessage() for record in caplog.records] == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT_SECONDS).close()
    with pytest.raises(RuntimeError, match="not started"):
        _ = local_stripe.base_url

    # The port is free again, and a stopped instance can start a second time.
    with LocalStripe(port=port) as again:
        assert again.port == port
    local_stripe.start()
    local_stripe.stop()
    local_stripe.stop()


def test_second_running_instance_rejected(emulator: LocalStripe) -> None:
    other = LocalStripe()

    with pytest.raises(RuntimeError, match="another LocalStripe"):
        other.start()
    with pytest.raises(RuntimeError, match="already started"):
        emulator.start()

    other.stop()
    assert emulator.port > 0


def test_invalid_port_rejected() -> None:
    with pytest.raises(ValueError, match="port"):
        LocalStripe(port=70000)


def shim_route(
    emulator: LocalStripe, path: str, body: str = "", api_key: str | None = TEST_API_KEY
) -> tuple[int, Any]:
    """POST to one of the routes LocalStripe adds for the Stripe shim and return status and JSON."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=WAIT_SECONDS)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        document = json.loads(response.read())
    finally:
        connection.close()
    return response.status, document


def test_shim_routes_need_api_key(emulator: LocalStripe, client: stripe.StripeClient) -> None:
    _, subscription = subscribe(client)

    status, _ = shim_route(emulator, f"/_shim/subscriptions/{subscription.id}/renew", api_key=None)

    assert status == 401
    assert len(client.v1.invoices.list().data) == 1


def test_shim_renew_route(emulator: LocalStripe, client: stripe.StripeClient) -> None:
    _, subscription = subscribe(client)

    status, invoice = shim_route(
        emulator, f"/_shim/subscriptions/{subscription.id}/renew", "balance=-500"
    )

    renewed = client.v1.subscriptions.retrieve(subscription.id)
    assert status == 200
    assert invoice["status"] == "paid"
    assert invoice["amount_paid"] == 1300
    # localstripe's legacy sign: a credit is positive.
    assert invoice["starting_balance"] == 500
    assert invoice["period_start"] == subscription.to_dict()["current_period_end"]
    assert renewed.latest_invoice == invoice["id"]
    assert renewed.status == "active"
    # The balance applied to this invoice only, and localstripe's customer keeps none.
    customer = client.v1.customers.retrieve(str(subscription.customer)).to_dict()
    assert customer["account_balance"] == 0


def test_shim_pay_route_declined(emulator: LocalStripe, client: stripe.StripeClient) -> None:
    customer, subscription = subscribe(client)
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": failing.id}}
    )
    _, renewal = shim_route(emulator, f"/_shim/subscriptions/{subscription.id}/renew")

    status, error = shim_route(emulator, f"/_shim/invoices/{renewal['id']}/pay")

    assert renewal["status"] == "open"
    assert client.v1.subscriptions.retrieve(subscription.id).status == "past_due"
    assert status == 402
    assert error["error"]["type"] == "card_error"
    assert error["error"]["code"] == "card_declined"
    assert error["error"]["charge"].startswith("ch_")
    assert client.v1.invoices.retrieve(renewal["id"]).attempt_count == 2
