"""``pileon console``: the responders' web application.

It reads what pileon already produces (the ``alerts`` topic and the evidence archive) and
keeps case work in its own database (:mod:`pileon.console.db`). It sits above the services
(it reads evidence bundles and silences Alertmanager alerts) and below the command line.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from pileon.console.db import make_engine, migrate, sessions
from pileon.core.settings import ConfigError, ConsoleSettings


def database_url(cfg: ConsoleSettings) -> str:
    if cfg.database_url_file is not None:
        try:
            return cfg.database_url_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"console.database_url_file: {exc.strerror}") from None
    if cfg.database_url:
        return cfg.database_url
    Path(cfg.data_dir).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(cfg.data_dir).resolve() / 'console.db'}"


def open_database(cfg: ConsoleSettings) -> tuple[Engine, sessionmaker[Session]]:
    """The case database, migrated to the newest schema."""
    engine = make_engine(database_url(cfg))
    migrate(engine)
    return engine, sessions(engine)


__all__ = ["database_url", "open_database"]
