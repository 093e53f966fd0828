"""Alert delivery: ``pileon notify`` reads the ``alerts`` topic and hands each incident
transition to every configured sink (Alertmanager, webhook), each behind its own bounded queue
with retries, so a failing receiver never blocks stream processing."""

from pileon.alerting.base import AlertSink, DeliveryFailed, Rejected
from pileon.alerting.notification import Notification, notification_from_event

__all__ = [
    "AlertSink",
    "DeliveryFailed",
    "Notification",
    "Rejected",
    "notification_from_event",
]
