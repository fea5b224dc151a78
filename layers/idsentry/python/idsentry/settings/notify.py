"""Settings of the notifier and of the Twilio status callbacks."""

from __future__ import annotations

from idsentry.settings import CoreSettings


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


class TwilioWebhookSettings(CoreSettings):
    """Settings of the Twilio status-callback function."""

    twilio_secret_id: str
