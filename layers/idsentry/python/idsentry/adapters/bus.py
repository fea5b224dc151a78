"""EventBridge publisher: chunks of at most 10 entries, each response's failures checked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from idsentry.models.events import EventDetail

MAX_ENTRIES_PER_CALL = 10


class PublishError(RuntimeError):
    """EventBridge rejected some entries, listed in `failed_event_ids`."""

    def __init__(self, failed_event_ids: list[str]) -> None:
        super().__init__(f"{len(failed_event_ids)} events were not published")
        self.failed_event_ids = failed_event_ids


class EventPublisher:
    """Publishes event details to the service's custom bus."""

    def __init__(self, bus_name: str, client: Any = None) -> None:
        self._bus_name = bus_name
        self._client = client

    def _events(self) -> Any:
        if self._client is None:
            from idsentry.adapters.aws import client

            self._client = client("events")
        return self._client

    def publish(self, details: Sequence[EventDetail]) -> None:
        """Publish every detail; raises PublishError naming the ones EventBridge rejected."""
        failed: list[str] = []
        for start in range(0, len(details), MAX_ENTRIES_PER_CALL):
            chunk = details[start : start + MAX_ENTRIES_PER_CALL]
            entries = [
                {
                    "EventBusName": self._bus_name,
                    "Source": detail.source,
                    "DetailType": detail.detail_type,
                    "Detail": detail.model_dump_json(),
                }
                for detail in chunk
            ]
            response = self._events().put_events(Entries=entries)
            if response.get("FailedEntryCount", 0):
                for detail, result in zip(chunk, response["Entries"], strict=True):
                    if "ErrorCode" in result:
                        failed.append(detail.event_id)
        if failed:
            raise PublishError(failed)
