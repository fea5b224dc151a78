"""The signup page's files and headers as a browser receives them, from the local stack or S3."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import urlsplit

from idsentry.consents import CURRENT_VERSIONS, ConsentKind

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
WEB_ROOT = REPOSITORY_ROOT / "web"
CONSENT_ROOT = REPOSITORY_ROOT / "docs" / "consents"

CONFIG_FILE = "config.json"
NOT_FOUND_PAGE = "404.html"

# docs/consents/<prefix>-<version>.md contains the text of each consent kind.
CONSENT_FILE_PREFIXES: Final[dict[ConsentKind, str]] = {
    ConsentKind.TERMS: "terms",
    ConsentKind.SENSITIVE_PERSONAL_INFORMATION: "sensitive",
    ConsentKind.CROSS_BORDER_TRANSFER: "cross-border",
}

CONTENT_TYPES: Final[dict[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# Browsers revalidate every file on each visit (by ETag), so a new page never runs with an old
# script. CloudFront keeps a file for 5 minutes, and an upload invalidates its cache.
CACHE_CONTROL = "max-age=0, must-revalidate, s-maxage=300"

# The same policy is in template.yaml (SignupPageHeadersPolicy), where connect-src also names
# the API under PublicBaseUrl. A unit test keeps the two equal.
CSP_DIRECTIVES: Final[tuple[str, ...]] = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    # The form is sent by script only: a native submission would put the ID number in a URL.
    "form-action 'none'",
    "frame-ancestors 'none'",
)
PERMISSIONS_POLICY = "camera=(), geolocation=(), microphone=(), payment=(), usb=()"
# Headers that CloudFront's response headers policy adds besides the CSP and HSTS (which
# applies only over HTTPS, so the local stack leaves it out).
SECURITY_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("permissions-policy", PERMISSIONS_POLICY),
    ("cross-origin-opener-policy", "same-origin"),
)


class SiteError(ValueError):
    """The web folder, a consent text or the API URL is invalid for building the site."""


@dataclass(frozen=True)
class SiteFile:
    """One file of the site: its bytes and its Content-Type."""

    body: bytes
    content_type: str


def content_security_policy(connect_sources: Iterable[str]) -> str:
    """Return the page's Content-Security-Policy with `connect_sources` in connect-src."""
    connect = " ".join(["connect-src", *connect_sources])
    return "; ".join([*CSP_DIRECTIVES[:4], connect, *CSP_DIRECTIVES[4:]])


def page_config(api_base_url: str, *, cross_border: bool) -> dict[str, Any]:
    """Build config.json: the API's base URL and the consents the form requires, with versions.

    The form shows the cross-border consent only where the deployment provides data abroad,
    the same rule that signup applies (`required_consents`).
    """
    parts = urlsplit(api_base_url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or api_base_url.endswith("/")
    ):
        raise SiteError(
            f"invalid API base URL {api_base_url!r}: expected http(s)://host[/path] "
            "without a trailing slash"
        )

    consents: dict[str, dict[str, str]] = {}
    for kind in ConsentKind:
        if kind is ConsentKind.CROSS_BORDER_TRANSFER and not cross_border:
            continue
        version = CURRENT_VERSIONS[kind]
        text = CONSENT_ROOT / f"{CONSENT_FILE_PREFIXES[kind]}-{version}.md"
        if not text.is_file():
            raise SiteError(
                f"missing consent text {text.relative_to(REPOSITORY_ROOT)} for {kind.value} "
                f"version {version}: add the file or correct CURRENT_VERSIONS"
            )
        consents[kind.value] = {"version": version, "text": f"consents/{text.name}"}
    return {"api_base_url": api_base_url, "consents": consents}


def build_site(config: Mapping[str, Any], web_root: Path = WEB_ROOT) -> dict[str, SiteFile]:
    """Return every file of the site by its path relative to the site root.

    The site is the files of `web_root`, the consent texts that `config` names and config.json
    itself. Raise SiteError for a file type without a known Content-Type and for a
    config.json in `web_root`, which would hide the generated one.
    """
    files: dict[str, SiteFile] = {}
    for path in sorted(web_root.rglob("*")):
        relative = path.relative_to(web_root)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if relative.as_posix() == CONFIG_FILE:
            raise SiteError(f"remove {path}: the site builds {CONFIG_FILE} from the stack")
        files[relative.as_posix()] = SiteFile(path.read_bytes(), _content_type(path))

    for consent in config["consents"].values():
        source = CONSENT_ROOT / PurePosixPath(consent["text"]).name
        files[consent["text"]] = SiteFile(source.read_bytes(), CONTENT_TYPES[".md"])

    body = json.dumps(config, ensure_ascii=False, indent=2) + "\n"
    files[CONFIG_FILE] = SiteFile(body.encode("utf-8"), CONTENT_TYPES[".json"])
    return files


def _content_type(path: Path) -> str:
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        raise SiteError(
            f"unsupported file type {path.suffix or '(none)'} of {path}: "
            f"add its Content-Type to CONTENT_TYPES in {Path(__file__).name}"
        )
    return content_type
