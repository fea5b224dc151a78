"""Start Debian's headless Chromium through Selenium, unable to reach anything beyond 127.0.0.1."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

# Debian's chromium and chromium-driver packages install these; no browser can be downloaded.
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver"

# A common phone viewport in CSS pixels (iPhone 12 to 15).
PHONE_WIDTH = 390
PHONE_HEIGHT = 844
# A common laptop viewport in CSS pixels.
DESKTOP_WIDTH = 1280
DESKTOP_HEIGHT = 800

CHROMIUM_FLAGS = (
    "--headless",
    # Chromium's sandbox cannot start as root, which is how CI runs.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    # Chromium connects to loopback addresses directly and sends every other request to this
    # proxy address, where nothing listens, so a page cannot reach any other host.
    "--proxy-server=http://127.0.0.1:9",
)


def missing_browser() -> str | None:
    """Return why the browser tests cannot run on this machine, or None when they can."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return f"{' and '.join(missing)} not found; install Debian's packages: {INSTALL_HINT}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is missing; run: make setup"
    return None


def start_chromium(
    user_data_dir: Path,
    *,
    language: str = "zh-CN",
    timezone: str = "Asia/Shanghai",
    width: int = PHONE_WIDTH,
    height: int = PHONE_HEIGHT,
    pixel_ratio: float = 1.0,
    mobile: bool = True,
) -> WebDriver:
    """Start headless Chromium with a phone's viewport, `language` and IANA `timezone`.

    With `mobile` False the viewport is a desktop browser's, without touch. `user_data_dir`
    must be a new, empty directory, so that no profile state carries over from another run.
    The caller quits the returned driver.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    reason = missing_browser()
    if reason is not None:
        raise RuntimeError(f"cannot start Chromium: {reason}")

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--lang={language}")
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    options.add_experimental_option(
        "mobileEmulation",
        {
            "deviceMetrics": {
                "width": width,
                "height": height,
                "pixelRatio": pixel_ratio,
                "mobile": mobile,
                "touch": mobile,
            }
        },
    )
    # Console messages (CSP violations, uncaught errors) stay readable through get_log.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    # A Service with a path keeps Selenium Manager, which would download a driver, out of it.
    service = Service(executable_path=str(CHROMEDRIVER), log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": timezone})
    except BaseException:
        driver.quit()
        raise
    return driver


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
