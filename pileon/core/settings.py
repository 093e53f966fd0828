"""One typed settings object for every pileon process.

Sources, highest priority first: explicit overrides, environment variables
(``PILEON_`` prefix, ``__`` between nested fields, e.g. ``PILEON_KAFKA__BOOTSTRAP``), a YAML
config file (``--config`` or ``PILEON_CONFIG``), then defaults. A bad value stops start-up
with one line naming the field (:class:`ConfigError`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from pileon.core.config_errors import describe_validation_error, describe_yaml_error
from pileon.core.deployment import RUNBOOK_URL

# The example watchlist ships with the package (package data), so the demo runs from a wheel.
DEFAULT_WATCHLIST = Path(__file__).resolve().with_name("watchlist.example.yaml")


ENV_PREFIX = "PILEON_"
SECTIONS = ("kafka", "worker", "ingest", "detection", "neardup", "alerting", "evidence",
            "console")


class ConfigError(Exception):
    """A setting is invalid; the process stops before doing anything."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSettings(_Section):
    bootstrap: str | None = Field(
        default=None, description="host:port[,host:port]; unset starts the embedded broker"
    )
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=16)
    security_protocol: str = Field(
        default="PLAINTEXT", pattern=r"^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$"
    )
    sasl_mechanism: str = Field(default="PLAIN", pattern=r"^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$")
    sasl_username: str | None = None
    sasl_password_file: Path | None = Field(
        default=None, description="file holding the SASL password (a mounted secret)"
    )
    ssl_cafile: Path | None = Field(default=None, description="CA bundle to verify the brokers")
    embedded_port: int = Field(
        default=0, ge=0, le=65535,
        description="port of the embedded broker on 127.0.0.1 when no bootstrap is set (0: a "
        "free port each start)",
    )


class WorkerSettings(_Section):
    app_id: str = Field(default="pileon", pattern=r"^[A-Za-z0-9._-]+$")
    web_bind: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    data_dir: Path = Path(".pileon")
    session_timeout_seconds: float = Field(default=30.0, gt=0)
    standby_replicas: int = Field(
        default=0, ge=0, le=3,
        description="Faust standby table replicas; 0 because faust-streaming 0.15 can hang "
        "taking over a standby partition (docs/reliability.md)",
    )
    producer_linger_ms: int = Field(
        default=20, ge=0, le=1000,
        description="how long the worker's producer waits to fill a batch (acks=all either "
        "way): 20 ms gave 1.27-1.31x the mentions a second of Faust's 0 in the same runs "
        "(docs/benchmarks.md), at most 20 ms per hop")
    fetch_wait_ms: int = Field(
        default=100, ge=1, le=5000,
        description="longest a fetch of the worker's consumer waits for records (Faust "
        "hard-codes 1,500 ms): Apache Kafka answers as soon as a record arrives, Tansu holds a "
        "waiting fetch for part of this wait, so each Faust hop took about 0.4 s at 1,500 "
        "(docs/benchmarks.md)")
    commit_interval_seconds: float = Field(
        default=2.8, gt=0, le=60,
        description="how often the worker commits the offsets its batches have finished "
        "(Faust's broker_commit_interval and its default): a restart reads again at most "
        "this much; bench/throughput.py sets 0.25 for every row it times, since it times "
        "them by their commits")
    batch_max: int = Field(
        default=500, ge=1, le=4096,
        description="most mentions the worker processes in one batch; a batch's produces are "
        "awaited together, and its offsets committed once all of them are acknowledged")
    batch_wait_ms: int = Field(
        default=100, ge=1, le=5000,
        description="longest a batch waits to fill: the worker's added latency at low rates")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="the worker's event loop (its consumer thread's too): uvloop, libuv's in "
        "C, took 2-22% less worker CPU a mention than asyncio's in the same runs, by workload "
        "and broker (docs/benchmarks.md); asyncio where uvloop is not installed (Windows)")
    faust_metrics: Literal["slim", "full"] = Field(
        default="slim",
        description="Faust's own series on /metrics: slim keeps rebalances, assignment and "
        "commit latency, offsets and producer errors; full adds Faust's per-message, "
        "per-event and per-table-operation series, which cost tens of microseconds a "
        "mention (docs/benchmarks.md)")
    lag_interval_seconds: float = Field(default=15.0, gt=0, description="lag metrics refresh")
    stall_seconds: float = Field(
        default=120.0, gt=0,
        description="an owned partition with messages waiting and no progress this long is "
        "stalled: /healthz answers 503",
    )
    stall_exit_seconds: float = Field(
        default=300.0, ge=0,
        description="stalled this long, the worker stops with an error so its supervisor "
        "restarts it (0: never)",
    )


class IngestSettings(_Section):
    max_message_bytes: int = Field(default=1_000_000, ge=1024)
    max_age_days: float = Field(default=30.0, gt=0, description="older event times dead-letter")
    max_future_seconds: float = Field(default=300.0, ge=0, description="clock-skew allowance")
    dedup_hours: float = Field(default=48.0, gt=0, description="how long a mention id is held")


class DetectionSettings(_Section):
    bin_seconds: int = Field(default=60, ge=10, le=3600)
    window_bins: int = Field(default=10, ge=1, le=240)
    lateness_seconds: int = Field(default=60, ge=0, le=3600)
    false_alarms_per_month: float = Field(
        default=2.0, gt=0,
        description="the detection default: bursts a month of a person's own ordinary traffic "
        "that may reach their open bar; each window length's bar is derived from it and from "
        "the person's history (the lowest score level crossed no more often)",
    )
    pileon_multiple: float = Field(
        default=8.0, gt=1,
        description="the sustained-rise test's bar: a half hour (all of it but five minutes) "
        "at this multiple of the higher of the person's usual for the hour and their last six "
        "hours always reaches the bar, however bursty the person; not calibrated on their own "
        "bursts, so repeated attacks do not raise it (docs/benchmarks.md has the trade-off)",
    )
    open_score: float = Field(
        default=3.0, gt=0,
        description="a floor under every person's bar: no incident opens below this score, "
        "whatever the budget allows (3: the level below which an incident counts as quiet)",
    )
    escalate_score: float = Field(
        default=11.0, gt=0,
        description="critical: a score escalate_score - open_score above the person's bar",
    )
    close_score: float = Field(default=3.0, ge=0)
    quiet_bins: int = Field(default=30, ge=1)
    min_excess: int = Field(
        default=25, ge=0,
        description="mentions above baseline to open, in the window that holds the most (the "
        "hour's counts too): the same number of extra mentions for a quiet and a busy person",
    )
    min_excess_coordinated: int = Field(
        default=10, ge=0,
        description="min_excess when the window's coordination signs (copies from several "
        "accounts, young accounts, one account's flood; not the focus on one post) are on "
        "their own as improbable as the false-alarm budget's model bar: a dozen copies of a "
        "template from different accounts is a campaign's signature, a dozen replies is not",
    )
    dispersion: float = Field(
        default=8.0, gt=0, description="prior negative-binomial size r (learned per person)"
    )
    coordination_gate: float = Field(
        default=2.0, ge=0,
        description="volume score a window needs before coordination evidence adds to it",
    )
    warmup_hours: float = Field(default=12.0, ge=0)
    young_account_days: float = Field(default=7.0, gt=0)

    @field_validator("escalate_score")
    @classmethod
    def _escalate_above_open(cls, v: float, info: Any) -> float:
        open_score = info.data.get("open_score")
        if open_score is not None and v < open_score:
            raise ValueError("must be >= open_score")
        return v


class NearDupSettings(_Section):
    threshold: float = Field(default=0.5, gt=0, lt=1, description="estimated Jaccard to join")
    num_perm: int = Field(default=128, ge=16, le=1024)
    shingle_words: int = Field(default=2, ge=1, le=5, description="word n-grams, n = 1 .. this")
    lsh_false_negative_weight: float = Field(
        default=0.8, gt=0, lt=1,
        description="weight of missed pairs vs spurious candidates when choosing LSH bands; "
        "spurious candidates cost one Jaccard estimate each, missed copies are lost",
    )
    min_tokens: int = Field(default=4, ge=1)
    window_hours: float = Field(default=24.0, gt=0)
    singleton_hours: float = Field(
        default=2.0, gt=0,
        description="a text nobody copied within this many hours stops being a template (a "
        "later copy starts a new cluster); keeps the LSH index to live clusters and recent texts",
    )
    max_per_person: int = Field(
        default=100_000, ge=100,
        description="hard cap of mentions held per person (2-4 KB each with their index)",
    )
    key_file: Path | None = Field(
        default=None, description="secret for keyed hashing; default <data_dir>/neardup.key"
    )


class AlertingSettings(_Section):
    """``pileon notify``: delivers alert events to Alertmanager and webhooks."""

    alertmanager_urls: list[str] = Field(
        default_factory=list, description="Alertmanager base URLs (each gets every alert)"
    )
    webhook_url: str | None = None
    webhook_url_file: Path | None = Field(
        default=None, description="read the webhook URL from this file (Slack URLs are secrets)"
    )
    webhook_format: str = Field(default="json", pattern=r"^(json|slack)$")
    webhook_token_file: Path | None = Field(
        default=None, description="bearer token for the webhook, read from this file"
    )
    dashboard_url: str = Field(
        default="http://localhost:3000/d/pileon-person/pileon-person",
        description="Grafana person dashboard; ?var-person=<key> is appended",
    )
    evidence_url: str = Field(
        default="http://127.0.0.1:6070/evidence",
        description="the console's evidence base URL; /<incident id> is appended (the "
        "console opens the incident page there, after login)",
    )
    runbook_url: str = RUNBOOK_URL
    resend_seconds: float = Field(
        default=60.0, gt=0, description="re-send open incidents to Alertmanager this often"
    )
    queue_size: int = Field(default=1000, ge=1, description="per-sink queue; full pauses reading")
    max_retry_seconds: float = Field(
        default=86_400.0, gt=0, description="a failing receiver is retried this long"
    )
    timeout_seconds: float = Field(default=10.0, gt=0)
    group_id: str = Field(default="pileon-notify", pattern=r"^[A-Za-z0-9._-]+$")
    head_wait_seconds: float = Field(
        default=5.0, ge=0, description="how long a page waits for the evidence archiver's "
        "chain head at that alert (evidence.heads) before it goes with the latest head known; "
        "no wait when no archiver ever published one")
    metrics_bind: str = "127.0.0.1"
    metrics_port: int = Field(default=6067, ge=0, le=65535)


class EvidenceSettings(_Section):
    """``pileon archive``: anchors outside the chain (signatures and RFC 3161 timestamps)."""

    signing_key_file: Path | None = Field(
        default=None, description="Ed25519 key (PEM, or a 32-byte seed in hex) that seals "
        "checkpoints and bundles; a secret. None: bundles are not sealed")
    tsa_urls: list[str] = Field(
        default_factory=list, description="RFC 3161 timestamp authorities each seal is sent "
        "to (e.g. https://freetsa.org/tsr); none: seals are signed but not timestamped")
    tsa_ca_files: list[Path] = Field(
        default_factory=list, description="the TSAs' root certificates (PEM), carried in each "
        "bundle so verify can check the tokens offline")
    tsa_timeout_seconds: float = Field(default=10.0, gt=0)
    checkpoint_seconds: float = Field(
        default=300.0, gt=0, description="seal each growing chain this often")
    platform_records: bool = Field(
        default=True, description="fetch and verify the signed record of each Bluesky post in "
        "an incident from the author's PDS")
    plc_url: str = Field(default="https://plc.directory", pattern=r"^https?://",
                         description="the PLC directory that resolves did:plc")
    platform_wait_seconds: float = Field(
        default=10.0, ge=0, description="how long an export waits for records being fetched "
        "(later exports include the rest)")
    recheck_hours: list[float] = Field(
        default_factory=lambda: [1.0, 24.0, 168.0], description="look at an incident's posts "
        "again this many hours after it opened, and record deletions and edits")
    retention_days: float | None = Field(
        default=90.0, gt=0, description="chain records captured longer ago are removed (incident "
        "bundles are held until released); null keeps everything")
    expire_seconds: float = Field(default=3600.0, gt=0, description="apply retention this often")
    metrics_bind: str = "127.0.0.1"
    metrics_port: int = Field(default=6069, ge=0, le=65535,
                              description="the archiver's /metrics; 0: not served")
    group_id: str = Field(
        default="pileon-evidence", pattern=r"^[A-Za-z0-9._-]+$",
        description="the archiver's consumer groups (this, and -clean and -changes after it); "
        "one per deployment when deployments share a Kafka cluster")


class ConsoleSettings(_Section):
    """``pileon console``: the responders' web application (incidents, case work, exports)."""

    bind: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=6070, ge=0, le=65535)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the case database (sqlite:///FILE or "
        "postgresql+psycopg://...); default: SQLite in <data_dir>/console.db")
    database_url_file: Path | None = Field(
        default=None, description="read the database URL from this file (it holds a password)")
    data_dir: Path = Field(
        default=Path("pileon-console"), description="the embedded SQLite database's folder")
    evidence_dir: Path = Field(
        default=Path("pileon-evidence"),
        description="the archiver's folder (`pileon archive --out`), read-only here")
    public_url: str = Field(
        default="http://127.0.0.1:6070", description="where responders reach the console")
    secure_cookies: bool = Field(
        default=True, description="Secure flag on the session cookie (browsers accept it on "
        "https and on http://127.0.0.1 / localhost)")
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    login_failures: int = Field(
        default=5, ge=1, description="failed logins (per user and per address) before a lockout")
    lockout_minutes: float = Field(default=15.0, gt=0)
    trusted_proxies: list[str] = Field(
        default_factory=list, description="addresses of the single sign-on proxy (e.g. "
        "oauth2-proxy) whose user header is believed; empty: no proxy log-in")
    proxy_user_header: str = Field(default="X-Forwarded-Preferred-Username")
    proxy_default_role: str | None = Field(
        default=None, pattern=r"^(viewer|responder)$",
        description="role of a proxy user with no local account; none: such users are refused")
    silence_hours: float = Field(
        default=12.0, gt=0, description="an acknowledgement silences the Alertmanager alert "
        "this long (an escalation to critical still pages)")
    max_note_chars: int = Field(default=10_000, ge=100)
    bluesky_services: list[str] = Field(
        default_factory=lambda: ["https://bsky.social"],
        description="PDS entryways a moderation list may be created on (with an app password); "
        "the console calls no other host with a credential")
    feed_from_kafka: bool = Field(
        default=True, description="follow the alerts topic (else only the archive's bundles)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PILEON_", env_nested_delimiter="__", extra="forbid"
    )

    watchlist: Path = DEFAULT_WATCHLIST
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    kafka: KafkaSettings = KafkaSettings()
    worker: WorkerSettings = WorkerSettings()
    ingest: IngestSettings = IngestSettings()
    detection: DetectionSettings = DetectionSettings()
    neardup: NearDupSettings = NearDupSettings()
    alerting: AlertingSettings = AlertingSettings()
    evidence: EvidenceSettings = EvidenceSettings()
    console: ConsoleSettings = ConsoleSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE.get("path")
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        sources.append(file_secret_settings)
        return tuple(sources)


# The config file path is chosen per load; pydantic-settings reads sources from the class.
_CONFIG_FILE: dict[str, Path | None] = {"path": None}


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings, or raise :class:`ConfigError` naming every bad field."""
    path = config or (Path(p) if (p := os.environ.get("PILEON_CONFIG")) else None)
    if path is not None:
        _check_config_file(path)
    _CONFIG_FILE["path"] = path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, source=path, env_prefix=ENV_PREFIX)) from None
    except SettingsError as exc:
        raise ConfigError(_describe_env_error(exc)) from None
    except (ValueError, OSError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    finally:
        _CONFIG_FILE["path"] = None


def _check_config_file(path: Path) -> None:
    """The file exists, is YAML, and its top level is a mapping of sections."""
    if not path.is_file():
        raise ConfigError(f"config file {path}: not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(describe_yaml_error(exc, f"config file {path}")) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"config file {path}: the top level must be a mapping of sections "
            f"({', '.join(f'{s}:' for s in SECTIONS)}), not a {type(data).__name__}")


def _describe_env_error(exc: SettingsError) -> str:
    """pydantic-settings says 'error parsing value for field "kafka"': name the variable."""
    match = re.search(r'field "(\w+)"', str(exc))
    field = match.group(1) if match else None
    variable = f"{ENV_PREFIX}{field.upper()}" if field else f"a {ENV_PREFIX}* variable"
    cause = exc.__cause__
    detail = f": {cause}" if cause is not None else ""
    return (f"invalid setting '{field or '?'}' (environment variable {variable}): not valid "
            f"JSON for the section{detail}")


__all__ = ["ConfigError", "Settings", "load_settings"]
