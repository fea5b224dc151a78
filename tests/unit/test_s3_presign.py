"""Presigned S3 URLs use Signature Version 4, which objects encrypted with KMS require."""

from __future__ import annotations

import pytest

from idsentry.adapters import aws

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-1", "cn-north-1"])
def test_presigned_url_is_sigv4(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unit-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws.client.cache_clear()
    aws._session.cache_clear()

    url = aws.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": "reports", "Key": "reports/x/report.pdf"}, ExpiresIn=300
    )
    aws.client.cache_clear()
    aws._session.cache_clear()

    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert "AWSAccessKeyId=" not in url
