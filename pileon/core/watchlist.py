"""The watchlist: protected persons and how to recognise mentions of them.

A person's ``key`` is the only person identifier that leaves pileon in metric labels and alert
labels, so it may be a pseudonym. Per-person ``thresholds`` override the detection defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pileon.core.settings import ConfigError, DetectionSettings, describe_validation_error

PERSON_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=PERSON_KEY_PATTERN)
    display_name: str = Field(min_length=1)
    handles: dict[str, list[str]] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    timezone: str = "UTC"
    receiver: str | None = None

    @model_validator(mode="after")
    def _thresholds_are_detection_fields(self) -> Person:
        unknown = set(self.thresholds) - set(DetectionSettings.model_fields)
        if unknown:
            raise ValueError(f"unknown threshold(s) {sorted(unknown)}")
        return self

    def detection(self, defaults: DetectionSettings) -> DetectionSettings:
        """Detection settings for this person: defaults with this person's overrides."""
        if not self.thresholds:
            return defaults
        return DetectionSettings.model_validate({**defaults.model_dump(), **self.thresholds})


class Watchlist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    persons: tuple[Person, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_keys(self) -> Watchlist:
        keys = [p.key for p in self.persons]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate person key(s) {dupes}")
        return self

    def __contains__(self, key: object) -> bool:
        return any(p.key == key for p in self.persons)

    def get(self, key: str) -> Person | None:
        return next((p for p in self.persons if p.key == key), None)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.persons)


def load_watchlist(path: Path) -> Watchlist:
    """Read and validate a watchlist YAML file, or raise :class:`ConfigError`."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"watchlist {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"watchlist {path}: not valid YAML ({exc})".splitlines()[0]) from None
    try:
        return Watchlist.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, source=path).replace("setting", "watchlist entry")
        ) from None
