"""Keys of the overloaded `gsi1` index that one function writes and another reads."""

from __future__ import annotations


def sign_in_index_key(subscriber_id: str) -> str:
    """Return the index partition that lists a subscriber's sign-ins, for account deletion."""
    return f"SIGNINS#{subscriber_id}"


def signup_requests_index_key(signup_id: str) -> str:
    """Return the index partition that lists a signup's stored idempotent responses."""
    return f"IDEMPS#{signup_id}"
