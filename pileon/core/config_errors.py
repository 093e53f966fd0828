"""Config errors a person can act on: every problem at once, each naming where it is.

A settings or watchlist error names the field and where its value came from: the environment
variable (``PILEON_WORKER__WEB_PORT``), or the file and line (``prod.yaml line 4``). All of a
file's problems are listed in one go, one per line, rather than "(+1 more)" and another run to
find the next. Values are quoted only when they are scalars: a whole watchlist is never dumped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

_MAX_SHOWN = 60  # characters of a bad value quoted back


def field_path(loc: Sequence[int | str]) -> str:
    """``('persons', 0, 'timezone')`` as ``persons[0].timezone``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def yaml_line(text: str, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the key (or item) at ``loc`` in a YAML document, if it is there."""
    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return line
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def env_variable(loc: Sequence[int | str], prefix: str) -> str | None:
    """The environment variable that set the field at ``loc`` (or its section), if any."""
    parts = [str(p).upper() for p in loc]
    for n in range(len(parts), 0, -1):
        name = prefix + "__".join(parts[:n])
        if name in os.environ:
            return name
    return None


def describe_validation_error(
    exc: ValidationError, *, what: str = "setting", source: Path | None = None,
    env_prefix: str | None = None,
) -> str:
    """One line per problem: ``invalid <what> '<field>' (<where>): <message> (got <value>)``."""
    text = _read(source)
    errors = exc.errors()
    locs = [tuple(e["loc"]) for e in errors]
    lines = []
    for err in errors:
        loc = err["loc"]
        if any(len(other) > len(loc) and other[:len(loc)] == tuple(loc) for other in locs):
            continue  # a container failing because an item failed: the item's line says it
        where = _where(loc, source, text, env_prefix)
        message = err["msg"].removeprefix("Value error, ")
        given = ""
        value = err.get("input")
        if (err["type"] != "missing" and isinstance(value, str | int | float | bool)
                and repr(value) not in message):
            given = f" (got {value!r:.{_MAX_SHOWN}})"
        lines.append(f"invalid {what} '{field_path(loc)}'{where}: {message}{given}")
    return "\n".join(lines)


def describe_yaml_error(exc: yaml.YAMLError, what: str) -> str:
    """``<what>: not valid YAML at line L, column C: <problem>`` (whole, never cut off)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{what}: not valid YAML{where}: {problem}" + (f" ({context})" if context else "")


def _where(
    loc: Sequence[int | str], source: Path | None, text: str | None, env_prefix: str | None
) -> str:
    if env_prefix is not None and (variable := env_variable(loc, env_prefix)):
        return f" (environment variable {variable})"
    if source is None:
        return ""
    line = yaml_line(text, loc) if text is not None else None
    return f" ({source} line {line})" if line else f" (in {source})"


def _read(source: Path | None) -> str | None:
    if source is None:
        return None
    try:
        return source.read_text(encoding="utf-8")
    except OSError:
        return None
