"""Subscribers with data in every store of the local stack, and a scan for what remains of them."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
import stripe

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.dynamo import from_item
from idsentry.adapters.keys import DataKeyStore
from idsentry.adapters.table import MainTable
from idsentry.clock import utc_now
from idsentry.crypto import Pepper
from idsentry.identifiers import IdentifierKind, canonical_bank_card, mask
from idsentry.services.alerts import AlertDeps, review_exposure
from idsentry.services.exposures import record_exposure, watch_writes
from idsentry.services.hibp_catalogue import breach_item
from idsentry.services.risk import load_rules
from idsentry.services.subscriber_records import WATCHED_KINDS, WatchKey, load_records, watch_keys
from infra.local import privacy_scan
from infra.local.emulators.stripe import TEST_API_KEY
from infra.local.privacy_scan import Finding
from infra.local.service import LocalService

TABLE = "idsentry-local"
CONSENTS = {
    kind: {"accepted": True, "version": "2026-12-01"}
    for kind in ("terms", "sensitive_personal_information", "cross_border_transfer")
}
BREACH = {
    "Name": "PrivacyTestShop2026",
    "Title": "Privacy Test Shop",
    "Domain": "privacy-shop.example.com",
    "BreachDate": "2026-10-01",
    "AddedDate": "2026-11-20T00:00:00Z",
    "ModifiedDate": "2026-11-20T00:00:00Z",
    "DataClasses": ["Names", "Government issued IDs", "Phone numbers", "Email addresses"],
    "IsVerified": True,
}
# Identities the real-name emulator confirms (events/demo/identities.json).
PEOPLE = {
    "wang": {
        "name": "王小明",
        "id_number": "110105199003071239",
        "mobile": "+8613800138001",
        "email": "wangxm.privacy@example.com",
    },
    "alice": {
        "name": "Alice Li",
        "id_number": "310104198512120023",
        "mobile": "+8613900139002",
        "email": "alice.privacy@example.com",
    },
    "chen": {
        "name": "陈静",
        "id_number": "320103197506187775",
        "mobile": "+8613600136006",
        "email": "chen.privacy@example.com",
    },
    "li": {
        "name": "李娜",
        "id_number": "440304199208154565",
        "mobile": "+8613700137003",
        "email": "li.privacy@example.com",
    },
    "sun": {
        "name": "孙悦",
        "id_number": "110102199406120024",
        "mobile": "+8618800188008",
        "email": "sun.privacy@example.com",
    },
}
# A test card number that passes the Luhn check; only its fingerprint and last four are stored.
BANK_CARD = "6222020200112233446"


@dataclass
class Subscriber:
    """One person signed up, verified and paid through the local stack."""

    person: str
    subscriber_id: str
    signup_id: str
    referral_code: str
    details: dict[str, str] = field(default_factory=dict)


def runtime(service: LocalService) -> Any:
    assert service.stack is not None
    return service.stack.runtime


def main_table(service: LocalService) -> MainTable:
    return MainTable(TABLE, runtime(service).client("dynamodb"))


def data_keys(service: LocalService) -> DataKeyStore:
    environment = runtime(service).environment
    return DataKeyStore(
        environment["KEY_TABLE_NAME"],
        environment["DATA_KEY_ARN"],
        runtime(service).client("dynamodb"),
        runtime(service).client("kms"),
    )


def stripe_client(service: LocalService) -> stripe.StripeClient:
    assert service.stripe_shim is not None
    return stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": service.stripe_shim.base_url}, max_network_retries=0
    )


def settle(service: LocalService) -> None:
    """Deliver every webhook and queue message until the stack is idle."""
    assert service.stripe_shim is not None and service.twilio is not None
    for _ in range(3):
        service.stripe_shim.flush()
        service.twilio.drain_all()
        assert service.twilio.wait_for_callbacks(timeout=20)
        runtime(service).run_until_idle(max_rounds=50, deadline_s=120)


def _code_for(service: LocalService, mobile: str, count: int) -> str:
    assert service.twilio is not None
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up:
        messages = [message for message in service.twilio.messages() if message["to"] == mobile]
        if len(messages) >= count:
            match = re.search(r"\d{6}", messages[-1]["body"])
            assert match is not None, "the code SMS has no 6-digit code"
            return match.group(0)
        runtime(service).run_until_idle(max_rounds=10, deadline_s=30)
    raise AssertionError("no code SMS reached the test number")


def subscribe(service: LocalService, person: str, referral_code: str | None = None) -> Subscriber:
    """Sign `person` up over HTTP, verify, pay by Checkout and confirm the e-mail address."""
    details = PEOPLE[person]
    body: dict[str, Any] = {**details, "plan": "monthly", "consents": CONSENTS}
    if referral_code:
        body["referral_code"] = referral_code
    assert service.twilio is not None
    sent_before = len([m for m in service.twilio.messages() if m["to"] == details["mobile"]])

    # With Idempotency-Key headers, so that the stored responses are part of what deletion erases.
    created = requests.post(
        f"{service.base_url}/v1/signups",
        json=body,
        headers={"Idempotency-Key": f"create-{uuid.uuid4()}"},
        timeout=30,
    )
    assert created.status_code == 202, created.text
    code = _code_for(service, details["mobile"], sent_before + 1)
    verified = requests.post(
        f"{service.base_url}/v1/signups/{created.json()['signup_id']}/verify",
        json={"code": code},
        headers={"Idempotency-Key": f"verify-{uuid.uuid4()}"},
        timeout=30,
    )
    assert verified.status_code == 200, verified.text
    result = verified.json()
    paid = requests.post(
        result["next_step"]["checkout_url"] + "/pay",
        data={"payment_method": "pm_card_visa"},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert paid.status_code == 200, paid.text
    settle(service)

    confirmation = [
        email
        for email in service.sent_emails()
        if details["email"] in email["to"] and "/v1/email-confirmations/" in (email["body"] or "")
    ]
    assert confirmation, "no confirmation e-mail was sent"
    link = re.search(
        r"http://127\.0\.0\.1:\d+/v1/email-confirmations/[A-Za-z0-9_.-]+", confirmation[-1]["body"]
    )
    assert link is not None
    assert requests.get(link.group(0), timeout=30).status_code == 200
    profile = main_table(service).get(f"SUB#{result['subscriber_id']}", "PROFILE")
    assert profile is not None and profile["status"] == "active"
    return Subscriber(
        person=person,
        subscriber_id=str(result["subscriber_id"]),
        signup_id=str(result["signup_id"]),
        referral_code=str(result["referral_code"]),
        details=details,
    )


def add_exposure(service: LocalService, subscriber: Subscriber) -> None:
    """Put the subscriber's ID number into a breach and send the alert by SMS and e-mail."""
    table = main_table(service)
    environment = runtime(service).environment
    table.put(breach_item(BREACH))
    pepper = Pepper.from_secret(service.pepper)
    index = MainTable(environment["BREACH_INDEX_TABLE"], runtime(service).client("dynamodb"))
    for fingerprint in pepper.fingerprints("id_number", subscriber.details["id_number"]):
        index.put(
            {
                "pk": f"id_number#{fingerprint.version}#{fingerprint.value}",
                "sk": BREACH["Name"],
                "expires_at": int(time.time()) + 86400,
            }
        )
    publisher = EventPublisher(environment["EVENT_BUS_NAME"], runtime(service).client("events"))
    record_exposure(
        table,
        publisher,
        subscriber.subscriber_id,
        BREACH["Name"],
        ["id_number"],
        "index",
        int(time.time()),
    )
    review_exposure(
        AlertDeps(table=table, publisher=publisher, rules=load_rules(), clock=utc_now),
        subscriber.subscriber_id,
        BREACH["Name"],
    )
    settle(service)


def fail_renewal(service: LocalService, subscriber: Subscriber) -> None:
    """Renew the subscription with a card that is declined, which sends the payment notices."""
    assert service.stripe_shim is not None
    profile = main_table(service).get(f"SUB#{subscriber.subscriber_id}", "PROFILE")
    assert profile is not None
    service.stripe_shim.set_default_payment_method(
        profile["stripe_customer_id"], "pm_card_chargeCustomerFail"
    )
    service.stripe_shim.renew_subscription(profile["subscription_id"])
    settle(service)


@dataclass(frozen=True)
class BankCard:
    """The identifier item and watch key of a bank card added to an account."""

    item_sk: str
    watch_key: WatchKey


def add_bank_card(service: LocalService, subscriber: Subscriber) -> BankCard:
    """Watch a bank card for the subscriber: its identifier item, watch item and a breach entry."""
    table = main_table(service)
    pepper = Pepper.from_secret(service.pepper)
    canonical = canonical_bank_card(BANK_CARD)
    fingerprint = pepper.fingerprint("bank_card", canonical)
    item_sk = f"IDENT#bank_card#{canonical[-4:]}"
    table.put(
        {
            "pk": f"SUB#{subscriber.subscriber_id}",
            "sk": item_sk,
            "kind": "bank_card",
            "fingerprints": {fingerprint.version: fingerprint.value},
            "masked": mask(IdentifierKind.BANK_CARD, canonical),
            "confirmed": True,
            "added_at": int(time.time()),
        }
    )
    table.transact(watch_writes("bank_card", [fingerprint], subscriber.subscriber_id, sole=False))
    key = WatchKey("bank_card", fingerprint.version, fingerprint.value)
    breach_index(service).put(
        {"pk": key.index_pk, "sk": BREACH["Name"], "expires_at": int(time.time()) + 86400}
    )
    return BankCard(item_sk, key)


def breach_index(service: LocalService) -> MainTable:
    return MainTable(
        runtime(service).environment["BREACH_INDEX_TABLE"], runtime(service).client("dynamodb")
    )


def watch_keys_of(
    table: MainTable, subscriber_id: str, kinds: Iterable[str] = WATCHED_KINDS
) -> list[WatchKey]:
    """Return the fingerprints of the subscriber's identifiers of `kinds`."""
    return watch_keys(load_records(table, subscriber_id), kinds)


def from_raw(item: dict[str, Any]) -> dict[str, Any]:
    """Deserialise one item as the low-level client returns it."""
    return from_item(item)


def dead_letters(service: LocalService) -> dict[str, int]:
    """Return the dead-letter queues that hold messages, with their message counts."""
    sqs = runtime(service).client("sqs")
    counts = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        if not url.endswith("-dlq"):
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        count = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        if count:
            counts[url.rsplit("/", 1)[-1]] = count
    return counts


class NullQueue:
    """A job queue that drops jobs, for tests that run the job themselves."""

    def send(self, job: Any) -> None:
        return None


def suppress_address(service: LocalService, address: str) -> None:
    """Put the address on SES's account-level suppression list, as a hard bounce would."""
    runtime(service).client("sesv2").put_suppressed_destination(
        EmailAddress=address, Reason="BOUNCE"
    )


def personal_needles(service: LocalService, subscriber: Subscriber) -> dict[str, str]:
    """Return every value that must not remain after deletion, by a label for messages."""
    return privacy_scan.personal_needles(
        main_table(service), subscriber.subscriber_id, subscriber.signup_id, subscriber.details
    )


def scan_everything(
    service: LocalService, needles: dict[str, str], allowed: Iterable[tuple[str, str]] = ()
) -> list[Finding]:
    """Scan every table, bucket and queue of the service for the needles (see privacy_scan)."""
    return privacy_scan.scan_everything(runtime(service), needles, allowed)
