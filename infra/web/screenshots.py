"""`make screenshots`: save the signup page at phone width, in zh-CN and en, under docs/.

    python -m infra.web.screenshots [--out DIR]

Starts the local stack on 127.0.0.1 and headless Chromium (Debian's chromium and
chromium-driver packages), and needs a font with Chinese glyphs (Debian's fonts-noto-cjk).
"""

from __future__ import annotations

import argparse
import base64
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from infra.local.service import LocalService
from infra.web.browser import PHONE_WIDTH, missing_browser, start_chromium
from infra.web.site import REPOSITORY_ROOT

# Device pixels per CSS pixel, as on most phones, so that text in the image stays sharp.
PIXEL_RATIO = 2
PAGE_DEADLINE_S = 30
SCREENSHOTS = (("zh-CN", "", "signup-page.png"), ("en", "en/", "signup-page.en.png"))


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


def capture_full_page(driver: Any) -> bytes:
    """Return a PNG of the whole page, beyond the viewport's height."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    return base64.b64decode(shot["data"])


def take_screenshots(out_dir: Path) -> list[Path]:
    """Start the local stack and Chromium, and write one screenshot per language to `out_dir`."""
    from selenium.webdriver.support.ui import WebDriverWait

    written: list[Path] = []
    with LocalService(port=0) as service, tempfile.TemporaryDirectory() as profiles:
        for language, path, name in SCREENSHOTS:
            profile = Path(profiles) / language
            profile.mkdir()
            driver = start_chromium(
                profile, language=language, width=PHONE_WIDTH, pixel_ratio=PIXEL_RATIO
            )
            try:
                driver.get(service.signup_page_url + path)
                WebDriverWait(driver, PAGE_DEADLINE_S).until(
                    lambda d: d.execute_script("return document.body.dataset.ready") == "true"
                )
                target = out_dir / name
                target.write_bytes(capture_full_page(driver))
                written.append(target)
            finally:
                driver.quit()
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

    for reason in (missing_browser(), missing_chinese_font()):
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
