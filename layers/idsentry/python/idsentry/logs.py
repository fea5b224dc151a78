"""Logging rules shared by every function."""

from __future__ import annotations

import logging

# These SDK loggers print request URLs and parameters (phone numbers, e-mail addresses) at
# INFO and DEBUG, so they are held at WARNING whatever the function's log level.
_SDK_LOGGERS = ("stripe", "twilio", "twilio.http_client", "urllib3", "botocore", "boto3")


def configure_logging() -> None:
    """Pin the SDK loggers to WARNING."""
    for name in _SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
