"""Settings of the functions that send one-time codes: signup and sign-in."""

from __future__ import annotations

from pydantic import field_validator

from idsentry.settings import CoreSettings


class CodeSendSettings(CoreSettings):
    """Abuse limits of one-time codes by SMS, shared by signup and sign-in."""

    allowed_sms_countries: tuple[str, ...] = ("CN",)
    sms_otp_daily_budget: int = 2000
    sms_per_number_daily_cap: int = 4
    otp_resend_interval_seconds: int = 60
    # Counts every code request from one address, signup and sign-in alike.
    signups_per_ip_per_hour: int = 30

    @field_validator("allowed_sms_countries", mode="before")
    @classmethod
    def _split_countries(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().upper() for part in value.split(",") if part.strip())
        return value


class SignupSettings(CodeSendSettings):
    """Settings of the signup function: abuse limits, consent rules and providers."""

    realname_secret_id: str
    cross_border: bool = True
    human_check_provider: str = "none"
    # Billing: both set, or neither. Without them, verification reports that payment is not
    # available yet.
    stripe_secret_id: str | None = None
    billing_plans: str | None = None
    stripe_base_url: str | None = None

    @field_validator("human_check_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value != "none":
            # NOTE: only the hook exists; no provider's server-side check is implemented yet.
            raise ValueError("no human-check provider is implemented; use none")
        return value


class SignInSettings(CodeSendSettings):
    """Settings of the sign-in function: the code limits and the key that signs access tokens."""

    # The KMS key (ECC_NIST_P256, SIGN_VERIFY) that signs access tokens.
    account_token_key_arn: str
    access_token_seconds: int = 900
