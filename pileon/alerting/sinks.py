"""The sinks the settings ask for."""

from __future__ import annotations

from pileon.alerting.alertmanager import AlertmanagerSink
from pileon.alerting.base import AlertSink
from pileon.alerting.webhook import WebhookSink
from pileon.core.settings import AlertingSettings


def sinks_from_settings(cfg: AlertingSettings) -> list[AlertSink]:
    sinks: list[AlertSink] = [AlertmanagerSink(url, cfg.timeout_seconds)
                              for url in cfg.alertmanager_urls]
    if len(sinks) > 1:  # one queue per Alertmanager, with distinct metric labels
        for i, sink in enumerate(sinks):
            sink.name = f"alertmanager-{i}"
    url = cfg.webhook_url_file.read_text().strip() if cfg.webhook_url_file else cfg.webhook_url
    if url:
        sinks.append(WebhookSink(url, cfg.webhook_format, cfg.webhook_token_file,
                                 cfg.timeout_seconds))
    return sinks
