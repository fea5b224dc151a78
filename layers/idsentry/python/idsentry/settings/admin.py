"""Settings of the staff admin API."""

from __future__ import annotations

from idsentry.settings import CoreSettings


class AdminSettings(CoreSettings):
    """Settings of the admin API function."""

    # Written only with PutItem: the function's role cannot update or delete audit records.
    audit_table_name: str
