"""A metrics port that cannot be had is one line naming the setting, not a traceback."""

from __future__ import annotations

import socket

import pytest

from pileon.cli.common import serve_metrics
from pileon.core.settings import ConfigError


def test_a_taken_port_names_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as raised:
            serve_metrics("127.0.0.1", port, "evidence.metrics_port")
    message = str(raised.value)
    assert message.startswith(f"evidence.metrics_port: cannot serve metrics on 127.0.0.1:{port}")
    assert "0 for none" in message and "\n" not in message
