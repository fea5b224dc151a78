"""The export's ZIP archive: the JSON and HTML copies and the file of every report and dossier.

Reports and dossiers live in the reports bucket. The archive copies the current version of
each file of every report and dossier the account still has an item for, so a report
rendered again is included once, as it is now. Files are streamed from S3 into the archive
and the archive to S3 in parts, so neither is held whole in memory. A file that no longer
exists (a report older than the bucket's lifecycle rule keeps) is left out, and the entry of
each report and dossier in the export names the files the archive holds for it.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from idsentry.adapters.exports import ExportObjects
from idsentry.object_keys import REPORT_FILE_NAMES, dossier_file_key, report_file_key
from idsentry.services.subscriber_records import SubscriberRecords

logger = logging.getLogger(__name__)

# The items whose files the archive holds, the prefixes of the export's sections. They are not
# imported from the report services, because the deletion function imports the export module
# and must not bundle the PDF renderer.
REPORT_PREFIX = "REPORT#"
DOSSIER_PREFIX = "DOSSIER#"
# Bytes copied per read from a report file into the archive.
COPY_CHUNK_BYTES = 1024 * 1024
# Stored without compression: PDF content streams are compressed already.
_STORED_SUFFIXES = (".pdf",)
# Members are readable by their owner only when the archive is unpacked on a Unix system.
_MEMBER_MODE = 0o600 << 16


@dataclass(frozen=True)
class ArchivedFile:
    """One report or dossier file: where it is stored and where it goes in the archive."""

    # The export section and the id field of the record the file belongs to.
    section: str
    record_id: str
    file_format: str
    key: str
    path: str


def stored_files(records: SubscriberRecords) -> list[ArchivedFile]:
    """Return every file of the account's reports and dossiers, in sort-key order."""
    subscriber_id = records.subscriber_id
    files = []
    for sk, item in sorted(records.items.items()):
        if sk.startswith(REPORT_PREFIX):
            report_id = str(item["report_id"])
            for file_format, name in sorted(REPORT_FILE_NAMES.items()):
                files.append(
                    ArchivedFile(
                        "reports",
                        report_id,
                        file_format,
                        report_file_key(subscriber_id, report_id, file_format),
                        f"reports/{report_id}/{name}",
                    )
                )
        elif sk.startswith(DOSSIER_PREFIX):
            dossier_id = str(item["dossier_id"])
            files.append(
                ArchivedFile(
                    "dossiers",
                    dossier_id,
                    "pdf",
                    dossier_file_key(subscriber_id, dossier_id),
                    f"dossiers/{dossier_id}.pdf",
                )
            )
    return files


class ExportArchive:
    """A ZIP archive written member by member to a stream that need not be seekable."""

    def __init__(self, stream: Any, moment: datetime) -> None:
        self._zip = zipfile.ZipFile(stream, mode="w", compression=zipfile.ZIP_DEFLATED)
        # Every member carries the export's time, so the listing shows when it was made.
        self._date_time = moment.timetuple()[:6]

    def __enter__(self) -> ExportArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._zip.close()

    def _member(self, path: str) -> zipfile.ZipInfo:
        member = zipfile.ZipInfo(path, date_time=self._date_time)
        member.external_attr = _MEMBER_MODE
        stored = path.endswith(_STORED_SUFFIXES)
        member.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        return member

    def add(self, path: str, data: bytes) -> None:
        """Add a member from bytes already in memory."""
        self._zip.writestr(self._member(path), data)

    def copy(self, source: ExportObjects, file: ArchivedFile) -> bool:
        """Stream one stored file into the archive; returns False when it does not exist."""
        try:
            with (
                source.open_object(file.key) as body,
                self._zip.open(self._member(file.path), mode="w") as member,
            ):
                shutil.copyfileobj(body, member, COPY_CHUNK_BYTES)
        except FileNotFoundError:
            return False
        return True


def copy_files(
    archive: ExportArchive, source: ExportObjects, files: list[ArchivedFile]
) -> list[ArchivedFile]:
    """Copy every file that exists into the archive; returns those copied."""
    copied = [file for file in files if archive.copy(source, file)]
    if len(copied) < len(files):
        logger.info(
            "export files missing",
            extra={"missing": len(files) - len(copied), "copied": len(copied)},
        )
    return copied


def name_files(document: dict[str, Any], copied: list[ArchivedFile]) -> None:
    """Add `files` (format to path in the archive) to each report and dossier entry."""
    paths: dict[tuple[str, str], dict[str, str]] = {}
    for file in copied:
        paths.setdefault((file.section, file.record_id), {})[file.file_format] = file.path
    for section, id_field in (("reports", "report_id"), ("dossiers", "dossier_id")):
        for entry in document.get(section, []):
            entry["files"] = paths.get((section, str(entry.get(id_field))), {})
