"""Schedule every minute: queue the deferred alert SMS jobs whose quiet hours have ended, and
publish the review decisions whose events a failed request left in the review outbox."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idsentry.clock import epoch, utc_now
from idsentry.instance import freeze_init_objects
from idsentry.logs import configure_logging
from idsentry.services.deferrals import release_due
from idsentry.services.review_outbox import flush_outbox
from idsentry.wiring import main_table, notification_queue, publisher

logger = Logger()
configure_logging()

# Jobs one run handles at most; the next run, a minute later, continues with the rest.
RELEASE_LIMIT = 2000
freeze_init_objects()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Queue every deferred job due now; the notifier's ledger sends a job queued twice once."""
    released = release_due(main_table(), notification_queue(), epoch(utc_now()), RELEASE_LIMIT)

    published = flush_outbox(main_table(), publisher(), utc_now)
    return {"released": released, "review_batches_published": published}
