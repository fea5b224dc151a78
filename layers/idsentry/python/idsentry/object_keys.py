"""Keys of bucket objects that one function writes and another reads or deletes."""

from __future__ import annotations


def report_prefix(subscriber_id: str) -> str:
    """Return the reports-bucket prefix under which every report and dossier of a subscriber lies."""
    return f"reports/{subscriber_id}/"
