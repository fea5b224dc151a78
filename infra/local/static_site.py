"""Serve the signup page from the local HTTP server under /signup/, as CloudFront serves it from S3."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from infra.local.http_api import IncomingRequest, OutgoingResponse
from infra.web.site import (
    CACHE_CONTROL,
    NOT_FOUND_PAGE,
    SECURITY_HEADERS,
    build_site,
    content_security_policy,
)

SIGNUP_PAGE_PREFIX = "/signup"


class LocalSignupPage:
    """Serve GET and HEAD requests under /signup/ with the site's files and security headers.

    `config` builds config.json on each request, and the files are read again on each request,
    so a page edited during `make run` shows on reload. URLs are mapped as the viewer-request
    function of the CloudFront distribution maps them: a path ending in "/" serves its
    index.html and a last segment without a dot is redirected to the same path with "/".
    The page and the API share this origin, so connect-src needs only 'self'.
    """

    def __init__(self, config: Callable[[], Mapping[str, Any]]) -> None:
        self._config = config
        self._headers = [
            ("content-security-policy", content_security_policy(["'self'"])),
            *SECURITY_HEADERS,
        ]

    def respond(self, request: IncomingRequest) -> OutgoingResponse | None:
        """Return the response for a request to the page, or None for any other path."""
        path, separator, query = request.target.partition("?")
        if path == "/":
            return _redirect(302, f"{SIGNUP_PAGE_PREFIX}/{separator}{query}")
        if path != SIGNUP_PAGE_PREFIX and not path.startswith(SIGNUP_PAGE_PREFIX + "/"):
            return None
        if request.method not in ("GET", "HEAD"):
            return OutgoingResponse(405, [("allow", "GET, HEAD")], b"")

        relative = unquote(path[len(SIGNUP_PAGE_PREFIX) + 1 :])
        last_segment = relative.rsplit("/", 1)[-1]
        if path == SIGNUP_PAGE_PREFIX or (last_segment and "." not in last_segment):
            return _redirect(301, f"{path}/{separator}{query}")
        if relative == "" or relative.endswith("/"):
            relative += "index.html"

        files = build_site(self._config())
        status = 200
        found = files.get(relative)
        if found is None:
            status, found = 404, files[NOT_FOUND_PAGE]
        headers = [
            ("content-type", found.content_type),
            ("cache-control", CACHE_CONTROL),
            *self._headers,
        ]
        return OutgoingResponse(status, headers, found.body)


def _redirect(status: int, location: str) -> OutgoingResponse:
    return OutgoingResponse(status, [("location", location), ("cache-control", "no-store")], b"")
