"""The stack a command talks to: the local stack of `make run`, or a deployed CloudFormation stack.

A local target reads `.local/stack.json`, which `make run` writes: the HTTP API's URL, moto's
endpoint, the admin token that replaces IAM authorization locally, and the template's outputs. A
deployed target reads the stack's outputs with DescribeStacks and signs admin API requests with
SigV4 under the caller's AWS credentials.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
import botocore.exceptions
import requests
from botocore.config import Config

from idsentry_cli.api import LocalTokenAuth, SigV4Auth
from idsentry_cli.errors import TargetError

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
LOCAL_STATE_FILE = REPOSITORY_ROOT / ".local" / "stack.json"
# moto accepts any credentials; these are not a secret.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
# Few retries with short connect timeouts, so that an unreachable endpoint fails in seconds.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60
)
LOCAL_STATE_FIELDS = ("base_url", "aws_endpoint_url", "aws_region", "admin")


@dataclass(frozen=True)
class Target:
    """Endpoints, outputs and credentials of one stack."""

    kind: Literal["local", "deployed"]
    description: str
    region: str
    api_url: str
    outputs: Mapping[str, str]
    session: boto3.Session
    api_auth: requests.auth.AuthBase
    endpoint_url: str | None = None
    stack_name: str | None = None
    stack_status: str | None = None
    state_file: Path | None = None
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def client(self, service_name: str) -> Any:
        """Return a boto3 client for this stack's account and region (moto's, locally)."""
        if service_name not in self._clients:
            self._clients[service_name] = self.session.client(
                service_name, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG
            )
        return self._clients[service_name]

    def output(self, name: str) -> str:
        """Return the stack output `name`, or raise TargetError saying how to get it."""
        if name in self.outputs:
            return self.outputs[name]
        if self.kind == "local":
            fix = "restart `make run`, so that its state file lists the current template's outputs"
        else:
            fix = "deploy the current template.yaml, which defines it"
        raise TargetError(f"{self.description} has no output {name}: {fix}")

    def unreachable_hint(self, url: str) -> str:
        """Return what to do when a connection to `url` of this stack failed."""
        if self.kind == "local":
            return (
                f"cannot connect to the local stack at {url}. {self.state_file} is left from a "
                "`make run` that has stopped: start `make run` again in another terminal"
            )
        return (
            f"cannot connect to {url}: check the network connection and that {self.region} "
            f"is the region of stack {self.stack_name} (--region)"
        )


def local_target(state_file: Path) -> Target:
    """Read the state file of a running `make run`, or raise TargetError naming the fix."""
    if not state_file.is_file():
        raise TargetError(
            f"no local stack: {state_file} not found. Start one with `make run` in another "
            "terminal, or pass --stack NAME --region REGION for a deployed stack"
        )
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TargetError(
            f"{state_file} is not a state file of `make run` ({exc}): restart `make run`"
        ) from exc
    missing = [
        name for name in LOCAL_STATE_FIELDS if not isinstance(state, dict) or name not in state
    ]
    if missing:
        raise TargetError(
            f"{state_file} has no field {missing[0]}: restart `make run` to write a current one"
        )

    admin = state["admin"]
    session = boto3.Session(region_name=state["aws_region"], **LOCAL_CREDENTIALS)
    return Target(
        kind="local",
        description=f"the local stack ({state_file})",
        region=state["aws_region"],
        api_url=state["base_url"].rstrip("/"),
        outputs=dict(state.get("outputs") or {}),
        session=session,
        api_auth=LocalTokenAuth(admin["token_header"], admin["token"]),
        endpoint_url=state["aws_endpoint_url"],
        state_file=state_file,
    )


def deployed_target(stack_name: str, region: str | None, profile: str | None) -> Target:
    """Read a deployed stack's outputs with the caller's credentials, or raise TargetError."""
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise TargetError(
            f"AWS profile {profile} not found: pass a profile from ~/.aws/config with --profile"
        ) from exc
    if not session.region_name:
        raise TargetError(
            f"no AWS region for stack {stack_name}: pass --region REGION or set AWS_REGION"
        )
    credentials = session.get_credentials()
    if credentials is None:
        raise TargetError(
            "no AWS credentials found: sign in (for example `aws sso login`), set AWS_PROFILE "
            "or --profile, or pass --local to use the local stack of `make run`"
        )

    cloudformation = session.client("cloudformation", config=CLIENT_CONFIG)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        # CloudFormation reports an unknown stack as a ValidationError with the message
        # "Stack with id NAME does not exist", because it has no error code of its own.
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            raise TargetError(
                f"stack {stack_name} not found in {session.region_name}: check --stack and --region"
            ) from exc
        raise

    stack = stacks[0]
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    description = f"stack {stack_name} in {session.region_name}"
    if "ApiUrl" not in outputs:
        raise TargetError(f"{description} has no output ApiUrl: is it an IDSentry stack?")
    return Target(
        kind="deployed",
        description=description,
        region=session.region_name,
        api_url=outputs["ApiUrl"].rstrip("/"),
        outputs=outputs,
        session=session,
        api_auth=SigV4Auth(credentials, session.region_name),
        stack_name=stack_name,
        stack_status=stack.get("StackStatus"),
    )
