"""Connectors feed mentions of protected persons into ``mentions.raw``."""

from pileon.connectors.base import Connector
from pileon.connectors.producer import DeliveryError, MentionProducer

__all__ = ["Connector", "DeliveryError", "MentionProducer"]
