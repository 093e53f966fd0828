"""Connectors feed mentions of protected persons into ``mentions.raw``."""

from connectors.base import Connector
from connectors.producer import DeliveryError, MentionProducer

__all__ = ["Connector", "DeliveryError", "MentionProducer"]
