"""The local service that the bench measures against, with abuse limits raised out of the way."""

from __future__ import annotations

import logging

from infra.local.service import LocalService

# Abuse limits far above what a bench run sends, so no request is rate-limited. The cold-start
# bench signs a subscriber in right after the signup's code, so one second between codes to a
# number is enough.
BENCH_PARAMETERS = {
    "SignupsPerIpPerHour": 100000,
    "SmsOtpDailyBudget": 100000,
    "OtpResendIntervalSeconds": 1,
}


def start_service() -> LocalService:
    """Start the local service on free ports, with background queue pollers and bench limits."""
    return LocalService(port=0, parameters=BENCH_PARAMETERS, background=True).start()


def quiet_handler_logs(service: LocalService) -> None:
    """Drop the handlers' INFO records, which Powertools prints to stdout among the tables.

    Every handler is loaded first, because loading one creates its Powertools Logger, which
    sets the level of the shared `idsentry` logger again.
    """
    assert service.stack is not None
    for function_logical_id in service.stack.runtime.functions:
        service.stack.runtime.load_handler(function_logical_id)
    logging.getLogger("idsentry").setLevel(logging.WARNING)
