"""Configuration from the environment or a `.env` file (see README, "Configuration")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # An empty variable (`ALIGN_PORT=` copied from .env.example) means "the default".
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    database_url: str = Field("sqlite:///align.db", alias="ALIGN_DATABASE_URL")
    db_connect_timeout: float = Field(5.0, gt=0, alias="ALIGN_DB_CONNECT_TIMEOUT")
    db_statement_timeout: float = Field(30.0, gt=0, alias="ALIGN_DB_STATEMENT_TIMEOUT")
    # storage.db's DEFAULT_POOL_SIZE and DEFAULT_MAX_OVERFLOW (why these); not imported from it:
    # this module is read at every `align` start, before anything needs SQLAlchemy.
    db_pool_size: int = Field(20, ge=1, alias="ALIGN_DB_POOL_SIZE")
    db_max_overflow: int = Field(10, ge=0, alias="ALIGN_DB_MAX_OVERFLOW")
    # Seconds an outbox claim lasts unless renewed (renewed every third of it while the worker
    # lives): after a crash, another replica takes over that much later (adapters/runtime.py).
    outbox_lease: float = Field(60.0, ge=1, alias="ALIGN_OUTBOX_LEASE")
    # The inbox (adapters/inbox.py): how long recording a request may hold its ack, how long
    # a process holds a request it works before another may take it over, how long finished
    # requests are kept (their ids catch retries and replays; Slack's window is 5 minutes).
    inbox_ack_budget: float = Field(1.5, gt=0, alias="ALIGN_INBOX_ACK_BUDGET")
    inbox_claim_timeout: float = Field(30.0, gt=0, alias="ALIGN_INBOX_CLAIM_TIMEOUT")
    inbox_retention_hours: float = Field(24.0, ge=1, alias="ALIGN_INBOX_RETENTION_HOURS")
    # Seconds between a worker's looks for requests whose claim ran out (adapters/recovery.py).
    inbox_recover_every: float = Field(5.0, gt=0, alias="ALIGN_INBOX_RECOVER_EVERY")
    # Requests one process holds recorded but unfinished (adapters/inbox.py); past it a command
    # or click is answered "busy" at once and nothing is recorded, so a burst cannot queue
    # unbounded work behind acks that each promise a result.
    max_backlog: int = Field(2000, ge=1, alias="ALIGN_MAX_BACKLOG")
    # `--role web` processes only record and acknowledge, and the workers run the requests
    # (adapters/inbox.py): acks stay fast however much work piles up. Every process reads it:
    # the workers then watch the shared queue closely.
    hand_off: bool = Field(False, alias="ALIGN_HAND_OFF")
    # …and a worker that receives hand-offs lowers its CPU priority by this much (`nice`), so
    # that on a host it shares with web processes their acks go first: work can wait a few
    # milliseconds, an ack cannot. 0 leaves it as it is.
    worker_nice: int = Field(10, ge=0, le=19, alias="ALIGN_WORKER_NICE")
    # `align serve` keeps its threads on one CPU (adapters/cpu.py): `auto` follows the idlest
    # of the CPUs it may use, a number stays on that CPU, `off` leaves them to the kernel.
    cpu: str = Field("auto", pattern=r"^(auto|off|\d+)$", alias="ALIGN_CPU")
    webhook_loopback_for_tests: bool = Field(False, alias="ALIGN_WEBHOOK_LOOPBACK_FOR_TESTS")
    # Seconds between a running process's re-checks of ALIGN_SECRET (adapters/secret_watch.py,
    # 30 unless set): so that a test's process notices `align adopt-secret` quickly.
    secret_recheck_for_tests: float | None = Field(
        None, gt=0, alias="ALIGN_SECRET_RECHECK_FOR_TESTS"
    )
    port: int = Field(3000, alias="ALIGN_PORT")
    secret: str = Field("", alias="ALIGN_SECRET")
    admins: str = Field("", alias="ALIGN_ADMINS")
    slack_signing_secret: str = Field("", alias="SLACK_SIGNING_SECRET")
    slack_bot_token: str = Field("", alias="SLACK_BOT_TOKEN")
    slack_client_id: str = Field("", alias="SLACK_CLIENT_ID")
    slack_client_secret: str = Field("", alias="SLACK_CLIENT_SECRET")
    slack_app_token: str = Field("", alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    microsoft_app_id: str = Field("", alias="MICROSOFT_APP_ID")
    microsoft_app_password: str = Field("", alias="MICROSOFT_APP_PASSWORD")
    microsoft_app_tenant_id: str = Field("", alias="MICROSOFT_APP_TENANT_ID")
    microsoft_app_type: str = Field("", alias="MICROSOFT_APP_TYPE")

    # `align serve` itself (README, "Deploy"). The host defaults to 0.0.0.0 only when a
    # platform that needs inbound HTTP is configured, else 127.0.0.1 (adapters/preflight.py).
    host: str = Field("", alias="ALIGN_HOST")
    shutdown_grace: float = Field(20.0, alias="ALIGN_SHUTDOWN_GRACE", ge=0)
    log_format: Literal["text", "json"] = Field("text", alias="ALIGN_LOG_FORMAT")

    def admin_set(self) -> frozenset[str]:
        return frozenset(a.strip().lstrip("@") for a in self.admins.split(",") if a.strip())
