"""Builds each function's dependencies on first use, never at import time."""

from __future__ import annotations

from functools import cache

from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.keys import DataKeyStore
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.secrets import SecretCache
from idsentry.adapters.table import MainTable
from idsentry.crypto import Pepper
from idsentry.settings import CoreSettings, load_settings


@cache
def secret_cache() -> SecretCache:
    """Return the process-wide secret cache."""
    return SecretCache()


def pepper_loader(settings: CoreSettings) -> Pepper:
    """Return the fingerprint pepper from the (cached) secret."""
    return Pepper.from_secret(secret_cache().get_json(settings.pepper_secret_id))


@cache
def main_table() -> MainTable:
    """Return the main table adapter."""
    return MainTable(load_settings(CoreSettings).table_name)


@cache
def data_keys() -> DataKeyStore:
    """Return the data-key store."""
    settings = load_settings(CoreSettings)
    return DataKeyStore(settings.key_table_name, settings.data_key_arn)


@cache
def publisher() -> EventPublisher:
    """Return the publisher for the service's bus."""
    return EventPublisher(load_settings(CoreSettings).event_bus_name)


@cache
def notification_queue() -> JobQueue:
    """Return the notification job queue."""
    return JobQueue(load_settings(CoreSettings).notification_queue_url)
