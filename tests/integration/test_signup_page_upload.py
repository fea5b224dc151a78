"""The signup page upload against moto server: stack outputs, S3 sync and CloudFront invalidation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.web.site import CACHE_CONTROL, build_site, page_config
from infra.web.upload import UploadError, read_stack, sync_site, upload

pytestmark = pytest.mark.integration

REGION = "us-east-1"
API = "https://api.example.com/prod"

# A stack with the outputs and parameters of template.yaml that the upload reads.
STACK_TEMPLATE = {
    "Parameters": {
        "PublicBaseUrl": {"Type": "String"},
        "CrossBorder": {"Type": "String"},
        "DistributionId": {"Type": "String"},
    },
    "Resources": {"SignupPageBucket": {"Type": "AWS::S3::Bucket"}},
    "Outputs": {
        "SignupPageBucketName": {"Value": {"Ref": "SignupPageBucket"}},
        "SignupPageDistributionId": {"Value": {"Ref": "DistributionId"}},
        "SignupPageUrl": {"Value": "https://d111111abcdef8.cloudfront.net/"},
    },
}


@pytest.fixture(scope="module")
def moto_session() -> Iterator[boto3.Session]:
    """A boto3 session whose clients talk to a moto server on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    base = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )

    class _LocalSession:
        def client(self, service: str) -> Any:
            return base.client(service, endpoint_url=endpoint)

    yield _LocalSession()  # type: ignore[misc]
    server.stop()


def _distribution(session: Any, reference: str) -> str:
    response = session.client("cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": reference,
            "Comment": "signup page test",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "SignupPageBucket",
                        "DomainName": "bucket.s3.us-east-1.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "SignupPageBucket",
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )
    return str(response["Distribution"]["Id"])


def _create_stack(session: Any, name: str, cross_border: str = "true") -> None:
    session.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(STACK_TEMPLATE),
        Parameters=[
            {"ParameterKey": "PublicBaseUrl", "ParameterValue": API},
            {"ParameterKey": "CrossBorder", "ParameterValue": cross_border},
            {"ParameterKey": "DistributionId", "ParameterValue": _distribution(session, name)},
        ],
    )


def test_upload_syncs_site_and_invalidates(moto_session: Any) -> None:
    _create_stack(moto_session, "idsentry-upload")
    stack = read_stack(moto_session.client("cloudformation"), "idsentry-upload")
    s3 = moto_session.client("s3")
    s3.put_object(Bucket=stack.bucket, Key="old-page.html", Body=b"<p>old</p>")

    stack, result, invalidation_id = upload(moto_session, "idsentry-upload")

    expected = build_site(page_config(API, cross_border=True))
    assert sorted(result.uploaded) == sorted(expected)
    assert result.uploaded[-1].endswith(".html")
    assert result.deleted == ["old-page.html"]
    keys = {entry["Key"] for entry in s3.list_objects_v2(Bucket=stack.bucket)["Contents"]}
    assert keys == set(expected)

    app = s3.get_object(Bucket=stack.bucket, Key="app.js")
    assert app["ContentType"] == "text/javascript; charset=utf-8"
    assert app["CacheControl"] == CACHE_CONTROL
    config = json.loads(s3.get_object(Bucket=stack.bucket, Key="config.json")["Body"].read())
    assert config["api_base_url"] == API
    assert "cross_border_transfer" in config["consents"]

    invalidation = moto_session.client("cloudfront").get_invalidation(
        DistributionId=stack.distribution_id, Id=invalidation_id
    )["Invalidation"]
    assert invalidation["InvalidationBatch"]["Paths"]["Items"] == ["/*"]


def test_sync_without_cross_border_drops_its_text(moto_session: Any) -> None:
    _create_stack(moto_session, "idsentry-domestic", cross_border="false")
    stack = read_stack(moto_session.client("cloudformation"), "idsentry-domestic")
    s3 = moto_session.client("s3")
    sync_site(s3, stack.bucket, build_site(page_config(API, cross_border=True)))

    result = sync_site(s3, stack.bucket, build_site(page_config(API, cross_border=False)))

    assert result.deleted == ["consents/cross-border-2026-12-01.md"]
    config = json.loads(s3.get_object(Bucket=stack.bucket, Key="config.json")["Body"].read())
    assert "cross_border_transfer" not in config["consents"]


def test_read_stack_names_missing_outputs(moto_session: Any) -> None:
    moto_session.client("cloudformation").create_stack(
        StackName="idsentry-old",
        TemplateBody=json.dumps({"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}),
    )

    with pytest.raises(UploadError, match="SignupPageBucketName") as raised:
        read_stack(moto_session.client("cloudformation"), "idsentry-old")
    assert "PublicBaseUrl" in str(raised.value)


def test_read_stack_unknown_stack(moto_session: Any) -> None:
    with pytest.raises(UploadError, match="cannot read stack 'idsentry-missing'"):
        read_stack(moto_session.client("cloudformation"), "idsentry-missing")
