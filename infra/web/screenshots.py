"""`make screenshots`: save pictures of the pages and reports, in zh-CN and en, under docs/.

    python -m infra.web.screenshots [--out DIR]

Starts the local stack on 127.0.0.1 and headless Chromium (Debian's chromium and
chromium-driver packages), and needs a font with Chinese glyphs (Debian's fonts-noto-cjk) and
pdftoppm (Debian's poppler-utils). The signup and account pages are taken at phone width. The
account pages show a sample subscriber who was alerted about a synthetic breach, signed in
with the code from the Twilio emulator, with the first step of the alert's checklist done.
infra.web.report_screenshots then saves the security report of that subscriber and of an
English one (HTML at phone and desktop width, and the first PDF pages), a dossier and the
reconciliation summary.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from infra.local.service import LocalService
from infra.web.browser import PHONE_WIDTH, capture_full_page, missing_browser, start_chromium
from infra.web.images import missing_pdftoppm, shrink_png
from infra.web.report_screenshots import take_report_screenshots
from infra.web.sample_account import (
    Breach,
    Person,
    alerted_subscriber,
    code_in,
    sms_to,
    wait_for_sms,
)
from infra.web.site import REPOSITORY_ROOT

# Device pixels per CSS pixel, as on most phones, so that text in the image stays sharp.
PIXEL_RATIO = 2
PAGE_DEADLINE_S = 30
SCREENSHOTS = (("zh-CN", "", "signup-page.png"), ("en", "en/", "signup-page.en.png"))
ACCOUNT_SCREENSHOTS = (("account/", "account-page.png"), ("en/account/", "account-page.en.png"))
# The identities the real-name emulator accepts, among them the sample subscriber.
IDENTITIES = REPOSITORY_ROOT / "events" / "demo" / "identities.json"
SAMPLE_PERSON = Person("孙悦", "110102199406120024", "+8618800188008", "sunyue@example.com")
SAMPLE_BREACH = Breach("ExampleMall2026", "ExampleMall members", "2026-11-10")
# The sample's sign-in code follows its signup code within seconds.
SERVICE_PARAMETERS = {"OtpResendIntervalSeconds": "1"}


def missing_chinese_font() -> str | None:
    """Return why Chinese text would render as empty boxes, or None when a font covers it."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return "fc-list not found; install fontconfig and fonts-noto-cjk"
    listed = subprocess.run(  # noqa: S603 (fixed arguments)
        [fc_list, ":lang=zh-cn", "family"], capture_output=True, text=True, check=False
    )
    if not listed.stdout.strip():
        return "no font with Chinese glyphs found; install one: apt-get install -y fonts-noto-cjk"
    return None


def _wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, PAGE_DEADLINE_S).until(condition)


def _open(driver: Any, url: str) -> None:
    driver.get(url)
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "true")


def _sections_loaded(driver: Any) -> bool:
    states = driver.execute_script(
        "return [...document.querySelectorAll('#account-sections > section')]"
        ".map((section) => section.dataset.state)"
    )
    return bool(states) and all(state == "loaded" for state in states)


def _sign_in(driver: Any, service: LocalService, person: Person) -> None:
    """Sign in on the account page with the code that the Twilio emulator received."""
    from selenium.webdriver.common.by import By

    before = len(sms_to(service, person.mobile))
    driver.find_element(By.ID, "mobile").send_keys(person.mobile.removeprefix("+86"))
    driver.find_element(By.ID, "sign-in-submit").click()
    _wait(driver, lambda d: d.find_element(By.ID, "code").is_displayed())
    code = code_in(wait_for_sms(service, person.mobile, before + 1)[-1])
    driver.find_element(By.ID, "code").send_keys(code)
    driver.find_element(By.ID, "code-submit").click()
    _wait(driver, _sections_loaded)


def _open_first_checklist(driver: Any, tick: bool) -> None:
    """Open the first alert's checklist, and tick its first step when `tick` is set."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, ".playbook-details summary").click()
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".checklist input[type=checkbox]"))
    if tick:
        progress = driver.find_element(By.CSS_SELECTOR, ".playbook-details .progress").text
        driver.find_element(By.CSS_SELECTOR, ".checklist input[type=checkbox]").click()
        _wait(
            driver,
            lambda d: (
                d.find_element(By.CSS_SELECTOR, ".playbook-details .progress").text != progress
            ),
        )


def _account_screenshots(service: LocalService, profile: Path, out_dir: Path) -> list[Path]:
    """Sign the sample subscriber in once and photograph the account page in each language."""
    alerted_subscriber(service, SAMPLE_PERSON, SAMPLE_BREACH)
    written: list[Path] = []
    driver = start_chromium(profile, width=PHONE_WIDTH, pixel_ratio=PIXEL_RATIO)
    try:
        for index, (path, name) in enumerate(ACCOUNT_SCREENSHOTS):
            # The tab keeps the session, so the second page opens signed in.
            _open(driver, service.signup_page_url + path)
            if index == 0:
                _sign_in(driver, service, SAMPLE_PERSON)
            _wait(driver, _sections_loaded)
            _open_first_checklist(driver, tick=index == 0)
            # Leave the focus ring off the picture.
            driver.execute_script("document.activeElement?.blur()")
            target = out_dir / name
            target.write_bytes(shrink_png(capture_full_page(driver)))
            written.append(target)
    finally:
        driver.quit()
    return written


def take_screenshots(out_dir: Path) -> list[Path]:
    """Start the local stack and Chromium, and write each page's screenshots to `out_dir`."""
    written: list[Path] = []
    with (
        LocalService(port=0, identities_path=IDENTITIES, parameters=SERVICE_PARAMETERS) as service,
        tempfile.TemporaryDirectory() as profiles,
    ):
        for language, path, name in SCREENSHOTS:
            profile = Path(profiles) / language
            profile.mkdir()
            driver = start_chromium(
                profile, language=language, width=PHONE_WIDTH, pixel_ratio=PIXEL_RATIO
            )
            try:
                _open(driver, service.signup_page_url + path)
                target = out_dir / name
                target.write_bytes(shrink_png(capture_full_page(driver)))
                written.append(target)
            finally:
                driver.quit()

        profile = Path(profiles) / "account"
        profile.mkdir()
        written.extend(_account_screenshots(service, profile, out_dir))
        written.extend(take_report_screenshots(service, SAMPLE_PERSON, Path(profiles), out_dir))
    return written


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, check the browser and fonts, and write the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=REPOSITORY_ROOT / "docs",
        help="directory for the PNG files (default: docs/)",
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    for reason in (missing_browser(), missing_chinese_font(), missing_pdftoppm()):
        if reason is not None:
            print(f"cannot take screenshots: {reason}", file=sys.stderr)
            return 1
    if not arguments.out.is_dir():
        print(f"cannot take screenshots: {arguments.out} is not a directory", file=sys.stderr)
        return 1

    for path in take_screenshots(arguments.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
