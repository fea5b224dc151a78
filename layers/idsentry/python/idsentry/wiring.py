"""Builds each function's dependencies on first use, never at import time."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.keys import DataKeyStore
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.realname import HttpIdentityVerifier, IdentityVerifier
from idsentry.adapters.secrets import SecretCache
from idsentry.adapters.table import MainTable
from idsentry.clock import utc_now
from idsentry.crypto import Pepper
from idsentry.settings import CoreSettings, SignupSettings, load_settings

if TYPE_CHECKING:
    from idsentry.services.signup import SignupDeps


@cache
def secret_cache() -> SecretCache:
    """Return the process-wide secret cache."""
    return SecretCache()


def pepper_loader(settings: CoreSettings) -> Pepper:
    """Return the fingerprint pepper from the (cached) secret."""
    return Pepper.from_secret(secret_cache().get_json(settings.pepper_secret_id))


@cache
def main_table() -> MainTable:
    """Return the main table adapter."""
    return MainTable(load_settings(CoreSettings).table_name)


@cache
def data_keys() -> DataKeyStore:
    """Return the data-key store."""
    settings = load_settings(CoreSettings)
    return DataKeyStore(settings.key_table_name, settings.data_key_arn)


@cache
def publisher() -> EventPublisher:
    """Return the publisher for the service's bus."""
    return EventPublisher(load_settings(CoreSettings).event_bus_name)


@cache
def notification_queue() -> JobQueue:
    """Return the notification job queue."""
    return JobQueue(load_settings(CoreSettings).notification_queue_url)


def identity_verifier() -> IdentityVerifier:
    """Return the real-name verification client configured by its secret."""
    secret = secret_cache().get_json(load_settings(SignupSettings).realname_secret_id)
    return HttpIdentityVerifier(str(secret.get("base_url", "")), str(secret.get("api_key", "")))


@cache
def signup_deps() -> SignupDeps:
    """Return the signup service's dependencies."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from idsentry.services.signup import SignupDeps

    settings = load_settings(SignupSettings)
    metrics = Metrics()

    def record_budget_exhausted() -> None:
        metrics.add_metric(name="OtpBudgetExhausted", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()

    return SignupDeps(
        settings=settings,
        table=main_table(),
        keys=data_keys(),
        pepper=lambda: pepper_loader(settings),
        verifier=identity_verifier,
        publisher=publisher(),
        queue=notification_queue(),
        clock=utc_now,
        on_otp_budget_exhausted=record_budget_exhausted,
    )
