"""Unit tests for settings read from environment variables."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from idsentry.errors import ConfigurationError
from idsentry.settings import CoreSettings, load_settings
from idsentry.settings.codes import SignupSettings
from idsentry.settings.notify import NotifierSettings, TwilioWebhookSettings

pytestmark = pytest.mark.unit

CORE_ENV = {
    "STAGE": "test",
    "TABLE_NAME": "idsentry-main",
    "KEY_TABLE_NAME": "idsentry-keys",
    "EVENT_BUS_NAME": "idsentry-bus",
    "DATA_KEY_ARN": "arn:aws:kms:ap-east-1:000000000000:key/test",
    "PEPPER_SECRET_ID": "idsentry/pepper",
    "NOTIFICATION_QUEUE_URL": "http://127.0.0.1:5000/000000000000/notifications",
    "PUBLIC_BASE_URL": "https://idsentry.example/",
}
SIGNUP_ENV = {**CORE_ENV, "REALNAME_SECRET_ID": "idsentry/realname"}
NOTIFIER_ENV = {
    **CORE_ENV,
    "TWILIO_SECRET_ID": "idsentry/twilio",
    "EMAIL_SENDER": "alerts@idsentry.example",
}


def signup_settings(**overrides: str) -> SignupSettings:
    return SignupSettings.from_environ({**SIGNUP_ENV, **overrides})


def configuration_error(settings_type: type[CoreSettings], environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        settings_type.from_environ(environ)
    return str(caught.value)


def test_core_from_environ() -> None:
    settings = CoreSettings.from_environ(CORE_ENV)

    assert settings.stage == "test"
    assert settings.table_name == "idsentry-main"
    assert settings.notification_queue_url == CORE_ENV["NOTIFICATION_QUEUE_URL"]
    assert settings.public_base_url == "https://idsentry.example"


def test_signup_defaults() -> None:
    settings = SignupSettings.from_environ(SIGNUP_ENV)

    assert settings.realname_secret_id == "idsentry/realname"
    assert settings.allowed_sms_countries == ("CN",)
    assert settings.sms_per_number_daily_cap == 4
    assert settings.otp_resend_interval_seconds == 60
    assert settings.cross_border is True
    assert settings.human_check_provider == "none"


def test_notifier_settings() -> None:
    settings = NotifierSettings.from_environ(NOTIFIER_ENV)

    assert settings.email_sender == "alerts@idsentry.example"
    assert settings.twilio_base_url is None
    assert settings.sms_alert_daily_budget == 20000


def test_ignores_other_variables() -> None:
    settings = CoreSettings.from_environ({**CORE_ENV, "PATH": "/usr/bin", "stage": "other"})

    assert settings.stage == "test"


@pytest.mark.parametrize("variable", sorted(CORE_ENV))
def test_missing_variable_named(variable: str) -> None:
    environ = {name: value for name, value in CORE_ENV.items() if name != variable}

    text = configuration_error(CoreSettings, environ)

    assert text == f"missing environment variables: {variable}"


def test_missing_variables_all_listed() -> None:
    text = configuration_error(SignupSettings, {"STAGE": "test"})

    missing = text.removeprefix("missing environment variables: ").split(", ")
    assert sorted(missing) == sorted(set(SIGNUP_ENV) - {"STAGE"})


@pytest.mark.parametrize(
    ("settings_type", "environ", "missing"),
    [
        (SignupSettings, CORE_ENV, ["REALNAME_SECRET_ID"]),
        (NotifierSettings, CORE_ENV, ["TWILIO_SECRET_ID", "EMAIL_SENDER"]),
        (TwilioWebhookSettings, CORE_ENV, ["TWILIO_SECRET_ID"]),
    ],
)
def test_function_variables_required(
    settings_type: type[CoreSettings], environ: dict[str, str], missing: list[str]
) -> None:
    text = configuration_error(settings_type, environ)

    assert text == f"missing environment variables: {', '.join(missing)}"


def test_optional_not_listed_missing() -> None:
    text = configuration_error(SignupSettings, {})

    for optional in ("ALLOWED_SMS_COUNTRIES", "CROSS_BORDER", "HUMAN_CHECK_PROVIDER"):
        assert optional not in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CN", ("CN",)),
        ("cn,hk", ("CN", "HK")),
        (" cn , HK ,, mo ,", ("CN", "HK", "MO")),
        ("US,CN", ("US", "CN")),
    ],
)
def test_countries_split(raw: str, expected: tuple[str, ...]) -> None:
    assert signup_settings(ALLOWED_SMS_COUNTRIES=raw).allowed_sms_countries == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_bool_parsed(raw: str, expected: bool) -> None:
    assert signup_settings(CROSS_BORDER=raw).cross_border is expected


@pytest.mark.parametrize("raw", ["maybe", "", "2", "truee"])
def test_bool_invalid(raw: str) -> None:
    text = configuration_error(SignupSettings, {**SIGNUP_ENV, "CROSS_BORDER": raw})

    assert text == "invalid environment variables: CROSS_BORDER"


def test_int_parsed() -> None:
    settings = signup_settings(SMS_PER_NUMBER_DAILY_CAP="3", OTP_RESEND_INTERVAL_SECONDS="90")

    assert settings.sms_per_number_daily_cap == 3
    assert settings.otp_resend_interval_seconds == 90


def test_invalid_values_all_listed() -> None:
    environ = {**SIGNUP_ENV, "SMS_PER_NUMBER_DAILY_CAP": "four", "CROSS_BORDER": "maybe"}

    text = configuration_error(SignupSettings, environ)

    assert text.startswith("invalid environment variables: ")
    assert "SMS_PER_NUMBER_DAILY_CAP" in text
    assert "CROSS_BORDER" in text
    # The values themselves may be secret, so the message names variables only.
    assert "four" not in text
    assert "maybe" not in text


@pytest.mark.parametrize("provider", ["turnstile", "hcaptcha", "", "None", "none "])
def test_human_check_provider_rejected(provider: str) -> None:
    text = configuration_error(SignupSettings, {**SIGNUP_ENV, "HUMAN_CHECK_PROVIDER": provider})

    assert text == "invalid environment variables: HUMAN_CHECK_PROVIDER"


def test_human_check_provider_none() -> None:
    assert signup_settings(HUMAN_CHECK_PROVIDER="none").human_check_provider == "none"


def test_settings_frozen() -> None:
    settings = CoreSettings.from_environ(CORE_ENV)

    with pytest.raises(ValueError, match="frozen"):
        settings.stage = "prod"  # type: ignore[misc]


@pytest.fixture
def signup_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The signup function's environment in os.environ, with the settings cache cleared."""
    for name, value in SIGNUP_ENV.items():
        monkeypatch.setenv(name, value)
    load_settings.cache_clear()
    yield monkeypatch
    load_settings.cache_clear()


def test_load_settings_reads_os_environ(signup_environ: pytest.MonkeyPatch) -> None:
    signup_environ.setenv("STAGE", "from-os-environ")

    settings = load_settings(SignupSettings)

    assert settings.stage == "from-os-environ"
    assert load_settings(SignupSettings) is settings


@pytest.mark.usefixtures("signup_environ")
def test_load_settings_core_reuses_loaded_subclass() -> None:
    signup = load_settings(SignupSettings)

    assert load_settings(CoreSettings) is signup


@pytest.mark.usefixtures("signup_environ")
def test_load_settings_core_first_then_subclass() -> None:
    core = load_settings(CoreSettings)
    signup = load_settings(SignupSettings)

    assert type(core) is CoreSettings
    assert isinstance(signup, SignupSettings)
    assert load_settings(CoreSettings) is core
