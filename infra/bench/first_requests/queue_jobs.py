"""First requests of the SQS consumers: one job or event per run, as the queue delivers it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from datetime import datetime
from typing import Any

from infra.bench.first_requests.base import (
    ColdStartContext,
    FirstRequest,
    SignIn,
    expect_no_failed_record,
    fresh_http_event,
    message_event,
    require,
    sign_in,
    signed_in_event,
    sqs_event,
)
from infra.bench.request_counts import BenchFailedError
from infra.bench.seeding import Subscriber, wait_for
from infra.bench.workload import signup_event
from infra.local.stack import REPOSITORY_ROOT

BREACH_ROWS = 200
BREACH_SEED = 20261205
GENERATOR_TIMEOUT_S = 120
TWILIO_MESSAGE_CREATE = re.compile(r"/Accounts/[^/]+/Messages\.json$")


def _china_today() -> str:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")


def _item(pk: str, sk: str) -> dict[str, Any] | None:
    from idsentry.wiring import main_table

    item: dict[str, Any] | None = main_table().get(pk, sk)
    return item


class CodeJobRequest(FirstRequest):
    unit = "notifier"
    logical_id = "NotifierFunction"
    title = "Notifier (SQS notification jobs)"
    request = (
        "one SQS batch with the code SMS job of a new signup, which the bench makes in its "
        "own process just before. A code job, because a subscriber waits for the code while "
        "the notifier starts, and because quiet hours never hold a code back, so the first "
        "request does the same work at any time of day. It sends one SMS to the Twilio "
        "emulator, and the bench checks that the emulator received exactly one"
    )
    outcome = "report no failed record"
    must_not_load = ("stripe",)
    detailed = True
    note = (
        "The same-work process ends with the same SMS request through the twilio SDK: a body "
        "of the same length and alphabet (its digits set to 0), without a status callback, to "
        "a number of its own. The job that the signup itself put on the notification queue "
        "is deleted before the pollers restart."
    )

    def __init__(self) -> None:
        self.mobiles: dict[int, str] = {}
        self.code_sms_body: str | None = None

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        """Make a new signup in this process and return an SQS batch with its code SMS job.

        The signup also puts that job on the notification queue, where it stays, because the
        pollers are paused, until the bench empties the queue before they restart.
        """
        from idsentry.models.jobs import OtpJob
        from idsentry.services.signup import signup_pk

        seeder = context.seeder
        identity = seeder.identities.new()
        created = seeder.invoke("SignupFunction", signup_event(identity, seeder.consents), 202)
        signup_id = str(json.loads(created["body"])["signup_id"])
        signup = _item(signup_pk(signup_id), "SIGNUP")
        require(
            signup is not None and bool(signup.get("code_id")),
            "the signup for a code job stored no code id",
        )
        assert signup is not None
        job = OtpJob(
            job_id=f"job_bench_{uuid.uuid4().hex}", signup_id=signup_id, code_id=signup["code_id"]
        )
        self.mobiles[index] = identity.mobile
        return sqs_event(job.model_dump_json(), seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_no_failed_record(self.unit, result)
        assert context.service.twilio is not None
        mobile = self.mobiles[index]
        messages = [m for m in context.service.twilio.messages() if m["to"] == mobile]
        require(
            len(messages) == 1,
            f"the notifier sent {len(messages)} SMS for one code job, expected exactly 1",
        )
        if self.code_sms_body is None:
            self.code_sms_body = str(messages[0]["body"])

    def baseline_extras(self, context: ColdStartContext) -> dict[str, Any]:
        """Return the SMS that the same-work process sends, to a number of its own.

        The body has the length and alphabet of the first code SMS, with every digit set to 0.
        """
        service = context.service
        assert service.twilio is not None
        if self.code_sms_body is None:
            raise BenchFailedError("no code SMS was sent before the same-work run")
        return {
            "sms": {
                "base_url": service.twilio.base_url,
                "account_sid": service.twilio_account_sid,
                "auth_token": service.twilio_auth_token,
                "messaging_service_sid": service.twilio_messaging_service_sid,
                "to": context.seeder.identities.new().mobile,
                "body": re.sub(r"[0-9]", "0", self.code_sms_body),
            }
        }

    def replayed_provider_calls(self, recorded: dict[str, Any]) -> list[dict[str, Any]]:
        # The same-work process sends its own SMS through the twilio SDK instead.
        return [
            call
            for call in recorded["provider_calls"]
            if not (call["method"] == "POST" and TWILIO_MESSAGE_CREATE.search(call["url"]))
        ]


class StripeEventJobRequest(FirstRequest):
    unit = "stripe_events"
    logical_id = "StripeEventsFunction"
    title = "Billing consumer (SQS Stripe event jobs)"
    request = (
        "one SQS batch with the Stripe event job of a `checkout.session.completed` event. "
        "Before the runs, the bench signs subscribers up and verifies them with the queue "
        "pollers running, stops the pollers, pays each one's Checkout Session at the Stripe "
        "shim, and takes the jobs that the webhook function queued for the shim's deliveries. "
        "The consumer fetches the session and the subscription from the local Stripe server, "
        "links the customer and activates the subscriber"
    )
    outcome = "report no failed record and leave the subscriber `active`"
    must_not_load = ("twilio",)

    def __init__(self) -> None:
        self.verified: list[tuple[Subscriber, dict[str, Any]]] = []
        self.events: list[tuple[Subscriber, dict[str, Any]]] = []

    def seed(self, context: ColdStartContext, count: int) -> None:
        self.verified = [context.seeder.verified_subscriber() for _ in range(count)]

    def collect(self, context: ColdStartContext, count: int) -> None:
        import stripe

        from infra.local.emulators.stripe import TEST_API_KEY

        service = context.service
        assert service.stripe_shim is not None
        for _, verified in self.verified:
            context.seeder.pay(verified)
        service.stripe_shim.flush()

        client = stripe.StripeClient(
            TEST_API_KEY, base_addresses={"api": service.stripe_shim.base_url}
        )
        # Every delivery has been served when flush() returns, so the queue contains all the jobs.
        queue_url = context.seeder.queue_url(self.logical_id)
        completed: dict[str, dict[str, Any]] = {}
        while context.seeder.queued(queue_url):
            (message,) = context.seeder.take_messages(queue_url, 1)
            event = client.v1.events.retrieve(str(json.loads(message["Body"])["event_id"]))
            if event.type == "checkout.session.completed":
                completed[str(event.data.object["client_reference_id"])] = message
        self.events = []
        for subscriber, _ in self.verified:
            taken = completed.get(subscriber.subscriber_id)
            require(
                taken is not None,
                "no checkout.session.completed job reached the Stripe events queue for a "
                "bench subscriber",
            )
            assert taken is not None
            self.events.append((subscriber, taken))

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        _, message = self.events[index]
        return message_event(message, context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_no_failed_record(self.unit, result)
        subscriber, _ = self.events[index]
        profile = context.seeder.profile(subscriber.subscriber_id) or {}
        require(
            profile.get("status") == "active",
            f"the billing consumer left a bench subscriber {profile.get('status')}, not active",
        )


class AccountDeletionJobRequest(FirstRequest):
    unit = "account_deletion"
    logical_id = "AccountDeletionFunction"
    title = "Account deletion (SQS deletion jobs)"
    request = (
        "one SQS batch with the deletion job of a paid subscriber who signed in and called "
        "`DELETE /v1/account` just before (the bench takes the job off the deletion queue). "
        "The job runs every step: the Stripe customer, exports, reports, the money ledger "
        "archive, the SMS texts at Twilio, SES's suppression list, references, the partition "
        "and the data key"
    )
    outcome = "report no failed record and leave no profile and no deletion item"
    must_not_load = ()

    def __init__(self) -> None:
        self.signed_in: list[SignIn] = []
        self.messages: list[dict[str, Any]] = []

    def seed(self, context: ColdStartContext, count: int) -> None:
        self.signed_in = [sign_in(context, context.seeder.paid_subscriber()) for _ in range(count)]

    def collect(self, context: ColdStartContext, count: int) -> None:
        for signed_in in self.signed_in:
            event = signed_in_event("http/account_delete.json", signed_in)
            context.seeder.invoke("AccountFunction", event, 202)
        self.messages = context.seeder.take_messages(
            context.seeder.queue_url(self.logical_id), count
        )
        queued = {json.loads(message["Body"])["subscriber_id"] for message in self.messages}
        require(
            queued == {item.subscriber.subscriber_id for item in self.signed_in},
            "the deletion queue held jobs of other subscribers than the bench's requests",
        )

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return message_event(self.messages[index], context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        from idsentry.services.deletion_request import DELETION_SK

        expect_no_failed_record(self.unit, result)
        subscriber_id = json.loads(self.messages[index]["Body"])["subscriber_id"]
        require(
            _item(f"SUB#{subscriber_id}", "PROFILE") is None
            and _item(f"SUB#{subscriber_id}", DELETION_SK) is None,
            "the deletion child left a bench subscriber's profile or deletion item",
        )


class ReportJobRequest(FirstRequest):
    unit = "report_worker"
    logical_id = "ReportWorkerFunction"
    title = "Report worker (SQS report jobs)"
    request = (
        "one SQS batch with the report job of a new paid subscriber who signed in and asked for "
        "this month's report (`POST /v1/account/reports`) just before; the bench takes the "
        "jobs off the report queue. The worker renders the report as HTML and PDF, stores both "
        "and announces it. A past month's report is not used, because the bench's subscribers "
        "signed up this month and the worker skips a month that ended before the signup"
    )
    outcome = "report no failed record and leave the report `announced`"

    def __init__(self) -> None:
        self.signed_in: list[SignIn] = []
        self.jobs: list[dict[str, Any]] = []

    def seed(self, context: ColdStartContext, count: int) -> None:
        self.signed_in = [sign_in(context, context.seeder.paid_subscriber()) for _ in range(count)]

    def collect(self, context: ColdStartContext, count: int) -> None:
        for signed_in in self.signed_in:
            event = signed_in_event("http/account_report_request.json", signed_in)
            context.seeder.invoke("AccountFunction", event, 202)
        self.jobs = context.seeder.take_messages(context.seeder.queue_url(self.logical_id), count)

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return message_event(self.jobs[index], context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        from idsentry.models.account_jobs import ReportJob
        from idsentry.services.subscriber_reports import (
            REPORT_PREFIX,
            STATE_ANNOUNCED,
            job_report_id,
        )

        expect_no_failed_record(self.unit, result)
        job = ReportJob.model_validate_json(self.jobs[index]["Body"])
        report = _item(f"SUB#{job.subscriber_id}", f"{REPORT_PREFIX}{job_report_id(job)}") or {}
        require(
            report.get("state") == STATE_ANNOUNCED,
            f"the report child left the report {report.get('state')}, not {STATE_ANNOUNCED}",
        )


class BreachFiles:
    """A small generated breach file with the shared subscriber planted, uploaded as new breaches.

    The generator runs once per bench. Each upload puts the same data file under a new key
    prefix with a manifest that names a new breach, so each intake job is new.
    """

    def __init__(self, context: ColdStartContext) -> None:
        subscriber = context.shared_subscriber()
        identity = subscriber.identity
        directory = context.workdir / "breach"
        plant = context.workdir / "breach-plant.json"
        plant.write_text(
            json.dumps(
                [
                    {
                        "name": identity.name,
                        "id_number": identity.id_number,
                        "mobile": identity.mobile,
                        "email": identity.email,
                    }
                ],
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
        command = [
            sys.executable,
            "-m",
            "infra.tools.breach_generator",
            *("--rows", str(BREACH_ROWS), "--seed", str(BREACH_SEED)),
            *("--name", "BenchColdStart", "--plant", str(plant), "--out", str(directory)),
        ]
        completed = subprocess.run(  # noqa: S603 - the bench's own interpreter and module
            command,
            cwd=REPOSITORY_ROOT,
            capture_output=True,
            text=True,
            timeout=GENERATOR_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0:
            raise BenchFailedError(f"breach_generator failed: {completed.stderr.strip()[-2000:]}")
        self.manifest: dict[str, Any] = json.loads(
            (directory / "manifest.json").read_text(encoding="utf-8")
        )
        self.data = next(directory.glob("breach.*")).read_bytes()
        self.context = context

    def upload(self) -> str:
        """Upload the file as a new breach, manifest last; return the manifest's key."""
        runtime = self.context.runtime
        bucket = runtime.environment["INTAKE_BUCKET"]
        s3 = self.context.client("s3")
        token = uuid.uuid4().hex[:12]
        prefix = f"bench-coldstart/{token}"
        manifest = json.loads(json.dumps(self.manifest))
        manifest["breach"]["Name"] = f"BenchColdStart{token}"
        manifest["breach"]["Title"] = f"Bench cold start {token}"
        s3.put_object(Bucket=bucket, Key=f"{prefix}/data.{manifest['format']}", Body=self.data)
        key = f"{prefix}/manifest.json"
        s3.put_object(
            Bucket=bucket, Key=key, Body=json.dumps(manifest, ensure_ascii=False).encode("utf-8")
        )
        return key


def _breach_files(context: ColdStartContext) -> BreachFiles:
    files = context.shared.get("breach_files")
    if files is None:
        files = context.shared["breach_files"] = BreachFiles(context)
    assert isinstance(files, BreachFiles)
    return files


def _notifications(context: ColdStartContext, count: int) -> list[dict[str, Any]]:
    """Upload `count` new breaches and return their S3 notifications from the intake queue."""
    files = _breach_files(context)
    for _ in range(count):
        files.upload()
    queue_url = context.seeder.queue_url("BreachIntakeFunction")
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        for message in context.seeder.take_messages(queue_url, count - len(messages)):
            # moto announces a bucket's notification configuration with a test event.
            if '"s3:TestEvent"' not in message["Body"]:
                messages.append(message)
    return messages


def _chunk_jobs(context: ColdStartContext, count: int) -> list[dict[str, Any]]:
    """Run intake on `count` new breaches in this process; return their chunk job messages."""
    arn = context.seeder.queue_arn("BreachIntakeFunction")
    for notification in _notifications(context, count):
        response = context.runtime.invoke("BreachIntakeFunction", message_event(notification, arn))
        require(not response.get("batchItemFailures"), f"bench intake failed: {response}")
    chunks = context.seeder.take_messages(context.seeder.queue_url("BreachIngestFunction"), count)
    require(
        len({json.loads(chunk["Body"])["job_id"] for chunk in chunks}) == count,
        "a bench breach file made more than one chunk job",
    )
    return chunks


class IntakeNotificationRequest(FirstRequest):
    unit = "breach_intake"
    logical_id = "BreachIntakeFunction"
    title = "Breach intake (SQS S3 notifications)"
    request = (
        f"one SQS batch with the S3 notification of a new manifest upload. Before the runs, "
        f"the bench uploads a {BREACH_ROWS}-row generated breach file and its manifest under a "
        "new key prefix and breach name per run, and takes the notifications that S3 (moto) "
        "put on the intake queue. Intake reads the manifest and the file's head, writes the "
        "catalogue entry and the job, and queues the chunk jobs"
    )
    outcome = "report no failed record and leave the intake job `running` with one chunk"
    must_not_load = ("stripe", "twilio")

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def seed(self, context: ColdStartContext, count: int) -> None:
        _breach_files(context)

    def collect(self, context: ColdStartContext, count: int) -> None:
        self.messages = _notifications(context, count)

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return message_event(self.messages[index], context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        from idsentry.routes.breach_jobs import manifest_uploads
        from idsentry.services.intake import intake_job_id, job_pk

        expect_no_failed_record(self.unit, result)
        body = self.messages[index]["Body"]
        bucket = json.loads(body)["Records"][0]["s3"]["bucket"]["name"]
        ((key, etag),) = manifest_uploads(body)
        job = _item(job_pk(intake_job_id(bucket, key, str(etag))), "JOB") or {}
        require(
            job.get("status") == "running" and int(job.get("chunks_total", 0)) == 1,
            f"the intake child left the job {job.get('status')} with "
            f"{job.get('chunks_total')} chunks",
        )


class ChunkJobRequest(FirstRequest):
    unit = "breach_ingest"
    logical_id = "BreachIngestFunction"
    title = "Breach ingestion (SQS chunk jobs)"
    request = (
        f"one SQS batch with the chunk job of a new {BREACH_ROWS}-row breach file in which the "
        "bench's paid subscriber is planted. Before the runs, the bench uploads the files and "
        "runs intake on them in its own process. Ingestion normalises and fingerprints every "
        "row, writes the breach index, matches the subscriber and publishes one "
        "`Exposure.Detected`"
    )
    outcome = "report no failed record and finish the intake job with one exposure"

    def __init__(self) -> None:
        self.chunks: list[dict[str, Any]] = []

    def seed(self, context: ColdStartContext, count: int) -> None:
        _breach_files(context)

    def collect(self, context: ColdStartContext, count: int) -> None:
        self.chunks = _chunk_jobs(context, count)

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return message_event(self.chunks[index], context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        from idsentry.services.intake import job_pk

        expect_no_failed_record(self.unit, result)
        job_id = json.loads(self.chunks[index]["Body"])["job_id"]
        job = _item(job_pk(job_id), "JOB") or {}
        require(
            job.get("status") == "done" and int(job.get("exposures", 0)) == 1,
            f"the ingestion child left the job {job.get('status')} with "
            f"{job.get('exposures')} exposures, expected done with 1",
        )


class ExposureEventRequest(FirstRequest):
    unit = "risk"
    logical_id = "RiskFunction"
    title = "Risk review (SQS `Exposure.Detected` events)"
    request = (
        "one SQS batch with an `Exposure.Detected` event of the bench's paid subscriber in a "
        "new breach, as the rule delivered it: before the runs, the bench uploads planted "
        "breach files and runs intake and ingestion on them in its own process, and takes the "
        "events off the risk queue. The function scores the exposure and records the alert"
    )
    outcome = "report no failed record and leave an alert for the breach"

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def seed(self, context: ColdStartContext, count: int) -> None:
        _breach_files(context)

    def collect(self, context: ColdStartContext, count: int) -> None:
        arn = context.seeder.queue_arn("BreachIngestFunction")
        for chunk in _chunk_jobs(context, count):
            response = context.runtime.invoke("BreachIngestFunction", message_event(chunk, arn))
            require(not response.get("batchItemFailures"), f"bench ingestion failed: {response}")
        self.messages = context.seeder.take_messages(
            context.seeder.queue_url(self.logical_id), count
        )

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return message_event(self.messages[index], context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_no_failed_record(self.unit, result)
        detail = json.loads(self.messages[index]["Body"])["detail"]
        alert = _item(f"SUB#{detail['subscriber_id']}", f"ALERT#{detail['breach_name']}")
        require(alert is not None, "the risk child recorded no alert for the bench exposure")


class CheckJobRequest(FirstRequest):
    unit = "breach_check_worker"
    logical_id = "BreachCheckWorkerFunction"
    title = "Breach check worker (SQS check jobs)"
    request = (
        "one SQS batch with today's check job of the bench's paid subscriber, as the page job "
        "builds it. The worker reads the subscriber's partition and looks each of its "
        "fingerprints up in the breach index. The subscriber's address has been looked up at "
        "HIBP before the runs (the bench runs one check with the pollers on if it has not), "
        "so no HIBP job is due, as on most days"
    )
    outcome = "report no failed record after looking the fingerprints up in the breach index"

    def __init__(self) -> None:
        self.subscriber_id = ""

    def seed(self, context: ColdStartContext, count: int) -> None:
        self.subscriber_id = context.shared_subscriber().subscriber_id
        if (_item(f"SUB#{self.subscriber_id}", "IDENT#email") or {}).get("hibp_checked_at"):
            return
        response = context.runtime.invoke(self.logical_id, self.event(context, 0))
        require(not response.get("batchItemFailures"), f"a bench check job failed: {response}")

        def looked_up() -> bool:
            email = _item(f"SUB#{self.subscriber_id}", "IDENT#email") or {}
            return bool(email.get("hibp_checked_at"))

        wait_for("the HIBP lookup of the bench subscriber's address", looked_up)

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        from idsentry.models.breach_jobs import CheckJob

        run = _china_today()
        job = CheckJob(
            job_id=f"check_{run}_{self.subscriber_id}", subscriber_id=self.subscriber_id, run=run
        )
        return sqs_event(job.model_dump_json(), context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_no_failed_record(self.unit, result)
        index_table = context.runtime.functions[self.logical_id].environment["BREACH_INDEX_TABLE"]
        lookups = [
            call
            for call in result["calls"]
            if call["operation"] == "Query" and call["summary"].get("table") == index_table
        ]
        require(bool(lookups), "the check child looked nothing up in the breach index")


class HibpJobRequest(FirstRequest):
    unit = "breach_hibp_worker"
    logical_id = "BreachHibpWorkerFunction"
    title = "HIBP worker (SQS HIBP jobs)"
    request = (
        "one SQS batch with the HIBP job of a new paid subscriber whose confirmed e-mail "
        "address was never looked up. The worker takes a token of the shared HIBP rate, "
        "decrypts the address and asks the HIBP emulator about it"
    )
    outcome = "report no failed record and record the address's HIBP status"

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []

    def seed(self, context: ColdStartContext, count: int) -> None:
        self.subscribers = [context.seeder.paid_subscriber() for _ in range(count)]

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        from idsentry.models.breach_jobs import HibpJob

        run = _china_today()
        subscriber_id = self.subscribers[index].subscriber_id
        job = HibpJob(job_id=f"hibp_{run}_{subscriber_id}", subscriber_id=subscriber_id, run=run)
        return sqs_event(job.model_dump_json(), context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        expect_no_failed_record(self.unit, result)
        subscriber_id = self.subscribers[index].subscriber_id
        email = _item(f"SUB#{subscriber_id}", "IDENT#email") or {}
        require(
            email.get("hibp_status") in ("clean", "breached"),
            f"the HIBP child left the address's status {email.get('hibp_status')}",
        )


class SesEventRequest(FirstRequest):
    unit = "ses_events"
    logical_id = "SesEventsFunction"
    title = "SES events (SQS bounces and complaints)"
    request = (
        "one SQS batch with a permanent SES bounce of a new subscriber's confirmed address. "
        "Before the runs, the bench puts each bounce on the default event bus in SES's shape, "
        "and takes the message that the rule put on the SES events queue. The function "
        "finds the subscriber by the address's fingerprint and suppresses e-mail to it"
    )
    outcome = "report no failed record and leave the subscriber's e-mail `suppressed`"

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.messages: list[dict[str, Any]] = []

    def seed(self, context: ColdStartContext, count: int) -> None:
        self.subscribers = []
        for _ in range(count):
            subscriber, _ = context.seeder.verified_subscriber()
            context.seeder.confirm_email(subscriber)
            self.subscribers.append(subscriber)

    def collect(self, context: ColdStartContext, count: int) -> None:
        sample = json.loads(
            (REPOSITORY_ROOT / "events" / "ses" / "email_bounced_permanent.json").read_text(
                encoding="utf-8"
            )
        )
        configuration_set = context.runtime.environment["SES_CONFIGURATION_SET"]
        entries = []
        for subscriber in self.subscribers:
            detail = json.loads(json.dumps(sample["detail"]))
            address = subscriber.identity.email
            message_id = f"bench-{uuid.uuid4().hex}"
            detail["bounce"]["bouncedRecipients"][0]["emailAddress"] = address
            detail["bounce"]["feedbackId"] = f"bench-{uuid.uuid4().hex}"
            detail["mail"]["messageId"] = message_id
            detail["mail"]["commonHeaders"]["messageId"] = message_id
            detail["mail"]["destination"] = [address]
            detail["mail"]["commonHeaders"]["to"] = [address]
            detail["mail"]["headers"] = [
                header if header["name"] != "To" else {"name": "To", "value": address}
                for header in detail["mail"]["headers"]
            ]
            detail["mail"]["tags"]["ses:configuration-set"] = [configuration_set]
            entries.append(
                {
                    "Source": sample["source"],
                    "DetailType": sample["detail-type"],
                    "Detail": json.dumps(detail),
                }
            )
        events = context.client("events")
        for start in range(0, len(entries), 10):
            response = events.put_events(Entries=entries[start : start + 10])
            require(response["FailedEntryCount"] == 0, "putting the bench's SES events failed")
        self.messages = context.seeder.take_messages(
            context.seeder.queue_url(self.logical_id), count
        )

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        return message_event(self.messages[index], context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        from idsentry.services.preferences import PREFS_SK

        expect_no_failed_record(self.unit, result)
        address = json.loads(self.messages[index]["Body"])["detail"]["mail"]["destination"][0]
        subscriber = next(s for s in self.subscribers if s.identity.email == address)
        preferences = _item(f"SUB#{subscriber.subscriber_id}", PREFS_SK) or {}
        require(
            preferences.get("email_state") == "suppressed",
            f"the SES events child left e-mail {preferences.get('email_state')}, not suppressed",
        )


class ReconciliationJobRequest(FirstRequest):
    unit = "reconciliation_worker"
    logical_id = "ReconciliationWorkerFunction"
    title = "Reconciliation worker (SQS reconciliation jobs)"
    request = (
        "one SQS batch with the job of a finance request to reconcile today (Asia/Shanghai). "
        "Just before each run, the bench sends `POST /v1/admin/reconciliations` to the admin "
        "function in its own process and takes the queued job; the previous run is done by "
        "then, so each request starts a new run. The worker lists today's Stripe objects of "
        "the bench's payments from the local Stripe server, compares them with the ledger and "
        "entitlements, stores the four files and e-mails finance"
    )
    outcome = "report no failed record and leave the run `done`"
    must_not_load = ("twilio",)

    def __init__(self) -> None:
        self.messages: dict[int, dict[str, Any]] = {}

    def seed(self, context: ColdStartContext, count: int) -> None:
        # Today's payments are what the runs reconcile.
        context.shared_subscriber()

    def event(self, context: ColdStartContext, index: int) -> dict[str, Any]:
        from zoneinfo import ZoneInfo

        today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        request = fresh_http_event("http/admin_reconciliation_request.json")
        body = json.dumps({"from": today, "to": today, "repair": False, "locale": "zh-CN"})
        request["body"] = body
        request["headers"]["content-length"] = str(len(body))
        request["headers"]["idempotency-key"] = f"bench-{uuid.uuid4().hex}"
        context.seeder.invoke("AdminApiFunction", request, 202)
        (message,) = context.seeder.take_messages(context.seeder.queue_url(self.logical_id), 1)
        self.messages[index] = message
        return message_event(message, context.seeder.queue_arn(self.logical_id))

    def check(self, context: ColdStartContext, result: dict[str, Any], index: int) -> None:
        from idsentry.services.reconcile_runs import DONE, get_run
        from idsentry.wiring import main_table

        expect_no_failed_record(self.unit, result)
        reconciliation_id = json.loads(self.messages[index]["Body"])["reconciliation_id"]
        run = get_run(main_table(), reconciliation_id)
        require(
            run.get("status") == DONE,
            f"the reconciliation child left the run {run.get('status')}, not {DONE}",
        )


__all__ = [
    "AccountDeletionJobRequest",
    "CheckJobRequest",
    "ChunkJobRequest",
    "CodeJobRequest",
    "ExposureEventRequest",
    "HibpJobRequest",
    "IntakeNotificationRequest",
    "ReconciliationJobRequest",
    "ReportJobRequest",
    "SesEventRequest",
    "StripeEventJobRequest",
]
