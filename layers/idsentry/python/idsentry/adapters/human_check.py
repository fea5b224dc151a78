"""Human-check hook: a provider's token verified server-side before any code SMS is sent."""

from __future__ import annotations

from typing import Protocol


class HumanCheck(Protocol):
    """Verifies a human-check token from the client; returns False for a failed or missing one."""

    def verify(self, token: str | None, source_ip: str) -> bool: ...
