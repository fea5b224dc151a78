"""Unit tests of the account page's files: both languages alike, texts and ids defined, served locally."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from infra.local.http_api import IncomingRequest
from infra.local.static_site import LocalSignupPage
from infra.web.site import WEB_ROOT, build_site, page_config

pytestmark = pytest.mark.unit

PAGES = ("account/index.html", "en/account/index.html")
SCRIPTS = ("account.js", "account-api.js", "account-ui.js", "account-sections.js")
API = "https://api.example.com"


class _PageParser(HTMLParser):
    """Collects ids, data-field values, script and style use, the page text JSON and the lang."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.fields: set[str] = set()
        self.scripts: list[dict[str, str | None]] = []
        self.style_attributes = 0
        self.lang: str | None = None
        self._in_text = False
        self.text_json = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang")
        if tag == "script":
            self.scripts.append(attributes)
        if "style" in attributes:
            self.style_attributes += 1
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        if attributes.get("data-field"):
            self.fields.add(str(attributes["data-field"]))
        self._in_text = attributes.get("id") == "page-text"

    def handle_endtag(self, tag: str) -> None:
        self._in_text = False

    def handle_data(self, data: str) -> None:
        if self._in_text:
            self.text_json += data


def _parse(page: str) -> _PageParser:
    parser = _PageParser()
    parser.feed((WEB_ROOT / page).read_text(encoding="utf-8"))
    return parser


def _key_paths(value: Any, prefix: str = "") -> set[str]:
    """Return the dotted path of every key in a nested JSON object."""
    if not isinstance(value, dict):
        return set()
    paths: set[str] = set()
    for key, inner in value.items():
        path = f"{prefix}{key}"
        paths.add(path)
        paths |= _key_paths(inner, f"{path}.")
    return paths


def _scripts_text() -> str:
    return "\n".join((WEB_ROOT / name).read_text(encoding="utf-8") for name in SCRIPTS)


def _local_page() -> LocalSignupPage:
    return LocalSignupPage(lambda: page_config(API, cross_border=True))


def _get(target: str) -> Any:
    response = _local_page().respond(
        IncomingRequest("GET", target, "HTTP/1.1", [], b"", "127.0.0.1")
    )
    assert response is not None
    return response


def test_pages_have_same_structure() -> None:
    chinese, english = (_parse(page) for page in PAGES)

    assert chinese.lang == "zh-CN"
    assert english.lang == "en"
    assert chinese.ids == english.ids
    assert chinese.fields == english.fields
    assert _key_paths(json.loads(chinese.text_json)) == _key_paths(json.loads(english.text_json))


def test_pages_need_no_inline_code() -> None:
    for page in PAGES:
        parsed = _parse(page)

        assert parsed.style_attributes == 0, page
        for script in parsed.scripts:
            # A module from the site, or the page's texts as JSON, which CSP does not run.
            assert script.get("type") in ("module", "application/json"), page
            if script.get("type") == "module":
                assert str(script.get("src")).endswith("account.js"), page


def test_page_fields_are_api_fields() -> None:
    for page in PAGES:
        assert _parse(page).fields == {"mobile", "code"}


def test_scripts_use_only_defined_texts_and_ids() -> None:
    scripts = _scripts_text()
    page = _parse(PAGES[0])
    texts = set(json.loads(page.text_json))

    used_texts = set(re.findall(r"\btext\.([a-z_]+)", scripts))
    used_ids = set(re.findall(r'getElementById\("([A-Za-z0-9_-]+)"\)', scripts))

    assert used_texts
    assert used_texts <= texts
    assert used_ids <= page.ids


def test_scripts_import_only_site_modules() -> None:
    imported = set(re.findall(r'from "\./([a-z-]+\.js)"', _scripts_text()))

    assert imported == set(SCRIPTS) - {"account.js"}
    for name in imported:
        assert (WEB_ROOT / name).is_file()


def test_scripts_keep_token_out_of_lasting_storage() -> None:
    scripts = _scripts_text()

    assert "sessionStorage.setItem" in scripts
    # Comments may name them, but code never reads or writes them.
    assert re.search(r"\blocalStorage\s*[.\[]", scripts) is None
    assert re.search(r"\bdocument\.cookie\b", scripts) is None
    assert "innerHTML" not in scripts


def test_site_contains_account_files() -> None:
    files = build_site(page_config(API, cross_border=True))

    for name in (*PAGES, *SCRIPTS):
        assert name in files
    for name in SCRIPTS:
        assert files[name].content_type == "text/javascript; charset=utf-8"


@pytest.mark.parametrize(
    ("target", "lang"),
    [("/signup/account/", "zh-CN"), ("/signup/en/account/", "en")],
)
def test_local_page_serves_account(target: str, lang: str) -> None:
    response = _get(target)

    assert response.status == 200
    assert f'lang="{lang}"'.encode() in response.body
    assert dict(response.headers)["content-security-policy"].startswith("default-src 'none'")


def test_local_page_redirects_account_without_slash() -> None:
    response = _get("/signup/account")

    assert response.status == 301
    assert dict(response.headers)["location"] == "/signup/account/"


def test_relative_links_resolve_to_site_files() -> None:
    files = build_site(page_config(API, cross_border=True))
    for page in PAGES:
        source = (WEB_ROOT / page).read_text(encoding="utf-8")
        for link in re.findall(r'(?:href|src)="(\.\.[^"]*)"', source):
            resolved = (Path("/") / Path(page).parent / link).resolve().relative_to("/")
            target = resolved.as_posix()
            if link.endswith("/"):
                target = f"{target}/index.html" if target != "." else "index.html"
            assert target in files, f"{page} links to {link}, which the site does not have"
