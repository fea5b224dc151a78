"""Fault scenarios: provider errors, throttling, partial batches, crashes and timeouts.

Each scenario injects faults, runs a flow through the local runtime, heals the faults and
settles the stack, with retries coming back on a virtual clock at the times AWS would return
them. It then replays the DLQs with the `idsentry` CLI and counts the end state from the
emulators' outboxes, SES's sent messages and the tables: nothing lost, nothing duplicated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import infra.local.service as local_service_module
from idsentry.adapters import aws
from idsentry.services.ledger import OUTCOME_WRITE_ATTEMPTS, STALE_PENDING_SECONDS
from infra.chaos import faults
from infra.chaos.harness import FaultStack
from infra.chaos.results import ScenarioResult, record, sized
from infra.local.service import LocalService
from infra.local.stack import DEFAULT_TEMPLATE
from infra.local.template import load_template
from tests.integration.conftest import IDENTITIES
from tests.integration.fault_flows import (
    EndState,
    alert_end_state,
    billing_end_state,
    breach_end_state,
    enqueue_alerts,
    ledger_states,
    main_table,
    open_purchases,
    pay,
    seed_alert_jobs,
    seed_watchers,
    upload_breach,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

# Fast enough that draining never paces a scenario, because these scenarios test no rate limit.
SEGMENTS_PER_SECOND = 500.0
# The notifier's Twilio timeout in this module, and how long a stalled create waits: short, so
# that a timeout costs the suite little time.
TWILIO_TIMEOUT_SECONDS = 1.0
STALL_SECONDS = 1.5
EVENT_REFETCH = "GET /v1/events/<id>"
NOTIFICATION_MAX_RECEIVES = int(
    load_template(DEFAULT_TEMPLATE)["Resources"]["NotificationQueue"]["Properties"][
        "RedrivePolicy"
    ]["maxReceiveCount"]
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    """One local stack for every scenario, with a state file of its own for the CLI."""
    state_file = tmp_path_factory.mktemp("faults") / "stack.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_service_module, "STATE_FILE", state_file)
        with LocalService(
            port=0,
            identities_path=IDENTITIES,
            background=False,
            sms_segments_per_second=SEGMENTS_PER_SECOND,
            environment={"TWILIO_TIMEOUT_SECONDS": str(TWILIO_TIMEOUT_SECONDS)},
            moto_process=True,
        ) as service:
            harness = FaultStack(service, state_file).start()
            try:
                yield harness
            finally:
                harness.close()


def finish(stack: FaultStack) -> int:
    """Settle after healing, replay every DLQ with the CLI and settle again; return the count replayed."""
    stack.settle()
    replayed = stack.replay_dead_letters()
    if replayed:
        stack.settle()
    return replayed


def save(
    scenario: str,
    title: str,
    state: EndState,
    *,
    injected: int,
    replayed: int,
    **details: Any,
) -> None:
    record(
        ScenarioResult(
            scenario=f"faults.{scenario}",
            area="faults",
            title=title,
            faults_injected=injected,
            events_replayed=replayed,
            lost=state.lost,
            duplicated=state.duplicated,
            details={**state.details, **details},
        )
    )


def alert_count() -> int:
    return sized(fast=2, full=40)


# ---------------------------------------------------------------------------- Twilio


@pytest.mark.parametrize(
    ("status", "scenario", "title"),
    [
        (
            429,
            "twilio_429",
            "Twilio answers 429 (20429, too many concurrent requests) to alert SMS",
        ),
        (500, "twilio_500", "Twilio answers 500 to alert SMS"),
    ],
)
def test_twilio_errors_retried(stack: FaultStack, status: int, scenario: str, title: str) -> None:
    assert stack.service.twilio is not None
    alerts = seed_alert_jobs(stack, alert_count())

    with faults.twilio_errors(stack.service.twilio, len(alerts) + 1, status) as fault:
        enqueue_alerts(stack, alerts)
        stack.settle()
    replayed = finish(stack)

    state = alert_end_state(stack, alerts)
    save(scenario, title, state, injected=fault.injected, replayed=replayed)
    assert fault.injected == len(alerts) + 1
    assert (state.lost, state.duplicated) == (0, 0)
    assert ledger_states(state, "sms") == {"sent": len(alerts)}


def test_twilio_timeouts_settle_once(stack: FaultStack) -> None:
    assert stack.service.twilio is not None
    alerts = seed_alert_jobs(stack, 2)

    # The first create is queued at Twilio before its response is lost; the second never is.
    with faults.twilio_stalls(stack.service.twilio, 1, STALL_SECONDS, created=True) as queued:
        enqueue_alerts(stack, alerts[:1])
        stack.settle()
    with faults.twilio_stalls(stack.service.twilio, 1, STALL_SECONDS, created=False) as dropped:
        enqueue_alerts(stack, alerts[1:])
        stack.settle()
    replayed = finish(stack)

    state = alert_end_state(stack, alerts)
    save(
        "twilio_timeout",
        "Twilio create requests time out, once after queueing the SMS and once without",
        state,
        injected=queued.injected + dropped.injected,
        replayed=replayed,
    )
    assert (queued.injected, dropped.injected) == (1, 1)
    assert (state.lost, state.duplicated) == (0, 0)


def test_twilio_queue_overflow_resent(stack: FaultStack) -> None:
    assert stack.service.twilio is not None
    alerts = seed_alert_jobs(stack, alert_count())

    with faults.twilio_queue_overflow(stack.service.twilio, len(alerts)) as fault:
        enqueue_alerts(stack, alerts)
        stack.settle()
    replayed = finish(stack)

    state = alert_end_state(stack, alerts)
    save(
        "twilio_queue_overflow",
        "Twilio's sender queue overflows: the SMS fail after creation with 30001",
        state,
        injected=fault.injected,
        replayed=replayed,
    )
    assert fault.injected == len(alerts)
    assert (state.lost, state.duplicated) == (0, 0)


def test_twilio_validity_expiry_recorded(stack: FaultStack) -> None:
    twilio = stack.service.twilio
    assert twilio is not None
    alerts = seed_alert_jobs(stack, alert_count())

    twilio.pause()
    try:
        enqueue_alerts(stack, alerts)
        stack.runtime.run_until_idle()
        # The SMS wait in Twilio's queue past their ValidityPeriod (4 hours for alerts).
        stack.advance(4 * 3600 + 1)
    finally:
        twilio.resume()
    replayed = finish(stack)

    # An alert SMS that expired is not sent again: hours late, it would only confuse, and the
    # alert's e-mail went out at once. So each alert is owed its e-mail and the failure record.
    state = alert_end_state(stack, alerts, sms_owed=0)
    mobiles = {alert.mobile for alert in alerts}
    expired = [m for m in twilio.messages() if m["to"] in mobiles and m["error_code"] == 30036]
    table = main_table(stack)
    for message in expired:
        item = table.get(f"SMS#{message['sid']}", "SMS") or {}
        recorded = (item.get("delivery"), item.get("delivery_error")) == ("failed", "30036")
        state.count("expiry_recorded", 1, int(recorded))
    save(
        "twilio_validity_expired",
        "Alert SMS expire in Twilio's queue (30036): the failure is recorded and the SMS not "
        "sent again, by design; the e-mail carries the alert",
        state,
        injected=len(expired),
        replayed=replayed,
    )
    assert len(expired) == len(alerts)
    assert (state.lost, state.duplicated) == (0, 0)
    assert state.details["sms_failed"] == len(alerts)


# ---------------------------------------------------------------------------- SES


def test_ses_throttling_retried(stack: FaultStack) -> None:
    alerts = seed_alert_jobs(stack, alert_count())

    with faults.ses_throttling(aws.client("sesv2"), len(alerts) + 1) as fault:
        enqueue_alerts(stack, alerts)
        stack.settle()
    replayed = finish(stack)

    state = alert_end_state(stack, alerts)
    save(
        "ses_throttling",
        "SES throttles SendEmail (429 TooManyRequestsException)",
        state,
        injected=fault.injected,
        replayed=replayed,
    )
    assert fault.injected == len(alerts) + 1
    assert (state.lost, state.duplicated) == (0, 0)
    assert ledger_states(state, "email") == {"sent": len(alerts)}


# ---------------------------------------------------------------------------- Stripe


@pytest.mark.parametrize(
    ("status", "count", "scenario", "title"),
    [
        # The SDK tries a 500 three times (max_network_retries=2), so three in a row fail one
        # attempt of the consumer, and the rest are retried by the SDK.
        (
            500,
            sized(fast=4, full=30),
            "stripe_500",
            "Stripe answers 500 when the billing consumer fetches an event",
        ),
        (
            429,
            sized(fast=2, full=20),
            "stripe_429",
            "Stripe rate-limits (429) the billing consumer's event fetches",
        ),
    ],
)
def test_stripe_refetch_errors_retried(
    stack: FaultStack, status: int, count: int, scenario: str, title: str
) -> None:
    shim = stack.service.stripe_shim
    assert shim is not None
    purchases = open_purchases(stack, sized(fast=1, full=10))

    with faults.stripe_errors(shim, count, status, EVENT_REFETCH) as fault:
        before = pay(stack, purchases)
        stack.settle()
    replayed = finish(stack)

    state = billing_end_state(stack, purchases, before)
    save(scenario, title, state, injected=fault.injected, replayed=replayed)
    assert fault.injected == count
    assert (state.lost, state.duplicated) == (0, 0)


# ---------------------------------------------------------------------------- DynamoDB


def test_dynamodb_throttling_retried(stack: FaultStack) -> None:
    alerts = seed_alert_jobs(stack, alert_count())
    dynamodb = aws.client("dynamodb")
    operations = ("GetItem", "PutItem", "UpdateItem", "Query", "BatchGetItem")

    # Besides throttled reads and writes, the write that records a sent SMS fails every time
    # it is tried, and so does the one for an e-mail, so their ledger records stay pending.
    with (
        faults.dynamodb_throttling(dynamodb, operations, 2 * len(alerts)) as throttled,
        faults.dynamodb_throttling(
            dynamodb,
            "UpdateItem",
            OUTCOME_WRITE_ATTEMPTS,
            code=faults.DYNAMODB_REQUEST_THROTTLING,
            match=_marks_sent("sms"),
        ) as after_sms,
        faults.dynamodb_throttling(
            dynamodb,
            "UpdateItem",
            OUTCOME_WRITE_ATTEMPTS,
            code=faults.DYNAMODB_REQUEST_THROTTLING,
            match=_marks_sent("email"),
        ) as after_email,
    ):
        enqueue_alerts(stack, alerts)
        stack.settle()
    replayed = finish(stack)

    state = alert_end_state(stack, alerts)
    save(
        "dynamodb_throttling",
        "DynamoDB throttles the notifier's reads and writes, and every try to record one sent SMS "
        "and one sent e-mail; SES has no lookup, so that e-mail's record is `unknown`",
        state,
        injected=throttled.injected + after_sms.injected + after_email.injected,
        replayed=replayed,
    )
    assert throttled.injected == 2 * len(alerts)
    assert (after_sms.injected, after_email.injected) == (OUTCOME_WRITE_ATTEMPTS,) * 2
    assert (state.lost, state.duplicated) == (0, 0)
    assert ledger_states(state, "sms") == {"sent": len(alerts)}
    # The pending e-mail record is settled for support to check, never sent again.
    assert ledger_states(state, "email") == {"sent": len(alerts) - 1, "unknown": 1}


def _marks_sent(channel: str) -> faults.Match:
    """Match the ledger write that marks a message of `channel` sent."""

    def match(params: faults.Params) -> bool:
        key = params.get("Key") or {}
        values = params.get("ExpressionAttributeValues") or {}
        # The ledger's outcome write sets the state first, as `:v0`.
        return (
            str(key.get("pk", {}).get("S", "")).startswith("NOTIFY#")
            and key.get("sk", {}).get("S") == channel
            and values.get(":v0") == {"S": "sent"}
        )

    return match


def test_unprocessed_batch_items_retried(stack: FaultStack) -> None:
    watchers = seed_watchers(stack, sized(fast=3, full=40))

    with faults.unprocessed_items(aws.client("dynamodb"), sized(fast=6, full=60)) as fault:
        upload = upload_breach(stack, watchers, noise=sized(fast=60, full=600))
        stack.settle()
    replayed = finish(stack)

    state = breach_end_state(stack, upload, watchers)
    save(
        "dynamodb_unprocessed",
        "DynamoDB leaves half of batch writes and reads unprocessed during a breach intake",
        state,
        injected=fault.injected,
        replayed=replayed,
        items_withheld=fault.items_withheld,
    )
    assert fault.injected == sized(fast=6, full=60)
    assert (state.lost, state.duplicated) == (0, 0)


# ---------------------------------------------------------------------------- crashes


def test_partial_batch_returns_failed_only(stack: FaultStack) -> None:
    assert stack.service.twilio is not None
    alerts = seed_alert_jobs(stack, alert_count())
    earlier = set(stack.deliveries)

    with faults.twilio_errors(stack.service.twilio, 1, 500) as fault:
        enqueue_alerts(stack, alerts)
        stack.settle()
    replayed = finish(stack)

    state = alert_end_state(stack, alerts)
    delivered = sorted(
        count for message_id, count in stack.deliveries.items() if message_id not in earlier
    )
    save(
        "partial_batch",
        "One record of a notifier batch fails: only that record comes back",
        state,
        injected=fault.injected,
        replayed=replayed,
        redelivered=sum(count - 1 for count in delivered),
    )
    assert (state.lost, state.duplicated) == (0, 0)
    assert delivered == [1] * (len(alerts) - 1) + [2]


def test_crash_after_part_of_batch(stack: FaultStack) -> None:
    alerts = seed_alert_jobs(stack, alert_count())

    with faults.crash_after_records(stack.runtime, "NotifierFunction", 1) as fault:
        enqueue_alerts(stack, alerts)
        stack.settle()
    replayed = finish(stack)

    state = alert_end_state(stack, alerts)
    save(
        "batch_crash",
        "The notifier crashes after the first record of a batch: the whole batch comes back",
        state,
        injected=fault.injected,
        replayed=replayed,
    )
    assert fault.injected == 1
    assert (state.lost, state.duplicated) == (0, 0)
    assert ledger_states(state, "sms") == {"sent": len(alerts)}


def test_timeout_leaves_claim_that_settles_once(stack: FaultStack) -> None:
    alerts = seed_alert_jobs(stack, alert_count())

    # The notifier times out after Twilio took the first SMS and before the ledger records it.
    with faults.stop_invocation(
        stack.runtime, aws.client("dynamodb"), "UpdateItem", _marks_sent("sms")
    ) as fault:
        enqueue_alerts(stack, alerts)
        report = stack.settle()
    replayed = finish(stack)

    state = alert_end_state(stack, alerts)
    save(
        "lambda_timeout",
        "The notifier times out between sending an SMS and recording it: the claim is settled "
        "from Twilio's status once stale",
        state,
        injected=fault.injected,
        replayed=replayed,
        virtual_seconds=int(report.virtual_seconds),
    )
    assert fault.injected == 1
    assert report.virtual_seconds > STALE_PENDING_SECONDS
    assert (state.lost, state.duplicated) == (0, 0)
    assert ledger_states(state, "sms") == {"sent": len(alerts)}


def test_billing_timeout_holding_lease(stack: FaultStack) -> None:
    purchases = open_purchases(stack, sized(fast=1, full=10))

    # The billing consumer times out while it holds a subscription's lease.
    def writes_profile(params: faults.Params) -> bool:
        key = params.get("Key") or {}
        return key.get("sk", {}).get("S") == "PROFILE" and "subscription_id" in str(
            params.get("UpdateExpression")
        )

    with faults.stop_invocation(
        stack.runtime, aws.client("dynamodb"), "UpdateItem", writes_profile
    ) as fault:
        before = pay(stack, purchases)
        report = stack.settle()
    replayed = finish(stack)

    state = billing_end_state(stack, purchases, before)
    save(
        "billing_timeout",
        "The billing consumer times out holding a subscription's lease: the retry after the "
        "lease expires applies the event once",
        state,
        injected=fault.injected,
        replayed=replayed,
        virtual_seconds=int(report.virtual_seconds),
    )
    assert fault.injected == 1
    assert (state.lost, state.duplicated) == (0, 0)


# ---------------------------------------------------------------------------- DLQ


def test_outage_lands_in_dlq_and_replays(stack: FaultStack) -> None:
    assert stack.service.twilio is not None
    alerts = seed_alert_jobs(stack, sized(fast=1, full=10))

    # Twilio fails every create until healed: each job exhausts its receives.
    with faults.twilio_errors(stack.service.twilio, 1000, 500) as fault:
        enqueue_alerts(stack, alerts)
        stack.settle()
        in_dlq = stack.dead_letter_depths()
    replayed = finish(stack)

    state = alert_end_state(stack, alerts)
    save(
        "dlq_replay",
        "A Twilio outage outlasts every retry: the jobs land in the DLQ, and `idsentry dlq "
        "replay` sends them once the outage is over",
        state,
        injected=fault.injected,
        replayed=replayed,
    )
    # Each job was tried as often as the queue's redrive policy allows, then moved to the DLQ.
    assert fault.injected == NOTIFICATION_MAX_RECEIVES * len(alerts)
    assert in_dlq == {"idsentry-local-notifications-dlq": len(alerts)}
    assert replayed == len(alerts)
    assert (state.lost, state.duplicated) == (0, 0)
    assert stack.dead_letter_depths() == {}


# ---------------------------------------------------------------------------- together


def _alert_or_delivery_write(params: faults.Params) -> bool:
    """Match writes to an alert, a delivery record or an SMS window."""
    key = params.get("Key") or params.get("Item") or {}
    pk = str(key.get("pk", {}).get("S", ""))
    sk = str(key.get("sk", {}).get("S", ""))
    return pk.startswith(("NOTIFY#", "SMSWIN#")) or sk.startswith("ALERT#")


def test_faults_together(stack: FaultStack) -> None:
    twilio = stack.service.twilio
    assert twilio is not None
    watchers = seed_watchers(stack, sized(fast=4, full=40))
    dynamodb = aws.client("dynamodb")

    with (
        faults.unprocessed_items(dynamodb, sized(fast=4, full=40), every=2) as unprocessed,
        # Writes of the risk review and the notifier. A chunk of the file makes hundreds of
        # writes in one attempt, so throttling those as often would use up its receives.
        faults.dynamodb_throttling(
            dynamodb,
            ("PutItem", "UpdateItem"),
            sized(fast=4, full=40),
            match=_alert_or_delivery_write,
            every=3,
        ) as throttled,
        faults.twilio_errors(twilio, sized(fast=2, full=20), 429) as twilio_429,
        faults.ses_throttling(aws.client("sesv2"), sized(fast=2, full=20)) as ses,
        faults.crash_after_records(stack.runtime, "NotifierFunction", 1) as crash,
    ):
        upload = upload_breach(stack, watchers, noise=sized(fast=40, full=400))
        stack.settle()
    replayed = finish(stack)

    state = breach_end_state(stack, upload, watchers)
    injected = {
        "unprocessed": unprocessed.injected,
        "throttled": throttled.injected,
        "twilio_429": twilio_429.injected,
        "ses_throttled": ses.injected,
        "crashes": crash.injected,
    }
    save(
        "together",
        "A breach intake through alerts to SMS and e-mail, with unprocessed batches, DynamoDB "
        "and SES throttling, Twilio 429 and a notifier crash at once",
        state,
        injected=sum(injected.values()),
        replayed=replayed,
        **injected,
    )
    assert all(injected.values()), injected
    assert (state.lost, state.duplicated) == (0, 0)


# ---------------------------------------------------------------------------- Idempotency-Key


def _idempotency_record_delete(params: faults.Params) -> bool:
    """Match the delete that frees an Idempotency-Key record after a failed attempt."""
    return str((params.get("Key") or {}).get("pk", {}).get("S", "")).startswith("IDEMP#")


def _signup_with_key(stack: FaultStack, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = stack.runtime.invoke("SignupFunction", event)
    return response


def test_signup_timeout_leaves_key_in_progress(stack: FaultStack) -> None:
    from idsentry.consents import CURRENT_VERSIONS
    from idsentry.services.idempotency import LOCK_SECONDS
    from infra.bench.workload import IdentityFactory, signup_event

    assert stack.service.realname is not None and stack.service.twilio is not None
    identity = IdentityFactory().new()
    stack.service.realname.add_identity(identity.name, identity.id_number, identity.mobile)
    versions = {str(kind): version for kind, version in CURRENT_VERSIONS.items()}
    event = signup_event(identity, versions)
    event["headers"]["idempotency-key"] = "signup-timeout-" + identity.mobile[-8:]

    # The signup times out after its transaction and before the code job is queued. Lambda
    # ends the process there, so the guard's cleanup cannot free the key either.
    with (
        faults.stop_invocation(stack.runtime, aws.client("sqs"), "SendMessage") as send,
        faults.stop_invocation(
            stack.runtime, aws.client("dynamodb"), "DeleteItem", _idempotency_record_delete
        ) as cleanup,
    ):
        with pytest.raises(BaseException, match="timed out"):
            _signup_with_key(stack, event)

    retried_early = _signup_with_key(stack, event)
    stack.advance(LOCK_SECONDS + 1)
    retried = _signup_with_key(stack, event)
    replayed_response = _signup_with_key(stack, event)
    replayed = finish(stack)

    codes = [m for m in stack.service.twilio.messages() if m["to"] == identity.mobile]
    state = EndState()
    state.count("code_sms", 1, len(codes))
    state.count("accepted_signup", 1, 1 if retried["statusCode"] == 202 else 0)
    state.note("in_progress_replies", 1 if retried_early["statusCode"] == 409 else 0)
    save(
        "signup_idempotency_timeout",
        "A signup times out after its transaction, leaving its Idempotency-Key in progress: the "
        "same request is refused while the key is held, then runs once",
        state,
        injected=send.injected + cleanup.injected,
        replayed=replayed,
    )
    assert send.injected == 1
    assert cleanup.injected == 1
    assert retried_early["statusCode"] == 409
    assert "idempotency.in_progress" in retried_early["body"]
    assert retried["statusCode"] == 202
    assert replayed_response["body"] == retried["body"]
    assert (state.lost, state.duplicated) == (0, 0)
