"""Kafka plumbing: connection config handed to every client, topics, the embedded broker,
consumer-group lag."""
