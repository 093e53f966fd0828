"""What every ``pileon`` subcommand shares: the ``--bootstrap`` option, the broker a command
must be given, and the error a command raises when it cannot do its job."""

from __future__ import annotations

import argparse
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pileon.core.settings import ConfigError, Settings
from pileon.kafka.connection import ConnectionConfig


class CommandError(Exception):
    """A command could not do its job; the message says why (exit status 2)."""


def scrape(url: str, timeout: float) -> list[Sample]:
    """Every sample of a Prometheus ``/metrics`` page (a worker's, for check and the demo).
    Raises ``OSError`` (``URLError`` included) when it does not answer, ``ValueError`` for a
    URL that is not one."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - operator's
        text = response.read().decode("utf-8", "replace")
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def serve_metrics(bind: str, port: int, setting: str, registry: Any = None) -> None:
    """Serve Prometheus ``/metrics`` on ``bind:port`` in a thread, or fail with one line
    naming the ``setting`` when the address cannot be had (taken, or not this host's)."""
    from prometheus_client import REGISTRY, start_http_server

    try:
        start_http_server(port, bind, registry=registry or REGISTRY)
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot serve metrics on {bind}:{port} "
                          f"({exc.strerror or exc}); choose another port, or 0 for none") \
            from None


def require_extra(extra: str, module: str, command: str) -> None:
    """Fail with one line naming the pip extra when ``command`` needs a module it brings."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise CommandError(f"{command} needs the '{extra}' extra: "
                           f"pip install 'pileon[{extra}]'")


def bootstrap_parent() -> argparse.ArgumentParser:
    """The parent parser of every command that talks to a broker it does not start."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--bootstrap", metavar="HOST:PORT[,...]",
                        help="Kafka bootstrap servers (default: kafka.bootstrap from the settings)")
    return parent


def required_connection(
    args: argparse.Namespace, settings: Settings, command: str
) -> ConnectionConfig:
    """The broker a command that does not start one must be given, with the configured
    security: ``--bootstrap`` overrides only the address."""
    bootstrap: str | None = getattr(args, "bootstrap", None) or settings.kafka.bootstrap
    if not bootstrap:
        raise ConfigError(f"{command} needs a broker: --bootstrap or PILEON_KAFKA__BOOTSTRAP")
    return ConnectionConfig.from_settings(settings.kafka, bootstrap)
