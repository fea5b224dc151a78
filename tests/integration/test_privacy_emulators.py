"""What account deletion needs from the emulators and adapters: Twilio redaction, Stripe customer
redaction, SES's suppression list and the deletion of every export version."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import stripe
from moto.server import ThreadedMotoServer
from twilio.base.exceptions import TwilioRestException

from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.sms import TwilioSms
from idsentry.adapters.stripe_gateway import StripeSdkGateway
from idsentry.adapters.suppression import SesSuppressionList
from idsentry.errors import ProviderError
from infra.local.emulators import ses_suppression
from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeShim
from infra.local.emulators.twilio import TwilioEmulator, new_account_sid, new_messaging_service_sid

pytestmark = pytest.mark.integration

AUTH_TOKEN = "privacy-emulator-token"
CN_MOBILE = "+8613800138000"


class StepClock:
    """A clock the tests move, for the emulator's China windows."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def twilio() -> Iterator[TwilioEmulator]:
    with TwilioEmulator(
        new_account_sid(),
        AUTH_TOKEN,
        clock=StepClock(),
        paused=True,
        messaging_service_sid=new_messaging_service_sid(),
    ) as running:
        yield running


def _sms(twilio: TwilioEmulator) -> TwilioSms:
    service_sid = new_messaging_service_sid()
    return TwilioSms(twilio.account_sid, AUTH_TOKEN, service_sid, base_url=twilio.base_url)


def test_twilio_redacts_sent_message(twilio: TwilioEmulator) -> None:
    sms = _sms(twilio)
    sid = sms.send(CN_MOBILE, "身份哨兵验证码：123456", None)
    twilio.drain_all()

    assert sms.redact(sid) is True
    (message,) = twilio.messages()
    assert message["body"] == ""
    assert message["redacted"] is True
    assert message["status"] == "delivered"


def test_twilio_rejects_redacting_queued(twilio: TwilioEmulator) -> None:
    sms = _sms(twilio)
    sid = sms.send(CN_MOBILE, "身份哨兵验证码：654321", None)

    with pytest.raises(ProviderError) as raised:
        sms.redact(sid)

    assert raised.value.code == "20409"
    assert twilio.messages()[0]["body"] == "身份哨兵验证码：654321"


def test_twilio_redact_unknown_sid(twilio: TwilioEmulator) -> None:
    assert _sms(twilio).redact("SM" + "0" * 32) is False


def test_twilio_rejects_non_empty_body(twilio: TwilioEmulator) -> None:
    sms = _sms(twilio)
    sid = sms.send(CN_MOBILE, "提醒", None)
    twilio.drain_all()

    with pytest.raises(TwilioRestException) as raised:
        sms._twilio().messages(sid).update(body="replaced")

    assert raised.value.status == 400
    assert raised.value.code == 30400


def test_twilio_lists_messages_to_number(twilio: TwilioEmulator) -> None:
    sms = _sms(twilio)
    wanted = {sms.send(CN_MOBILE, f"消息 {index}", None) for index in range(3)}
    sms.send("+8613900139000", "别人的消息", None)

    assert set(sms.message_ids_to(CN_MOBILE)) == wanted


def test_twilio_repeat_filter_survives_redaction(twilio: TwilioEmulator) -> None:
    sms = _sms(twilio)
    first = sms.send(CN_MOBILE, "同一条提醒", None)
    twilio.drain_all()
    sms.redact(first)

    sms.send(CN_MOBILE, "同一条提醒", None)
    twilio.drain_all()

    assert twilio.messages()[-1]["status"] == "undelivered"
    assert twilio.messages()[-1]["error_code"] == 30007


@pytest.fixture
def shim() -> Iterator[StripeShim]:
    with (
        LocalStripe() as local_stripe,
        StripeShim(local_stripe.base_url, retry_delays=(0.05,), rng=random.Random(3)) as server,
    ):
        yield server


def test_stripe_customer_redacted(shim: StripeShim) -> None:
    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": shim.base_url}, max_network_retries=0
    )
    customer = client.v1.customers.create(
        params={
            "name": "王小明",
            "email": "wangxm@example.com",
            "phone": "+8613800138001",
            "metadata": {"subscriber_id": "sbr_1", "plan": "monthly"},
        }
    )
    gateway = StripeSdkGateway(TEST_API_KEY, base_url=shim.base_url)

    assert gateway.redact_customer(customer.id, "erase-test") is True
    redacted = client.v1.customers.retrieve(customer.id)

    assert (redacted.name, redacted.email, redacted.phone, redacted.address) == (
        None,
        None,
        None,
        None,
    )
    assert redacted.metadata.to_dict() == {}


def test_stripe_metadata_key_removed_alone(shim: StripeShim) -> None:
    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": shim.base_url}, max_network_retries=0
    )
    customer = client.v1.customers.create(params={"metadata": {"a": "1", "b": "2"}, "name": "Li"})

    updated = client.v1.customers.update(
        customer.id, params={"metadata": {"a": ""}, "description": "x"}
    )

    assert updated.metadata.to_dict() == {"b": "2"}
    assert updated.description == "x"
    assert updated.name == "Li"


def test_stripe_subscriptions_cancelled(shim: StripeShim) -> None:
    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": shim.base_url}, max_network_retries=0
    )
    customer = client.v1.customers.create(params={"email": "li@example.com"})
    product = client.v1.products.create(params={"name": "IDSentry monthly"})
    plan = client.v1.plans.create(
        params={"product": product.id, "amount": 1800, "currency": "cny", "interval": "month"}
    )
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )
    gateway = StripeSdkGateway(TEST_API_KEY, base_url=shim.base_url)

    assert gateway.open_subscription_ids(customer.id) == [subscription.id]
    assert gateway.cancel_subscription(subscription.id) == "canceled"
    assert gateway.open_subscription_ids(customer.id) == []


def test_stripe_redact_missing_customer(shim: StripeShim) -> None:
    gateway = StripeSdkGateway(TEST_API_KEY, base_url=shim.base_url)

    assert gateway.redact_customer("cus_missing000000", "erase-missing") is False
    assert gateway.open_subscription_ids("cus_missing000000") == []


@pytest.fixture
def moto() -> Iterator[str]:
    ses_suppression.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _client(endpoint: str, service: str) -> object:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_suppression_entry_removed_once(moto: str) -> None:
    sesv2 = _client(moto, "sesv2")
    sesv2.put_suppressed_destination(EmailAddress="Wang@Example.com", Reason="BOUNCE")  # type: ignore[attr-defined]
    suppressions = SesSuppressionList(sesv2)

    assert suppressions.remove("wang@example.com") is True
    assert suppressions.remove("wang@example.com") is False


def test_every_export_version_deleted(moto: str) -> None:
    s3 = _client(moto, "s3")
    s3.create_bucket(Bucket="exports")  # type: ignore[attr-defined]
    s3.put_bucket_versioning(Bucket="exports", VersioningConfiguration={"Status": "Enabled"})  # type: ignore[attr-defined]
    kms = _client(moto, "kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]  # type: ignore[attr-defined]
    objects = ExportObjects("exports", key_arn, s3)
    objects.put("exports/sbr_a/exp_1/export.json", b"{}", "application/json")
    objects.put("exports/sbr_a/exp_1/export.json", b'{"v": 2}', "application/json")
    s3.delete_object(Bucket="exports", Key="exports/sbr_a/exp_1/export.json")  # type: ignore[attr-defined]
    objects.put("exports/sbr_ab/exp_2/export.json", b"{}", "application/json")

    assert objects.delete_every_version("exports/sbr_a/") == 3
    remaining = s3.list_object_versions(Bucket="exports")  # type: ignore[attr-defined]
    assert [version["Key"] for version in remaining.get("Versions", [])] == [
        "exports/sbr_ab/exp_2/export.json"
    ]
    assert remaining.get("DeleteMarkers", []) == []
    with pytest.raises(ValueError):
        objects.delete_every_version("exports/sbr_a")


def test_export_found_only_while_stored(moto: str) -> None:
    s3 = _client(moto, "s3")
    s3.create_bucket(Bucket="exports-find")  # type: ignore[attr-defined]
    key_arn = _client(moto, "kms").create_key()["KeyMetadata"]["Arn"]  # type: ignore[attr-defined]
    objects = ExportObjects("exports-find", key_arn, s3)
    objects.put("exports/sbr_a/exp_1/export.json", b"{}", "application/json")

    found = objects.find("exports/sbr_a/exp_1/export.json")

    assert found is not None
    assert datetime.now(UTC) - found.last_modified < timedelta(days=1)
    assert objects.find("exports/sbr_a/exp_9/export.json") is None
