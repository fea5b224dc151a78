"""Function settings read from the environment and validated once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from idsentry.errors import ConfigurationError


class CoreSettings(BaseModel):
    """Settings every function needs; each field is read from the upper-cased variable name."""

    # A function loads one settings class, so each builds its validator on first use
    # (defer_build) rather than every class at import, in every cold start.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    stage: str
    table_name: str
    key_table_name: str
    event_bus_name: str
    data_key_arn: str
    pepper_secret_id: str
    notification_queue_url: str
    public_base_url: str

    @field_validator("public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build the settings from `environ` (default: os.environ), naming every missing variable."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        missing: list[str] = []
        for name, field in cls.model_fields.items():
            variable = name.upper()
            if variable in source:
                values[name] = source[variable]
            elif field.is_required():
                missing.append(variable)
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")

        try:
            return cls(**values)
        except ValidationError as exc:
            fields = ", ".join(str(error["loc"][0]).upper() for error in exc.errors())
            raise ConfigurationError(f"invalid environment variables: {fields}") from exc


class CodeSendSettings(CoreSettings):
    """Abuse limits of one-time codes by SMS, shared by signup and sign-in."""

    allowed_sms_countries: tuple[str, ...] = ("CN",)
    sms_otp_daily_budget: int = 2000
    sms_per_number_daily_cap: int = 4
    otp_resend_interval_seconds: int = 60
    # Counts every code request from one address, signup and sign-in alike.
    signups_per_ip_per_hour: int = 30

    @field_validator("allowed_sms_countries", mode="before")
    @classmethod
    def _split_countries(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().upper() for part in value.split(",") if part.strip())
        return value


class SignupSettings(CodeSendSettings):
    """Settings of the signup function: abuse limits, consent rules and providers."""

    realname_secret_id: str
    cross_border: bool = True
    human_check_provider: str = "none"
    # Billing: both set, or neither. Without them, verification reports that payment is not
    # available yet.
    stripe_secret_id: str | None = None
    billing_plans: str | None = None
    stripe_base_url: str | None = None

    @field_validator("human_check_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value != "none":
            # NOTE: only the hook exists; no provider's server-side check is implemented yet.
            raise ValueError("no human-check provider is implemented; use none")
        return value


class SignInSettings(CodeSendSettings):
    """Settings of the sign-in function: the code limits and the key that signs access tokens."""

    # The KMS key (ECC_NIST_P256, SIGN_VERIFY) that signs access tokens.
    account_token_key_arn: str
    access_token_seconds: int = 900


class AccountAuthorizerSettings(CoreSettings):
    """Settings of the authorizer that verifies access tokens for the account routes."""

    account_token_key_arn: str
    # A token whose lifetime (exp - iat) is longer than this is rejected.
    access_token_seconds: int = 900


class NotifierSettings(CoreSettings):
    """Settings of the notifier function: providers, budgets and the sender address."""

    twilio_secret_id: str
    sms_per_number_daily_cap: int = 4
    sms_alert_daily_budget: int = 20000
    email_sender: str
    # The SES configuration set whose event destination publishes bounces and complaints.
    # Unset, SES publishes no events for the notifier's messages.
    ses_configuration_set: str | None = None
    # Local stack only: the Twilio emulator's base URL. Unset in AWS, where the SDK's default
    # https://api.twilio.com is used.
    twilio_base_url: str | None = None
    # Seconds each Twilio request may take, connecting and reading.
    twilio_timeout_seconds: float = 10.0
    # The subscriber's account page on the site, which report e-mails link to.
    account_page_url: str | None = None


class StripeWebhookSettings(CoreSettings):
    """Settings of the Stripe webhook function."""

    stripe_secret_id: str
    stripe_events_queue_url: str
    live_mode: bool = False


class StripeEventsSettings(CoreSettings):
    """Settings of the billing consumer."""

    stripe_secret_id: str
    past_due_grace_seconds: int = 7 * 24 * 3600
    # The same JSON as the signup function's; the consumer reads its referral programme.
    billing_plans: str | None = None
    # Local stack only: the local Stripe server's base URL. Unset in AWS, where the SDK's
    # default https://api.stripe.com is used.
    stripe_base_url: str | None = None
    # Where the job of a bought deep report goes. Unset, buying one fails the event.
    report_queue_url: str | None = None


class BreachIntakeSettings(CoreSettings):
    """Settings of the breach intake and ingest functions."""

    intake_bucket: str
    chunk_queue_url: str
    breach_index_table: str
    breach_index_retention_days: int = 730
    intake_match_only: bool = False
    # A 16 MiB chunk peaks near 720 MiB and about 13,400 BatchWriteItem calls (make bench).
    intake_chunk_megabytes: int = 16


class BreachCheckSettings(CoreSettings):
    """Settings of the daily check's planner and workers."""

    breach_index_table: str
    check_queue_url: str
    hibp_queue_url: str
    hibp_secret_id: str
    # The HIBP tier's limit, shared by every worker through one token bucket.
    hibp_requests_per_minute: int = 10
    # Local stack only: the HIBP emulator's API base URL. Unset in AWS, where the client's
    # default https://haveibeenpwned.com/api/v3 is used.
    hibp_base_url: str | None = None


class AdminSettings(CoreSettings):
    """Settings of the admin API function."""

    # Written only with PutItem: the function's role cannot update or delete audit records.
    audit_table_name: str


class TwilioWebhookSettings(CoreSettings):
    """Settings of the Twilio status-callback function."""

    twilio_secret_id: str


@cache
def load_settings[T: CoreSettings](settings_type: type[T]) -> T:
    """Return the settings of `settings_type`, read from os.environ on first use."""
    return settings_type.from_environ()
