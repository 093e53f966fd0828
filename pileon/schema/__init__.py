"""The messages that cross a process or a topic: mention, dead letter, alert event.

The lowest layer: it imports nothing else of pileon, so a connector, the worker, the
archiver and the console all read one definition of each message."""
