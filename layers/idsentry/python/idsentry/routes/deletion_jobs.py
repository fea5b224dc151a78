"""Queue-record entry point of account deletion, with the deletion function's dependencies."""

from __future__ import annotations

import logging
from functools import cache

from pydantic import ValidationError

from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.sms import TwilioSms
from idsentry.adapters.stripe_gateway import StripeSdkGateway
from idsentry.adapters.suppression import SesSuppressionList
from idsentry.adapters.table import MainTable
from idsentry.clock import utc_now
from idsentry.errors import PoisonMessageError
from idsentry.models.account_jobs import AccountDeletionJob
from idsentry.services.audit import AuditTrail
from idsentry.services.deletion import DeletionDeps, run_deletion
from idsentry.settings import CoreSettings, load_settings
from idsentry.wiring import data_keys, main_table, pepper_loader, secret_cache

logger = logging.getLogger(__name__)


class AccountDeletionSettings(CoreSettings):
    """Settings of the account deletion function."""

    exports_bucket: str
    reports_bucket: str
    audit_table_name: str
    breach_index_table: str
    stripe_secret_id: str
    twilio_secret_id: str
    # Years a deleted account's ledger rows are kept under its pseudonym (10 or 30).
    ledger_archive_years: int = 30
    # Local stack only: the emulators' base URLs. Unset in AWS, where the SDKs' defaults apply.
    stripe_base_url: str | None = None
    twilio_base_url: str | None = None


@cache
def deletion_deps() -> DeletionDeps:
    """Return the dependencies of the account deletion job."""
    settings = load_settings(AccountDeletionSettings)

    @cache
    def stripe() -> StripeSdkGateway:
        secret = secret_cache().get_json(settings.stripe_secret_id)
        return StripeSdkGateway(str(secret.get("api_key", "")), base_url=settings.stripe_base_url)

    @cache
    def sms() -> TwilioSms:
        secret = secret_cache().get_json(settings.twilio_secret_id)
        return TwilioSms(
            str(secret.get("account_sid", "")),
            str(secret.get("auth_token", "")),
            str(secret.get("messaging_service_sid", "")),
            base_url=settings.twilio_base_url,
        )

    return DeletionDeps(
        table=main_table(),
        keys=data_keys(),
        pepper=lambda: pepper_loader(settings),
        stripe=stripe,
        sms=sms,
        suppressions=cache(SesSuppressionList),
        exports=ExportObjects(settings.exports_bucket, settings.data_key_arn),
        reports=ExportObjects(settings.reports_bucket, settings.data_key_arn),
        breach_index=MainTable(settings.breach_index_table),
        audit=AuditTrail(settings.audit_table_name),
        clock=utc_now,
        archive_years=settings.ledger_archive_years,
    )


def process_deletion_record(message_id: str, body: str) -> str:
    """Run the deletion job of one queue message; raises so SQS retries it from its last step."""
    try:
        job = AccountDeletionJob.model_validate_json(body)
    except ValidationError as exc:
        logger.error("deletion job invalid", extra={"message_id": message_id})
        raise PoisonMessageError(message_id) from exc
    outcome = run_deletion(deletion_deps(), job.subscriber_id)
    logger.info(
        "deletion job processed",
        extra={"job_id": job.job_id, "subscriber_id": job.subscriber_id, "outcome": outcome},
    )
    return outcome
