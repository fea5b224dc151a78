"""Settings of the account token authorizer."""

from __future__ import annotations

from idsentry.settings import CoreSettings


class AccountAuthorizerSettings(CoreSettings):
    """Settings of the authorizer that verifies access tokens for the account routes."""

    account_token_key_arn: str
    # A token whose lifetime (exp - iat) is longer than this is rejected.
    access_token_seconds: int = 900
