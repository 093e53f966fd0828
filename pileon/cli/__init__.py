"""The ``pileon`` command: the top layer, which starts everything else."""

from pileon.cli.main import main

__all__ = ["main"]
