"""`make web-upload`: sync the signup page to its S3 bucket and refresh the CloudFront cache.

    python -m infra.web.upload --stack-name NAME [--region REGION]

Reads the bucket, the distribution, PublicBaseUrl and CrossBorder from the deployed stack,
builds the site (web/, the consent texts and config.json), uploads every file, deletes
objects the site no longer has and invalidates the distribution. Uses the AWS credentials of
the environment, as `sam deploy` does.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.web.site import CACHE_CONTROL, SiteError, SiteFile, build_site, page_config

LOG = logging.getLogger(__name__)

REQUIRED_OUTPUTS = ("SignupPageBucketName", "SignupPageDistributionId", "SignupPageUrl")
REQUIRED_PARAMETERS = ("PublicBaseUrl", "CrossBorder")


class UploadError(RuntimeError):
    """The stack cannot be read, or lacks what the upload needs."""


@dataclass(frozen=True)
class SiteStack:
    """Outputs and parameters of the deployed stack that the upload uses."""

    bucket: str
    distribution_id: str
    page_url: str
    api_base_url: str
    cross_border: bool


@dataclass(frozen=True)
class SyncResult:
    """Object keys written and deleted by one sync."""

    uploaded: list[str]
    deleted: list[str]


def read_stack(cloudformation: Any, stack_name: str) -> SiteStack:
    """Read the outputs and parameters the upload needs, or raise UploadError naming the gap."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise UploadError(f"cannot read stack {stack_name!r}: {exc}") from exc
    stack = stacks[0]
    outputs = {entry["OutputKey"]: entry["OutputValue"] for entry in stack.get("Outputs", [])}
    parameters = {
        entry["ParameterKey"]: entry.get("ResolvedValue", entry.get("ParameterValue", ""))
        for entry in stack.get("Parameters", [])
    }
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    missing += [name for name in REQUIRED_PARAMETERS if name not in parameters]
    if missing:
        raise UploadError(
            f"stack {stack_name!r} lacks {', '.join(missing)}: deploy the current template.yaml first"
        )
    return SiteStack(
        bucket=outputs["SignupPageBucketName"],
        distribution_id=outputs["SignupPageDistributionId"],
        page_url=outputs["SignupPageUrl"],
        api_base_url=parameters["PublicBaseUrl"],
        cross_border=parameters["CrossBorder"] == "true",
    )


def _upload_order(key: str) -> tuple[int, str]:
    # Scripts, styles and texts first, then config.json, then the pages that load them.
    if key.endswith(".html"):
        return (2, key)
    if key.endswith(".json"):
        return (1, key)
    return (0, key)


def sync_site(s3: Any, bucket: str, files: Mapping[str, SiteFile]) -> SyncResult:
    """Upload every file of the site, then delete the bucket's objects the site does not have.

    The bucket is versioned, so a replaced or deleted file stays as a noncurrent version
    until the lifecycle rule removes it.
    """
    existing: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        existing.update(entry["Key"] for entry in page.get("Contents", []))

    uploaded: list[str] = []
    for key in sorted(files, key=_upload_order):
        site_file = files[key]
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=site_file.body,
            ContentType=site_file.content_type,
            CacheControl=CACHE_CONTROL,
        )
        uploaded.append(key)

    deleted = sorted(existing - set(files))
    for key in deleted:
        s3.delete_object(Bucket=bucket, Key=key)
    return SyncResult(uploaded, deleted)


def invalidate(cloudfront: Any, distribution_id: str) -> str:
    """Start an invalidation of every path of the distribution and return its id."""
    response = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": f"idsentry-web-upload-{time.time_ns()}",
        },
    )
    return str(response["Invalidation"]["Id"])


def upload(session: Any, stack_name: str) -> tuple[SiteStack, SyncResult, str]:
    """Build the site for the stack, sync it and invalidate the cache."""
    stack = read_stack(session.client("cloudformation"), stack_name)
    files = build_site(page_config(stack.api_base_url, cross_border=stack.cross_border))
    result = sync_site(session.client("s3"), stack.bucket, files)
    invalidation_id = invalidate(session.client("cloudfront"), stack.distribution_id)
    return stack, result, invalidation_id


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, upload the site and print what changed."""
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", required=True, help="name of the deployed stack")
    parser.add_argument("--region", help="AWS region of the stack (default: the environment's)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    session = boto3.Session(region_name=arguments.region)
    try:
        stack, result, invalidation_id = upload(session, arguments.stack_name)
    except (UploadError, SiteError) as exc:
        print(f"web upload failed: {exc}", file=sys.stderr)
        return 1

    print(f"uploaded {len(result.uploaded)} files to s3://{stack.bucket}/")
    for key in result.deleted:
        print(f"deleted s3://{stack.bucket}/{key}")
    print(f"invalidation {invalidation_id} started; the page is at {stack.page_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
