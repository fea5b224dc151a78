"""The access-token key in KMS: Sign for the sign-in function, GetPublicKey for the authorizer.

The key is asymmetric (KeySpec ECC_NIST_P256, KeyUsage SIGN_VERIFY), so the private key never
leaves KMS and the authorizer needs only the public key, which it verifies with locally.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from idsentry.errors import ConfigurationError
from idsentry.services.tokens import VerificationKey

SIGNING_ALGORITHM = "ECDSA_SHA_256"
# KMS signs a RAW message of at most 4096 bytes (the Sign API's Message limit).
MAX_RAW_MESSAGE_BYTES = 4096


def key_id_of(key: str) -> str:
    """Return the key id (a UUID) of a KMS key ARN, or `key` itself when it is already an id."""
    return key.rsplit("key/", 1)[-1]


class KmsTokenSigner:
    """Signs access tokens with the KMS key `key_arn`."""

    def __init__(self, key_arn: str, kms: Any = None) -> None:
        self._key_arn = key_arn
        self._kms = kms

    @property
    def key_id(self) -> str:
        """The key id that tokens name in `kid`."""
        return key_id_of(self._key_arn)

    def sign(self, message: bytes) -> bytes:
        """Return KMS's DER ECDSA signature over SHA-256 of `message`.

        The message goes as RAW, so KMS hashes it. The DIGEST form would save bytes, but moto
        5.2.5 hashes a DIGEST message again, so its signatures would not verify locally.
        """
        if len(message) > MAX_RAW_MESSAGE_BYTES:
            raise ValueError(f"message of {len(message)} bytes is longer than KMS signs as RAW")
        if self._kms is None:
            from idsentry.adapters.aws import client

            self._kms = client("kms")
        response = self._kms.sign(
            KeyId=self._key_arn,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm=SIGNING_ALGORITHM,
        )
        signature: bytes = response["Signature"]
        return signature


def load_verification_key(key_arn: str, kms: Any = None) -> VerificationKey:
    """Fetch the token key's public half with GetPublicKey and check that it is ES256's.

    Raises ConfigurationError when the key is not a P-256 signing key.
    """
    if kms is None:
        from idsentry.adapters.aws import client

        kms = client("kms")
    response = kms.get_public_key(KeyId=key_arn)

    if response.get("KeyUsage") != "SIGN_VERIFY":
        raise ConfigurationError("access-token key: KeyUsage must be SIGN_VERIFY")
    if SIGNING_ALGORITHM not in (response.get("SigningAlgorithms") or ()):
        raise ConfigurationError(f"access-token key: it does not support {SIGNING_ALGORITHM}")
    public_key = load_der_public_key(response["PublicKey"])
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise ConfigurationError("access-token key: KeySpec must be ECC_NIST_P256")
    return VerificationKey(key_id=key_id_of(str(response["KeyId"])), public_key=public_key)
