"""Function settings read from the environment and validated once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self, cast

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from idsentry.errors import ConfigurationError


class CoreSettings(BaseModel):
    """Settings every function needs; each field is read from the upper-cased variable name."""

    # A function loads one settings class, so each builds its validator on first use
    # (defer_build) rather than every class at import, in every cold start.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    stage: str
    table_name: str
    key_table_name: str
    event_bus_name: str
    data_key_arn: str
    pepper_secret_id: str
    notification_queue_url: str
    public_base_url: str

    @field_validator("public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build the settings from `environ` (default: os.environ), naming every missing variable."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        missing: list[str] = []
        for name, field in cls.model_fields.items():
            variable = name.upper()
            if variable in source:
                values[name] = source[variable]
            elif field.is_required():
                missing.append(variable)
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")

        try:
            return cls(**values)
        except ValidationError as exc:
            fields = ", ".join(str(error["loc"][0]).upper() for error in exc.errors())
            raise ConfigurationError(f"invalid environment variables: {fields}") from exc


class _SettingsLoader:
    """Settings classes read from os.environ once each, with the loaded instances kept.

    The wiring loads CoreSettings, and each function loads its own subclass of it. Each class
    builds its validator on first use. Once a subclass is loaded, its instance serves for the
    core settings too, because both read the same environment. A cold start then builds one
    validator rather than two.
    """

    def __init__(self) -> None:
        self._loaded: dict[type[CoreSettings], CoreSettings] = {}

    def __call__[T: CoreSettings](self, settings_type: type[T]) -> T:
        """Return the settings of `settings_type`, read from os.environ on first use."""
        loaded = self._loaded.get(settings_type)
        if loaded is None:
            # A copy, because the local stack's threads may add settings meanwhile.
            loaded_so_far = list(self._loaded.values())
            loaded = next(
                (found for found in loaded_so_far if isinstance(found, settings_type)), None
            )
            if loaded is None:
                loaded = settings_type.from_environ()
            self._loaded[settings_type] = loaded
        return cast(T, loaded)

    def cache_clear(self) -> None:
        """Forget every loaded instance, so the next request reads os.environ again."""
        self._loaded.clear()


load_settings = _SettingsLoader()
