"""The watchlist: protected persons and how to recognise mentions of them.

A person's ``key`` is the only person identifier that leaves pileon in metric labels and alert
labels, so it may be a pseudonym. Per-person ``thresholds`` override the detection defaults;
:func:`load_watchlist` merges them with the detection settings exactly as the worker does, so
``pileon check-config`` rejects what the worker would. An unknown time zone is an error;
:meth:`Watchlist.warnings` names what is allowed but probably wrong (an alias so short it matches
nearly every post, a handle or alias shared by two persons), by field, never by its text.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pileon.core.config_errors import describe_validation_error, describe_yaml_error, field_path
from pileon.core.settings import ConfigError, DetectionSettings
from pileon.core.textfold import fold_unicode

PERSON_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MIN_ALIAS_CHARS = 3  # shorter aliases match inside nearly every post


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=PERSON_KEY_PATTERN)
    display_name: str = Field(min_length=1)
    handles: dict[str, list[str]] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    timezone: str = "UTC"
    receiver: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: use an IANA name such as "
                             "'Europe/Berlin' or 'America/New_York'") from None
        return v

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
        problems = []
        for key in sorted({k for k in keys if keys.count(k) > 1}):
            where = " and ".join(f"persons[{i}]" for i, k in enumerate(keys) if k == key)
            problems.append(f"person key {key!r} is used twice ({where}); keys must be unique")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def warnings(self) -> list[str]:
        """What is valid but probably a mistake, one line each, naming fields only."""
        found = []
        seen: dict[tuple[str, str], str] = {}
        for i, person in enumerate(self.persons):
            for j, alias in enumerate(person.aliases):
                where = f"persons[{i}].aliases[{j}]"
                folded = " ".join(fold_unicode(alias).split())
                if len(folded.replace(" ", "")) < MIN_ALIAS_CHARS:
                    found.append(f"{where} ({person.key}) is shorter than {MIN_ALIAS_CHARS} "
                                 "characters: as a word it also turns up in posts about "
                                 "someone else")
                found.extend(_shared(seen, ("alias", folded), where, person.key))
            for platform, handles in person.handles.items():
                for j, handle in enumerate(handles):
                    where = f"persons[{i}].handles.{platform}[{j}]"
                    ident = (f"handle:{platform}", handle.strip().lstrip("@").lower())
                    found.extend(_shared(seen, ident, where, person.key))
        return found

    def __contains__(self, key: object) -> bool:
        return any(p.key == key for p in self.persons)

    def get(self, key: str) -> Person | None:
        return next((p for p in self.persons if p.key == key), None)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.persons)


def load_watchlist(path: Path, detection: DetectionSettings | None = None) -> Watchlist:
    """Read and validate a watchlist YAML file, or raise :class:`ConfigError` listing every
    problem. Per-person thresholds are merged with ``detection`` (the settings' defaults) as
    the worker merges them, so what the worker would reject is rejected here."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"watchlist {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(describe_yaml_error(exc, f"watchlist {path}")) from None
    try:
        watchlist = Watchlist.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, what="watchlist entry", source=path)) from None
    problems = _threshold_problems(watchlist, detection or DetectionSettings(), path)
    if problems:
        raise ConfigError("\n".join(problems))
    return watchlist


def _threshold_problems(
    watchlist: Watchlist, detection: DetectionSettings, path: Path
) -> list[str]:
    problems = []
    for i, person in enumerate(watchlist.persons):
        try:
            person.detection(detection)
        except ValidationError as exc:
            for err in exc.errors():
                given = ", ".join(f"{k}={v:g}" for k, v in sorted(person.thresholds.items()))
                problems.append(
                    f"invalid watchlist entry 'persons[{i}].thresholds.{field_path(err['loc'])}' "
                    f"({person.key}, in {path}): {err['msg'].removeprefix('Value error, ')} "
                    f"(this person's thresholds: {given}; the rest are the detection settings)")
    return problems


def _shared(seen: dict[tuple[str, str], str], ident: tuple[str, str], where: str,
            key: str) -> list[str]:
    """A warning when ``ident`` already belongs to another person."""
    first = seen.setdefault(ident, f"{where} ({key})")
    if first.endswith(f"({key})"):
        return []
    if ident[0] == "alias":
        return [f"{where} ({key}) is the same alias as {first}: a post naming it counts as a "
                "mention of both persons"]
    return [f"{where} ({key}) is the same account as {first}: its mentions count for "
            f"{key} only (the later entry wins)"]
