"""Keys of main-table items that one module writes and modules elsewhere read.

They live apart from the modules that write the items, so that a reader imports a key without
the writer's models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idsentry.crypto import Fingerprint

# Sort key of a breach's catalogue item, whose partition key names the breach.
BREACH_SORT_KEY = "BREACH"
# Sort key of an alert SMS deferred for quiet hours.
DEFER_SK = "DEFER"


def deferral_pk(job_id: str) -> str:
    """Return the partition key of a deferred job's item."""
    return f"DEFER#{job_id}"


def watch_pk(kind: str, fingerprint: Fingerprint) -> str:
    """Return the key of the watch item of one fingerprint."""
    return f"WATCH#{kind}#{fingerprint.version}#{fingerprint.value}"
