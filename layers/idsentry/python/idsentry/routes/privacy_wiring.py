"""Dependencies of the account routes for export, consent withdrawal and deletion requests.

The deletion job itself is wired in `deletion_jobs`, so the account function ships neither
the Stripe nor the Twilio SDK.
"""

from __future__ import annotations

from functools import cache

from idsentry.adapters.exports import ExportObjects
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import MainTable
from idsentry.clock import utc_now
from idsentry.services.audit import AuditTrail
from idsentry.services.export import ExportDeps
from idsentry.settings import CoreSettings, load_settings
from idsentry.wiring import data_keys, main_table


class AccountPrivacySettings(CoreSettings):
    """Settings the account routes need for exports, withdrawals and deletion requests."""

    exports_bucket: str
    # Report and dossier files, which the export's ZIP archive copies.
    reports_bucket: str
    # Written only with PutItem: the account function cannot change an audit record.
    audit_table_name: str
    breach_index_table: str
    account_deletion_queue_url: str


@cache
def export_deps() -> ExportDeps:
    """Return the dependencies of creating an export and handing out its links."""
    settings = load_settings(AccountPrivacySettings)
    return ExportDeps(
        table=main_table(),
        keys=data_keys(),
        objects=ExportObjects(settings.exports_bucket, settings.data_key_arn),
        audit=audit_trail(),
        clock=utc_now,
        report_files=ExportObjects(settings.reports_bucket, settings.data_key_arn),
    )


@cache
def breach_index() -> MainTable:
    """Return the breach index table, whose entries consent withdrawal removes."""
    return MainTable(load_settings(AccountPrivacySettings).breach_index_table)


@cache
def deletion_queue() -> JobQueue:
    """Return the queue of account deletion jobs."""
    return JobQueue(load_settings(AccountPrivacySettings).account_deletion_queue_url)


@cache
def audit_trail() -> AuditTrail:
    """Return the audit trail that exports and deletion requests are recorded in."""
    return AuditTrail(load_settings(AccountPrivacySettings).audit_table_name)
