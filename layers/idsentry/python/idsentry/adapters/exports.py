"""The exports bucket: subscribers' data exports, encrypted with KMS and read by presigned URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

# DeleteObjects takes at most 1,000 keys (or versions) per request.
MAX_DELETE_BATCH = 1000
# Parts of a streamed upload. S3 takes parts of 5 MiB to 5 GiB (except the last) and at most
# 10,000 of them, so 8 MiB parts allow objects of up to about 78 GiB.
UPLOAD_PART_BYTES = 8 * 1024 * 1024
_MISSING_CODES = ("404", "NoSuchKey", "NotFound")


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
            if exc.response["Error"]["Code"] in _MISSING_CODES:
                return None
            raise
        return StoredObject(key=key, last_modified=head["LastModified"])

    @contextmanager
    def open_object(self, key: str) -> Iterator[Any]:
        """Open the object's current version as a stream with `read(size)`, closed on exit.

        Raises FileNotFoundError when the key has no object or its current version is a
        delete marker.
        """
        try:
            response = self._s3().get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING_CODES:
                raise FileNotFoundError(key) from exc
            raise
        body = response["Body"]
        try:
            yield body
        finally:
            body.close()

    @contextmanager
    def open_upload(self, key: str, content_type: str) -> Iterator[StreamingUpload]:
        """Write one object through a file-like stream, without holding it whole in memory.

        The object appears only when the block ends without an error. An error aborts the
        multipart upload, so no partial object is left (the bucket's lifecycle rule also
        removes uploads left incomplete).
        """
        upload = StreamingUpload(self._s3(), self.bucket, self._kms_key, key, content_type)
        try:
            yield upload
        except BaseException:
            upload.abort()
            raise
        upload.finish()

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


class StreamingUpload:
    """A write-only stream into one object of the bucket, sent in parts as they fill.

    It has the `write`, `tell` and `flush` that zipfile needs, and no `seek`, so zipfile
    writes sizes after each member's data instead of going back. An object smaller than one
    part is sent with a single PutObject.
    """

    def __init__(
        self, client: Any, bucket: str, kms_key_arn: str, key: str, content_type: str
    ) -> None:
        self._s3 = client
        self._bucket = bucket
        self._kms_key = kms_key_arn
        self._key = key
        self._content_type = content_type
        self._buffer = bytearray()
        self._position = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> int:
        """Append bytes, sending a part each time UPLOAD_PART_BYTES of them are buffered."""
        self._buffer += data
        self._position += len(data)
        while len(self._buffer) >= UPLOAD_PART_BYTES:
            self._send_part(bytes(self._buffer[:UPLOAD_PART_BYTES]))
            del self._buffer[:UPLOAD_PART_BYTES]
        return len(data)

    def tell(self) -> int:
        """Return the number of bytes written so far."""
        return self._position

    def flush(self) -> None:
        """Do nothing: parts are sent when full, and the rest when the upload finishes."""

    def finish(self) -> None:
        """Send what is buffered and complete the object."""
        if self._upload_id is None:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=bytes(self._buffer),
                ContentType=self._content_type,
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=self._kms_key,
            )
            return
        if self._buffer:
            self._send_part(bytes(self._buffer))
            self._buffer.clear()
        self._s3.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        """Abandon the upload; S3 discards the parts sent."""
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )

    def _send_part(self, data: bytes) -> None:
        if self._upload_id is None:
            created = self._s3.create_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                ContentType=self._content_type,
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=self._kms_key,
            )
            self._upload_id = str(created["UploadId"])
        number = len(self._parts) + 1
        sent = self._s3.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})
