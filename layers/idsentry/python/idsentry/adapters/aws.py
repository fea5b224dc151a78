"""Lazily created boto3 clients shared by the adapters of one function instance."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode backs off with jitter on throttling and 5xx. The short timeouts keep a
# stuck dependency from using up the function's whole run time.
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=3,
    read_timeout=10,
)
# S3 serves objects encrypted with KMS only to Signature Version 4 requests. botocore presigns
# with version 2 in some regions (us-east-1 among them) unless the client is configured otherwise.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4"))


@cache
def _session() -> boto3.session.Session:
    # One session per process: each session loads its own copy of botocore's endpoint and
    # service data, which `make bench` measured at about 75 ms per extra client.
    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    """Return the process-wide boto3 client for `service`, created on first use.

    boto3 reads AWS_ENDPOINT_URL, so the local stack points every client at moto without
    code changes.
    """
    return _session().client(service, config=_S3_CONFIG if service == "s3" else _CONFIG)
