"""S3 access for breach intake: small reads, ranged streams and deletion of finished files."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class IntakeObjects:
    """The intake bucket, read through the shared boto3 session's S3 client."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    def _s3(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("s3")
        return self._client

    def size(self, key: str) -> int:
        """Return the object's size in bytes."""
        return int(self._s3().head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def etag(self, key: str) -> str:
        """Return the object's ETag without quotes (changes whenever the content does)."""
        return str(self._s3().head_object(Bucket=self.bucket, Key=key)["ETag"]).strip('"')

    def current_etag(self, key: str) -> str | None:
        """Return the object's ETag without quotes, or None when the object does not exist."""
        from botocore.exceptions import ClientError

        try:
            return self.etag(key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def read(self, key: str) -> bytes:
        """Read a whole (small) object."""
        body: bytes = self._s3().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Read bytes [start, end) of the object; an empty range reads nothing."""
        if end <= start:
            return b""
        response = self._s3().get_object(
            Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}"
        )
        data: bytes = response["Body"].read()
        return data

    @contextmanager
    def open_range(self, key: str, start: int, end: int) -> Iterator[Any]:
        """Open bytes [start, end) of the object as a stream with `read(size)`, from one ranged GET."""
        if end <= start:
            yield io.BytesIO(b"")
            return
        response = self._s3().get_object(
            Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}"
        )
        body = response["Body"]
        try:
            yield body
        finally:
            body.close()

    def delete(self, keys: list[str]) -> None:
        """Delete the objects (missing ones are fine)."""
        if keys:
            self._s3().delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
