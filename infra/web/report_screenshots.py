"""`make screenshots`' report pictures: the security report, its PDF, a dossier and reconciliation.

Where the content comes from:

- The security report and the dossier come from the local stack. Two sample subscribers, one
  in 简体中文 and one in English, each have a confirmed alert about a synthetic breach
  (infra.web.sample_account). Each signs in over the HTTP API and requests this month's report
  with `POST /v1/account/reports`. The report worker renders it from the stored items, and both
  files are downloaded through the presigned URLs of `GET /v1/account/reports/{id}/{format}`.
  The dossier comes from `POST /v1/account/dossier`.
- The reconciliation summary comes from infra.tools.reconcile_samples: the service's own
  classifier over a fixed day of Stripe objects. The local stack would add nothing to the page,
  and a Stripe day with a lost webhook, a refund and a dispute takes the whole demo to build.

HTML pages are photographed in headless Chromium, the report at phone and desktop width and
the reconciliation at desktop width, because finance reads it at a desk. PDF pages become PNG
through pdftoppm (Debian's poppler-utils), and large PNGs are reduced (infra.web.images).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from infra.local.service import LocalService
from infra.web.browser import (
    DESKTOP_HEIGHT,
    DESKTOP_WIDTH,
    PHONE_WIDTH,
    capture_full_page,
    start_chromium,
)
from infra.web.images import render_pdf_pages, shrink_png
from infra.web.sample_account import Breach, Person, alerted_subscriber, sign_in

REPORT_PDF_PAGES = 2
DOSSIER_PDF_PAGES = 1
PHONE_PIXEL_RATIO = 2
REPORT_DEADLINE_S = 60.0
REQUEST_TIMEOUT_S = 30

# The English sample subscriber: an identity the real-name emulator accepts.
ENGLISH_PERSON = Person(
    "Alice Li", "310104198512120023", "+8613900139002", "alice@example.com", locale="en"
)
ENGLISH_BREACH = Breach("ExampleTravel2026", "ExampleTravel bookings", "2026-10-28")


@dataclass(frozen=True)
class ReportFiles:
    """One subscriber's report as downloaded: the HTML page and the PDF."""

    html: str
    pdf: bytes


# ---------------------------------------------------------------------------------------------
# The account's report routes


def _session() -> requests.Session:
    session = requests.Session()
    # Proxy settings from the environment must never route a request off 127.0.0.1.
    session.trust_env = False
    return session


def _authorized(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def request_report(service: LocalService, http: requests.Session, token: str) -> str:
    """Ask for this month's report and wait until the worker stored it. Returns its id."""
    requested = http.post(
        f"{service.base_url}/v1/account/reports",
        headers=_authorized(token),
        timeout=REQUEST_TIMEOUT_S,
    )
    requested.raise_for_status()
    report_id = str(requested.json()["report_id"])

    give_up = time.monotonic() + REPORT_DEADLINE_S
    while True:
        listed = http.get(
            f"{service.base_url}/v1/account/reports",
            headers=_authorized(token),
            timeout=REQUEST_TIMEOUT_S,
        )
        listed.raise_for_status()
        if any(entry["report_id"] == report_id for entry in listed.json()["reports"]):
            return report_id
        if time.monotonic() > give_up:
            raise TimeoutError(f"report {report_id} was not stored within {REPORT_DEADLINE_S} s")
        time.sleep(0.2)


def download_report(
    service: LocalService, http: requests.Session, token: str, report_id: str
) -> ReportFiles:
    """Download both files of a report through the download route's presigned URLs."""
    files: dict[str, bytes] = {}
    for file_format in ("html", "pdf"):
        link = http.get(
            f"{service.base_url}/v1/account/reports/{report_id}/{file_format}",
            headers=_authorized(token),
            timeout=REQUEST_TIMEOUT_S,
        )
        link.raise_for_status()
        downloaded = http.get(link.json()["url"], timeout=REQUEST_TIMEOUT_S)
        downloaded.raise_for_status()
        files[file_format] = downloaded.content
    return ReportFiles(html=files["html"].decode("utf-8"), pdf=files["pdf"])


def create_dossier(service: LocalService, http: requests.Session, token: str) -> bytes:
    """Create the subscriber's dossier for the police and download the PDF."""
    created = http.post(
        f"{service.base_url}/v1/account/dossier",
        json={"audience": "police"},
        headers=_authorized(token),
        timeout=REQUEST_TIMEOUT_S,
    )
    created.raise_for_status()
    downloaded = http.get(created.json()["url"], timeout=REQUEST_TIMEOUT_S)
    downloaded.raise_for_status()
    return downloaded.content


# ---------------------------------------------------------------------------------------------
# Pictures


def _photograph(pages: dict[str, str], profile: Path, out_dir: Path, *, mobile: bool) -> list[Path]:
    """Open each HTML page from a file in one Chromium and save a full-page PNG per name."""
    if mobile:
        driver = start_chromium(profile, width=PHONE_WIDTH, pixel_ratio=PHONE_PIXEL_RATIO)
    else:
        driver = start_chromium(profile, width=DESKTOP_WIDTH, height=DESKTOP_HEIGHT, mobile=False)
    written: list[Path] = []
    try:
        with tempfile.TemporaryDirectory() as work:
            for name, page in pages.items():
                source = Path(work) / f"{Path(name).stem}.html"
                source.write_text(page, encoding="utf-8")
                driver.get(source.as_uri())
                target = out_dir / name
                target.write_bytes(shrink_png(capture_full_page(driver)))
                written.append(target)
    finally:
        driver.quit()
    return written


def take_report_screenshots(
    service: LocalService, chinese_person: Person, profiles: Path, out_dir: Path
) -> list[Path]:
    """Save the report, dossier and reconciliation pictures in `out_dir`.

    `chinese_person` must already have a confirmed alert. The English sample subscriber is
    created and alerted here.
    """
    from idsentry.services.reconcile_html import render_html as render_reconciliation
    from infra.tools.reconcile_samples import sample_reconciliation

    alerted_subscriber(service, ENGLISH_PERSON, ENGLISH_BREACH)
    http = _session()
    reports: dict[str, ReportFiles] = {}
    dossier = b""
    for person in (chinese_person, ENGLISH_PERSON):
        token = sign_in(service, person)
        report_id = request_report(service, http, token)
        reports[person.locale] = download_report(service, http, token, report_id)
        if person is chinese_person:
            dossier = create_dossier(service, http, token)

    reconciliation = sample_reconciliation()
    written: list[Path] = []
    phone_profile, desktop_profile = profiles / "report-phone", profiles / "report-desktop"
    phone_profile.mkdir()
    desktop_profile.mkdir()
    written += _photograph(
        {"report.png": reports["zh-CN"].html, "report.en.png": reports["en"].html},
        phone_profile,
        out_dir,
        mobile=True,
    )
    written += _photograph(
        {
            "report-desktop.png": reports["zh-CN"].html,
            "report-desktop.en.png": reports["en"].html,
            "reconciliation.png": render_reconciliation(reconciliation, "zh-CN"),
            "reconciliation.en.png": render_reconciliation(reconciliation, "en"),
        },
        desktop_profile,
        out_dir,
        mobile=False,
    )
    written += render_pdf_pages(reports["zh-CN"].pdf, REPORT_PDF_PAGES, out_dir, "report-pdf")
    written += render_pdf_pages(dossier, DOSSIER_PDF_PAGES, out_dir, "dossier-pdf")
    return written
