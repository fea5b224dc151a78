"""The finance bucket: reconciliation files, encrypted with KMS and handed out by presigned URL."""

from __future__ import annotations

from typing import Any


class FinanceFiles:
    """Objects of the finance bucket, written with SSE-KMS under the service's key."""

    def __init__(
        self, bucket: str, kms_key_arn: str, client: Any = None, presigner: Any = None
    ) -> None:
        self.bucket = bucket
        self._kms_key = kms_key_arn
        self._client = client
        self._presigner = presigner

    def _s3(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("s3")
        return self._client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write one object, encrypted with the service's KMS key. An object under `key` is replaced."""
        self._s3().put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self._kms_key,
        )

    def _s3_sigv4(self) -> Any:
        # S3 accepts a GET of an SSE-KMS object only when it is signed with Signature Version
        # 4. botocore 1.44 presigned with version 2 for a us-east-1 client without this config.
        if self._presigner is None:
            import boto3
            from botocore.config import Config

            self._presigner = boto3.session.Session().client(
                "s3", config=Config(signature_version="s3v4")
            )
        return self._presigner

    def presigned_url(self, key: str, expires_seconds: int, filename: str) -> str:
        """Return a GET URL that works for `expires_seconds` and downloads the object as `filename`.

        The URL carries the signer's credentials. A Lambda role's credentials expire within
        hours, so a URL signed in a function can never outlive them.
        """
        url: str = self._s3_sigv4().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_seconds,
        )
        return url
