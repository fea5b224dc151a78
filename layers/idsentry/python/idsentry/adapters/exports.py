"""The exports bucket: subscribers' data exports, encrypted with KMS and read by presigned URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

# DeleteObjects takes at most 1,000 keys (or versions) per request.
MAX_DELETE_BATCH = 1000


@dataclass(frozen=True)
class StoredObject:
    """One object of the bucket: its key and when it was last written."""

    key: str
    last_modified: datetime


class ExportObjects:
    """Objects of the exports bucket, written with SSE-KMS under the service's key."""

    def __init__(self, bucket: str, kms_key_arn: str, client: Any = None) -> None:
        self.bucket = bucket
        self._kms_key = kms_key_arn
        self._client = client

    def _s3(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("s3")
        return self._client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write one object, encrypted with the service's KMS key."""
        self._s3().put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self._kms_key,
        )

    def find(self, key: str) -> StoredObject | None:
        """Return the object's key and time, or None when it does not exist."""
        try:
            head = self._s3().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(key=key, last_modified=head["LastModified"])

    def presigned_url(self, key: str, expires_seconds: int, filename: str) -> str:
        """Return a GET URL for the object that works for `expires_seconds` and downloads as `filename`."""
        url: str = self._s3().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_seconds,
        )
        return url

    def delete_every_version(self, prefix: str) -> int:
        """Delete every version and delete marker of every object under `prefix`; returns how many.

        An unversioned bucket lists each object once with the version id "null", so this also
        empties a prefix of a bucket that never had versioning.
        """
        if not prefix.endswith("/"):
            raise ValueError("prefix must end with '/', so it cannot match another owner's keys")
        targets: list[dict[str, str]] = []
        paginator = self._s3().get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                targets.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})

        for start in range(0, len(targets), MAX_DELETE_BATCH):
            response = self._s3().delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": targets[start : start + MAX_DELETE_BATCH], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                codes = sorted({str(error.get("Code")) for error in errors})
                raise RuntimeError(f"S3 kept {len(errors)} object versions: {', '.join(codes)}")
        return len(targets)
