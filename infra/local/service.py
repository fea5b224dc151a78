"""The whole service on 127.0.0.1: moto, the HTTP API, the Lambda runtime and the emulators."""

from __future__ import annotations

import json
import logging
import secrets
import socket
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from infra.local.emulators.hibp import HibpEmulator
from infra.local.emulators.realname import RealNameEmulator
from infra.local.emulators.stripe import TEST_API_KEY, LocalStripe
from infra.local.emulators.stripe_shim import StripeShim
from infra.local.emulators.twilio import TwilioEmulator
from infra.local.http_api import LocalHttpApi, Route, extract_routes
from infra.local.moto_app import SENT_MESSAGES_PATH
from infra.local.provision import check_loopback
from infra.local.replay import Replay, install_bus_replay, remove_bus_replay
from infra.local.stack import DEFAULT_TEMPLATE, REPOSITORY_ROOT, LocalStack
from infra.local.static_site import SIGNUP_PAGE_PREFIX, LocalSignupPage
from infra.local.template import TemplateError, load_template
from infra.web.site import page_config

LOG = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
STATE_FILE = REPOSITORY_ROOT / ".local" / "stack.json"
EMAIL_SENDER = "no-reply@idsentry.local"
# The FinanceEmail of local runs. moto keeps the reconciliation e-mails sent to it.
FINANCE_EMAIL = "finance@idsentry.example.com"
STRIPE_PRICES = Path(__file__).with_name("stripe_prices.json")
HIBP_CATALOGUE = Path(__file__).with_name("hibp_catalogue.json")
LOCAL_HIBP_REQUESTS_PER_MINUTE = 1000
ADMIN_TOKEN_HEADER = "x-local-admin-token"  # noqa: S105 - a header name, not a secret


def create_local_prices(shim_base_url: str) -> None:
    """Create the prices (by lookup key) and coupons that BillingPlans names in the local Stripe shim."""
    import stripe

    from idsentry.logs import configure_logging

    # The stripe logger writes request URLs at INFO; hold it at WARNING here too.
    configure_logging()

    client = stripe.StripeClient(
        TEST_API_KEY, base_addresses={"api": shim_base_url}, max_network_retries=0
    )
    for price in json.loads(STRIPE_PRICES.read_text(encoding="utf-8"))["prices"]:
        params: dict[str, Any] = {
            "lookup_key": price["lookup_key"],
            "unit_amount": price["unit_amount"],
            "currency": price["currency"],
            "product_data": {"name": price["product"]},
        }
        if price["interval"]:
            params["recurring"] = {"interval": price["interval"]}
        client.v1.prices.create(params=params)
    for coupon in json.loads(STRIPE_PRICES.read_text(encoding="utf-8")).get("coupons", []):
        client.v1.coupons.create(params=coupon)


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def clear_cached_dependencies() -> None:
    """Forget the package's cached clients, settings, secrets and dependency sets.

    A Lambda process never needs this. The local stack does, because it may start a new moto
    server and emulators in a process that already served another stack.
    """
    from idsentry import wiring
    from idsentry.adapters import aws
    from idsentry.routes import (
        account_authorizer,
        admin_report_routes,
        admin_routes,
        billing_jobs,
        breach_jobs,
        check_jobs,
        deletion_jobs,
        jobs,
        privacy_wiring,
        reconcile_jobs,
        reconcile_routes,
        report_wiring,
        risk_jobs,
        sign_in_routes,
        signup_wiring,
    )
    from idsentry.routes.email_event_jobs import email_event_deps

    for cached in (
        aws.client,
        aws._session,
        wiring.load_settings,
        wiring.secret_cache,
        wiring.main_table,
        wiring.data_keys,
        wiring.publisher,
        wiring.notification_queue,
        signup_wiring.signup_deps,
        signup_wiring.checkout_deps,
        jobs.notifier_deps,
        billing_jobs.billing_deps,
        breach_jobs.intake_deps,
        check_jobs.check_deps,
        risk_jobs.alert_deps,
        admin_routes.review_deps,
        admin_report_routes.audit_trail,
        email_event_deps,
        sign_in_routes.sign_in_deps,
        account_authorizer.verification_key,
        privacy_wiring.export_deps,
        privacy_wiring.breach_index,
        privacy_wiring.deletion_queue,
        privacy_wiring.audit_trail,
        deletion_jobs.deletion_deps,
        reconcile_jobs.planner_queue,
        reconcile_jobs.worker_deps,
        reconcile_routes.admin_deps,
        report_wiring.report_objects,
        report_wiring.report_queue,
        report_wiring.report_deps,
    ):
        cached.cache_clear()


class LocalService:
    """Start every component of the local stack; `stop()` stops them in reverse order.

    `background=True` polls the queues in threads (for `make run` and the demo); with False the
    caller drives delivery with `runtime.run_until_idle()`, which tests use to stay deterministic.
    `parameters` override template parameters, for example the abuse limits of a test run.
    `moto_process=True` runs moto in a process of its own, as the notification bench does.
    `trust_forwarded_for=True` makes the local HTTP API take each request's source address from
    its X-Forwarded-For header, so that tests and the bench can act as many clients. Only this
    local adapter reads the header: the handlers count requests by `requestContext.http.sourceIp`,
    which API Gateway sets from the connection in a deployed stack.
    `replay` delivers every webhook, status callback, bus event and queue message twice and
    shuffled (see infra.local.replay); it needs moto in this process.
    `environment` adds variables to every function's environment, for example a shorter
    TWILIO_TIMEOUT_SECONDS for the fault scenarios.
    """

    def __init__(
        self,
        *,
        port: int = 3000,
        stage: str = "$default",
        parameters: dict[str, Any] | None = None,
        identities_path: Path | None = None,
        sms_segments_per_second: float = 10.0,
        background: bool = True,
        trust_forwarded_for: bool = False,
        template_path: Path = DEFAULT_TEMPLATE,
        moto_process: bool = False,
        replay: Replay | None = None,
        environment: dict[str, str] | None = None,
    ) -> None:
        if replay is not None and moto_process:
            raise ValueError("replay needs moto in this process: pass moto_process=False")
        self.port = port or free_port()
        self.moto_process = moto_process
        self.replay = replay
        self.environment = dict(environment or {})
        self.stage = stage
        self.parameters = dict(parameters or {})
        self.identities_path = identities_path
        self.sms_segments_per_second = sms_segments_per_second
        self.background = background
        self.trust_forwarded_for = trust_forwarded_for
        self.template_path = template_path
        # Callback URLs are rebuilt from this, so a named stage is part of it.
        self.public_base_url = f"http://{LOOPBACK}:{self.port}" + (
            "" if stage == "$default" else f"/{stage}"
        )

        # Test-only secrets, new for every run.
        self.twilio_account_sid = "AC" + secrets.token_hex(16)
        self.twilio_auth_token = secrets.token_hex(16)
        self.twilio_messaging_service_sid = "MG" + secrets.token_hex(16)
        self.realname_api_key = secrets.token_urlsafe(24)
        self.hibp_api_key = secrets.token_hex(16)
        # Stands in for IAM credentials on the admin routes of the local HTTP API.
        self.admin_token = secrets.token_urlsafe(24)
        self.pepper = {"current": "1", "1": secrets.token_urlsafe(48)}
        self.stripe_webhook_secret = "whsec_" + secrets.token_urlsafe(24)

        self.stripe: LocalStripe | None = None
        self.stripe_shim: StripeShim | None = None
        self.twilio: TwilioEmulator | None = None
        self.realname: RealNameEmulator | None = None
        self.hibp: HibpEmulator | None = None
        self.stack: LocalStack | None = None
        self.http_api: LocalHttpApi | None = None

    def start(self) -> LocalService:
        """Start the emulators, moto, the provisioned stack, the runtime and the HTTP API."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.realname = RealNameEmulator(
            self.realname_api_key, identities_path=self.identities_path
        )
        self.realname.start()
        self.twilio = TwilioEmulator(
            self.twilio_account_sid,
            self.twilio_auth_token,
            segments_per_second=self.sms_segments_per_second,
            # Replies go where a deployment points the messaging service's incoming webhook.
            inbound_url=f"{self.public_base_url}/v1/webhooks/twilio/inbound",
            messaging_service_sid=self.twilio_messaging_service_sid,
        )
        self.twilio.start()
        self.twilio.set_replay(self.replay)
        self.hibp = HibpEmulator(
            self.hibp_api_key,
            requests_per_minute=int(
                self.parameters.get("HibpRequestsPerMinute", LOCAL_HIBP_REQUESTS_PER_MINUTE)
            ),
            catalogue_path=HIBP_CATALOGUE,
        )
        self.hibp.start()
        self.stripe = LocalStripe()
        self.stripe.start()
        self.stripe_shim = StripeShim(self.stripe.base_url)
        self.stripe_shim.start()
        create_local_prices(self.stripe_shim.base_url)
        self.stripe_shim.set_replay(self.replay)

        parameters = {
            "Stage": "local",
            "PublicBaseUrl": self.public_base_url,
            "EmailSender": EMAIL_SENDER,
            "FinanceEmail": FINANCE_EMAIL,
            # A paid HIBP tier's rate, so that a local run is not paced at 10 lookups a minute.
            "HibpRequestsPerMinute": str(LOCAL_HIBP_REQUESTS_PER_MINUTE),
            **self.parameters,
        }
        self.stack = LocalStack(
            self.template_path,
            parameter_overrides=parameters,
            secret_values={
                "PepperSecret": json.dumps(self.pepper),
                "TwilioSecret": json.dumps(
                    {
                        "account_sid": self.twilio_account_sid,
                        "auth_token": self.twilio_auth_token,
                        "messaging_service_sid": self.twilio_messaging_service_sid,
                    }
                ),
                "StripeSecret": json.dumps(
                    {"api_key": TEST_API_KEY, "webhook_secret": self.stripe_webhook_secret}
                ),
                "HibpSecret": json.dumps({"api_key": self.hibp_api_key}),
                "RealNameSecret": json.dumps(
                    {"base_url": self.realname.base_url, "api_key": self.realname_api_key}
                ),
            },
            extra_environment={
                "TWILIO_BASE_URL": self.twilio.base_url,
                # Every Stripe call of the handlers goes to the local Stripe server.
                "STRIPE_BASE_URL": self.stripe_shim.base_url,
                "HIBP_BASE_URL": f"{self.hibp.base_url}/api/v3",
                # The account page is served beside the signup page, not by CloudFront.
                "ACCOUNT_PAGE_URL": f"http://{LOOPBACK}:{self.port}{SIGNUP_PAGE_PREFIX}/account/",
                **self.environment,
            },
            visibility_timeout_override=1,
            moto_process=self.moto_process,
        )
        self.stack.start()
        if self.replay is not None:
            install_bus_replay(self.replay)
            self.stack.runtime.set_replay(self.replay)
        # Handlers cache clients and secrets per process; a new stack has new endpoints.
        clear_cached_dependencies()
        self.stack.runtime.client("sesv2").create_email_identity(EmailIdentity=EMAIL_SENDER)

        routes = extract_routes(load_template(self.template_path))
        self.http_api = LocalHttpApi(
            routes,
            self.stack.runtime.invoke,
            port=self.port,
            stage=self.stage,
            trust_forwarded_for=self.trust_forwarded_for,
            authorize=self._authorize,
            pages=LocalSignupPage(self._signup_page_config).respond,
        )
        self.http_api.start()
        # Like a deployed endpoint, subscribe only to the event types the consumer applies.
        from idsentry.services.billing import HANDLERS

        self.stripe_shim.configure_webhook(
            f"{self.public_base_url}/v1/webhooks/stripe",
            self.stripe_webhook_secret,
            sorted(HANDLERS),
        )
        if self.background:
            self.stack.runtime.start()
        self._write_state_file()
        LOG.info("local service started", extra={"base_url": self.base_url})

    @property
    def base_url(self) -> str:
        """Return the HTTP API's invoke URL (with the stage prefix for a named stage)."""
        if self.http_api is None:
            raise RuntimeError("the local service is not started")
        return self.http_api.base_url

    @property
    def signup_page_url(self) -> str:
        """Return the URL of the signup page (zh-CN; the English page is under en/)."""
        if self.http_api is None:
            raise RuntimeError("the local service is not started")
        return f"{self.http_api.server_url}{SIGNUP_PAGE_PREFIX}/"

    def _signup_page_config(self) -> dict[str, Any]:
        assert self.stack is not None
        cross_border = self.stack.provisioned.parameters["CrossBorder"] == "true"
        return page_config(self.base_url, cross_border=cross_border)

    def sent_emails(self) -> list[dict[str, Any]]:
        """Return the e-mails SES accepted, oldest first.

        Each has `to` (addresses), `subject`, `body` (the HTML part, else the text part),
        `text`, `html` and `headers` (top-level headers by lower-case name, for example
        `list-unsubscribe`). A message sent with SES's Simple content has no `text` or
        `headers`, because moto keeps only its subject and one body of it.
        """
        if self.stack is None:
            raise RuntimeError("the local service is not started")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = check_loopback(self.stack.endpoint_url) + SENT_MESSAGES_PATH
        with opener.open(url, timeout=30) as response:
            entries: list[dict[str, Any]] = json.load(response)
        return entries

    def _authorize(self, route: Route, event: dict[str, Any]) -> dict[str, Any] | None:
        """Accept an IAM-authorized route's request that carries this run's admin token.

        In AWS, API Gateway checks the caller's SigV4 signature against IAM. Locally the token
        from `.local/stack.json` in the `x-local-admin-token` header replaces that check.
        """
        if route.authorizer != "AWS_IAM":
            return None
        headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
        if not secrets.compare_digest(headers.get(ADMIN_TOKEN_HEADER, ""), self.admin_token):
            return None
        return {
            "iam": {
                "accessKey": "LOCALADMIN",
                "accountId": "123456789012",
                "callerId": "LOCALADMIN",
                "principalOrgId": None,
                "userArn": "arn:aws:iam::123456789012:user/local-admin",
                "userId": "LOCALADMIN",
            }
        }

    def _write_state_file(self) -> None:
        assert self.stack is not None
        assert self.twilio is not None
        assert self.realname is not None
        assert self.hibp is not None
        assert self.stripe is not None
        assert self.stripe_shim is not None
        STATE_FILE.parent.mkdir(exist_ok=True)
        state = {
            "base_url": self.base_url,
            "signup_page_url": self.signup_page_url,
            "aws_endpoint_url": self.stack.endpoint_url,
            "aws_region": "us-east-1",
            "intake_bucket": self.stack.runtime.environment["INTAKE_BUCKET"],
            "table_name": self.stack.runtime.environment["TABLE_NAME"],
            "twilio": {
                "base_url": self.twilio.base_url,
                "account_sid": self.twilio_account_sid,
                "auth_token": self.twilio_auth_token,
                "messaging_service_sid": self.twilio_messaging_service_sid,
                "messages_url": self.twilio.base_url + "/_emulator/messages",
                "send_inbound_url": self.twilio.base_url + "/_emulator/inbound",
            },
            "realname": {"base_url": self.realname.base_url, "api_key": self.realname_api_key},
            "hibp": {"base_url": self.hibp.base_url, "api_key": self.hibp_api_key},
            "admin": {"token_header": ADMIN_TOKEN_HEADER, "token": self.admin_token},
            "stripe": {
                "base_url": self.stripe_shim.base_url,
                "localstripe_url": self.stripe.base_url,
                "api_key": TEST_API_KEY,
                "webhook_secret": self.stripe_webhook_secret,
            },
            "note": "Test-only secrets of this local run; regenerated at every start.",
            # The template's outputs as provisioned in moto, read by the `idsentry` CLI. The
            # HTTP API is served at base_url; the output ApiUrl names no local server.
            "outputs": self._resolved_outputs(),
        }
        STATE_FILE.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    def _resolved_outputs(self) -> dict[str, Any]:
        """Resolve the template's Outputs; one that does not resolve locally is left out."""
        assert self.stack is not None
        provisioned = self.stack.provisioned
        outputs: dict[str, Any] = {}
        for name in provisioned.template.get("Outputs") or {}:
            try:
                outputs[name] = provisioned.output(name)
            except (KeyError, TemplateError) as exc:
                LOG.warning(
                    "template output not resolved", extra={"output": name, "error": str(exc)}
                )
        return outputs

    def stop(self) -> None:
        """Stop every started component, last started first."""
        for component in (
            self.http_api,
            self.stack,
            self.stripe_shim,
            self.stripe,
            self.twilio,
            self.hibp,
            self.realname,
        ):
            if component is None:
                continue
            try:
                component.stop()
            except Exception as exc:
                LOG.error("component failed to stop", extra={"error_type": type(exc).__name__})
        self.http_api = self.stack = self.stripe_shim = self.stripe = None
        self.twilio = self.hibp = self.realname = None
        if self.replay is not None:
            remove_bus_replay()
        # The endpoints and secrets in the state file die with this run.
        STATE_FILE.unlink(missing_ok=True)

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
