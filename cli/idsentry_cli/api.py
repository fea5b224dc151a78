"""Client of the staff admin API (`/v1/admin/...`): SigV4-signed when deployed, a token locally."""

from __future__ import annotations

from typing import Any

import requests
from botocore.auth import SigV4Auth as BotocoreSigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from idsentry_cli.errors import ApiError

API_SERVICE = "execute-api"
# Seconds to connect and to wait for a response. A review decision may take up to the
# function's 15-second timeout.
TIMEOUT = (5, 30)


class SigV4Auth(requests.auth.AuthBase):
    """Sign each request for API Gateway's AWS_IAM authorization with the caller's credentials."""

    def __init__(self, credentials: Credentials, region: str) -> None:
        self.credentials = credentials
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # Refreshable credentials (SSO, assumed roles) may change between requests, so each
        # signature uses the current frozen set.
        frozen = self.credentials.get_frozen_credentials()
        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=request.body or b"",
            headers={
                name: value
                for name, value in request.headers.items()
                if name.lower() == "content-type"
            },
        )
        BotocoreSigV4Auth(frozen, API_SERVICE, self.region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request


class LocalTokenAuth(requests.auth.AuthBase):
    """Send the local stack's admin token, which replaces IAM authorization on the local API."""

    def __init__(self, header: str, token: str) -> None:
        self.header = header
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self.header] = self.token
        return request


class AdminApi:
    """Send requests to the admin routes of one stack's HTTP API."""

    def __init__(self, base_url: str, auth: requests.auth.AuthBase) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.http = requests.Session()

    def get(
        self, path: str, params: dict[str, str] | None = None, *, missing_ok: bool = False
    ) -> Any:
        """GET `path` and return its JSON body; with `missing_ok`, None for a 404."""
        return self._send("GET", path, params=params, missing_ok=missing_ok)

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        """POST a JSON body to `path`, with extra `headers` if given, and return the JSON response."""
        return self._send("POST", path, body=body, headers=headers)

    def probe(self) -> int:
        """Request the API's root and return the status: any response shows it is reachable."""
        response = self.http.get(self.base_url + "/", timeout=TIMEOUT)
        return response.status_code

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        missing_ok: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        response = self.http.request(
            method,
            self.base_url + path,
            params=params,
            json=body,
            headers=headers,
            auth=self.auth,
            timeout=TIMEOUT,
        )
        if response.status_code == 404 and missing_ok:
            return None
        if response.ok:
            return response.json()
        raise _api_error(method, path, response)


def _api_error(method: str, path: str, response: requests.Response) -> ApiError:
    status = response.status_code
    try:
        document = response.json()
    except ValueError:
        document = {}
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        # API Gateway's own responses (authorization, throttling) carry only `message`.
        error = {"message": document.get("message") if isinstance(document, dict) else None}
    message = error.get("message") or response.reason or "no message"

    if status in (401, 403):
        return ApiError(
            status,
            error.get("code"),
            f"{method} {path} was rejected with HTTP {status} ({message}): these credentials "
            "may not call this route. Use the staff role that may, from the stack's outputs: "
            "AnalystRoleArn for reviews, deliveries and dossiers, OperatorRoleArn for intake, "
            "breaches and reports, FinanceRoleArn for the ledger and reconciliations",
            message,
        )
    return ApiError(
        status,
        error.get("code"),
        f"{method} {path} failed with HTTP {status}: {message}",
        message,
        error.get("field"),
    )
