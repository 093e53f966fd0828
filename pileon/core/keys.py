"""The secret key for near-duplicate hashing, read from a file (a mounted secret in production).

Without a configured file, a random key is created once under the data directory with mode
0600, so signatures stay comparable across restarts of the same deployment.
"""

from __future__ import annotations

import logging
import os
import secrets

from pileon.core.settings import ConfigError, Settings

log = logging.getLogger(__name__)


def neardup_key(settings: Settings) -> bytes:
    configured = settings.neardup.key_file
    path = configured or settings.worker.data_dir / "neardup.key"
    if path.is_file():
        key = path.read_bytes().strip()
        if len(key) < 16:
            raise ConfigError(f"invalid setting 'neardup.key_file': {path} holds under 16 bytes")
        return key
    if configured is not None:
        raise ConfigError(f"invalid setting 'neardup.key_file': {path} not found")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    log.info("created a near-duplicate hashing key at %s", path)
    return key

