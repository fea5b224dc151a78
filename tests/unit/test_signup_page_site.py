"""Unit tests of the signup page's files, config, headers and URL mapping, locally and in the template."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from idsentry.consents import CURRENT_VERSIONS, ConsentKind
from idsentry.models.signup import SignupBody
from infra.local.http_api import IncomingRequest
from infra.local.static_site import LocalSignupPage
from infra.local.template import load_template
from infra.web.site import (
    CSP_DIRECTIVES,
    PERMISSIONS_POLICY,
    SECURITY_HEADERS,
    WEB_ROOT,
    SiteError,
    build_site,
    content_security_policy,
    page_config,
)

pytestmark = pytest.mark.unit

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
PAGES = ("index.html", "en/index.html")
API = "https://api.example.com"


class _PageParser(HTMLParser):
    """Collects element ids, data-field values, the page text JSON and the html lang."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.fields: set[str] = set()
        self.lang: str | None = None
        self._in_text = False
        self.text_json = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang")
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


def _request(target: str, method: str = "GET") -> IncomingRequest:
    return IncomingRequest(method, target, "HTTP/1.1", [], b"", "127.0.0.1")


def _local_page(cross_border: bool = True) -> LocalSignupPage:
    return LocalSignupPage(lambda: page_config(API, cross_border=cross_border))


def test_config_names_current_consent_versions() -> None:
    config = page_config(API, cross_border=True)

    assert config["api_base_url"] == API
    assert set(config["consents"]) == {kind.value for kind in ConsentKind}
    for kind in ConsentKind:
        assert config["consents"][kind.value]["version"] == CURRENT_VERSIONS[kind]
        assert config["consents"][kind.value]["text"].endswith(f"-{CURRENT_VERSIONS[kind]}.md")


def test_config_without_cross_border_consent() -> None:
    config = page_config(API, cross_border=False)

    assert "cross_border_transfer" not in config["consents"]
    assert set(config["consents"]) == {"terms", "sensitive_personal_information"}


@pytest.mark.parametrize(
    "url",
    ["ftp://api.example.com", "https://api.example.com/", "api.example.com", "https://x?a=1"],
)
def test_config_rejects_invalid_api_url(url: str) -> None:
    with pytest.raises(SiteError, match="invalid API base URL"):
        page_config(url, cross_border=True)


def test_site_contains_pages_scripts_and_texts() -> None:
    config = page_config(API, cross_border=True)
    files = build_site(config)

    for name in (*PAGES, "404.html", "app.js", "style.css", "config.json"):
        assert name in files
    assert files["index.html"].content_type == "text/html; charset=utf-8"
    assert files["app.js"].content_type == "text/javascript; charset=utf-8"
    assert json.loads(files["config.json"].body) == config
    for consent in config["consents"].values():
        assert files[consent["text"]].content_type == "text/markdown; charset=utf-8"
        assert "## 简体中文" in files[consent["text"]].body.decode("utf-8")
        assert "## English" in files[consent["text"]].body.decode("utf-8")


def test_site_rejects_unknown_file_type(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>", encoding="utf-8")
    (tmp_path / "logo.webp").write_bytes(b"RIFF")

    with pytest.raises(SiteError, match=r"unsupported file type \.webp"):
        build_site(page_config(API, cross_border=True), web_root=tmp_path)


def test_site_rejects_committed_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")

    with pytest.raises(SiteError, match=r"config\.json"):
        build_site(page_config(API, cross_border=True), web_root=tmp_path)


def test_pages_have_same_structure() -> None:
    chinese, english = (_parse(page) for page in PAGES)

    assert chinese.lang == "zh-CN"
    assert english.lang == "en"
    assert chinese.ids == english.ids
    assert chinese.fields == english.fields
    assert set(json.loads(chinese.text_json)) == set(json.loads(english.text_json))


def test_page_fields_are_api_fields() -> None:
    api_fields = set(SignupBody.model_fields) | {"code"}
    api_fields |= {f"consents.{kind.value}" for kind in ConsentKind}

    assert _parse("index.html").fields <= api_fields


def test_script_uses_only_defined_texts_and_ids() -> None:
    script = (WEB_ROOT / "app.js").read_text(encoding="utf-8")
    page = _parse("index.html")
    texts = set(json.loads(page.text_json))

    used_texts = set(re.findall(r"\btext\.([a-z_]+)", script))
    used_ids = set(re.findall(r'getElementById\("([A-Za-z0-9_-]+)"\)', script))

    assert used_texts <= texts
    assert used_ids <= page.ids


def test_template_csp_matches_local_policy() -> None:
    config = TEMPLATE["Resources"]["SignupPageHeadersPolicy"]["Properties"]
    security = config["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]

    template_csp = security["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]

    assert template_csp == content_security_policy(["'self'", "${PublicBaseUrl}/v1/"])
    assert security["ContentSecurityPolicy"]["Override"] is True


def test_template_headers_match_local_headers() -> None:
    policy = TEMPLATE["Resources"]["SignupPageHeadersPolicy"]["Properties"]
    config = policy["ResponseHeadersPolicyConfig"]
    security = config["SecurityHeadersConfig"]
    custom = {
        item["Header"].lower(): item["Value"] for item in config["CustomHeadersConfig"]["Items"]
    }
    local = dict(SECURITY_HEADERS)

    assert security["FrameOptions"]["FrameOption"] == local["x-frame-options"]
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == local["referrer-policy"]
    assert "ContentTypeOptions" in security
    assert custom["permissions-policy"] == PERMISSIONS_POLICY == local["permissions-policy"]
    assert custom["cross-origin-opener-policy"] == local["cross-origin-opener-policy"]


def test_template_bucket_is_private_and_versioned() -> None:
    bucket = TEMPLATE["Resources"]["SignupPageBucket"]["Properties"]

    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert "ServerSideEncryptionConfiguration" in bucket["BucketEncryption"]


def test_template_cors_allows_distribution_origin() -> None:
    cors = TEMPLATE["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]

    assert cors["AllowOrigins"] == [{"Fn::Sub": "https://${SignupPageDistribution.DomainName}"}]
    # POST for the signup page, and GET, PUT and DELETE with a bearer token for the account page.
    assert cors["AllowMethods"] == ["GET", "POST", "PUT", "DELETE"]
    assert {"content-type", "accept-language", "idempotency-key", "authorization"} <= set(
        cors["AllowHeaders"]
    )
    assert cors["ExposeHeaders"] == ["retry-after"]


def test_local_page_sends_security_headers() -> None:
    response = _local_page().respond(_request("/signup/"))

    assert response is not None
    headers = dict(response.headers)
    assert response.status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == content_security_policy(["'self'"])
    assert headers["content-security-policy"].startswith(CSP_DIRECTIVES[0])
    assert headers["x-content-type-options"] == "nosniff"
    assert b'lang="zh-CN"' in response.body


@pytest.mark.parametrize(
    ("target", "status", "location"),
    [
        ("/", 302, "/signup/"),
        ("/?ref=ABCD1234", 302, "/signup/?ref=ABCD1234"),
        ("/signup", 301, "/signup/"),
        ("/signup/en", 301, "/signup/en/"),
        ("/signup/en?ref=ABCD1234", 301, "/signup/en/?ref=ABCD1234"),
    ],
)
def test_local_page_redirects(target: str, status: int, location: str) -> None:
    response = _local_page().respond(_request(target))

    assert response is not None
    assert response.status == status
    assert dict(response.headers)["location"] == location


def test_local_page_serves_english_and_config() -> None:
    page = _local_page(cross_border=False)

    english = page.respond(_request("/signup/en/"))
    config = page.respond(_request("/signup/config.json"))

    assert english is not None and b'lang="en"' in english.body
    assert config is not None
    assert json.loads(config.body) == page_config(API, cross_border=False)


def test_local_page_unknown_file_is_404_page() -> None:
    response = _local_page().respond(_request("/signup/missing.js"))

    assert response is not None
    assert response.status == 404
    assert "页面不存在".encode() in response.body


def test_local_page_rejects_post() -> None:
    response = _local_page().respond(_request("/signup/", method="POST"))

    assert response is not None
    assert response.status == 405
    assert dict(response.headers)["allow"] == "GET, HEAD"


def test_local_page_leaves_api_paths_alone() -> None:
    assert _local_page().respond(_request("/v1/signups", method="POST")) is None
    assert _local_page().respond(_request("/signupx")) is None


def _run_viewer_function(uri: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found: the CloudFront function runs in Node.js here")
    code = TEMPLATE["Resources"]["SignupPageIndexFunction"]["Properties"]["FunctionCode"]
    script = (
        f"{code}\nconsole.log(JSON.stringify(handler({{request: {{uri: {json.dumps(uri)}}}}})));"
    )
    completed = subprocess.run(  # noqa: S603 (fixed program, script built from the template)
        [node, "-e", script], capture_output=True, text=True, check=True, timeout=30
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


@pytest.mark.parametrize(
    ("uri", "mapped"),
    [("/", "/index.html"), ("/en/", "/en/index.html"), ("/app.js", "/app.js")],
)
def test_cloudfront_function_maps_directories(uri: str, mapped: str) -> None:
    assert _run_viewer_function(uri) == {"uri": mapped}


def test_cloudfront_function_redirects_like_local_page() -> None:
    redirect = _run_viewer_function("/en")
    local = _local_page().respond(_request("/signup/en"))

    assert redirect["statusCode"] == 301
    assert redirect["headers"]["location"]["value"] == "/en/"
    assert local is not None and local.status == 301
