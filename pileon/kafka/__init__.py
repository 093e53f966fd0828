"""Kafka plumbing: connection config handed to every client, topics, the embedded broker,
consumer-group lag."""

from pileon.kafka import client_waits

client_waits.install()  # kafka-python 3.0.x can otherwise block forever (see client_waits)
