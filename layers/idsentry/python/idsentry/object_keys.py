"""Keys of bucket objects that one function writes and another reads or deletes."""

from __future__ import annotations


def report_prefix(subscriber_id: str) -> str:
    """Return the reports-bucket prefix under which every report and dossier of a subscriber lies."""
    return f"reports/{subscriber_id}/"


# The file names of one report, by format.
REPORT_FILE_NAMES = {"html": "report.html", "pdf": "report.pdf"}


def report_file_key(subscriber_id: str, report_id: str, file_format: str) -> str:
    """Return the reports-bucket key of one file of a report."""
    return f"{report_prefix(subscriber_id)}{report_id}/{REPORT_FILE_NAMES[file_format]}"


def dossier_file_key(subscriber_id: str, dossier_id: str) -> str:
    """Return the reports-bucket key of one dossier's PDF."""
    return f"{report_prefix(subscriber_id)}dossiers/{dossier_id}.pdf"
