"""Settings: one pydantic-settings class per service, env prefix ``TABSTREAM_``.

Each service fails fast on a bad or placeholder secret; nothing here reads files or opens
connections except ``load_or_create_secret`` (called by the composition root).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "placeholder",
        "xxx",
        "your-secret-key",
        "please-change-me",
        "dev",
        "test",
        "insecure",
    }
)
MIN_SECRET_LENGTH = 32
ENV_PREFIX = "TABSTREAM_"


class ConfigError(ValueError):
    """A bad setting, said in one line that names the variable (the CLI exits 2 on it)."""


def config_error(exc: ValidationError) -> ConfigError:
    """The errors of a settings class as one line naming each variable."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{ENV_PREFIX}{field.upper()}: {message}" if field else message)
    return ConfigError("; ".join(parts).replace("\n", " "))


def check_secret(value: str, field: str) -> str:
    """Refuse placeholders and short secrets, naming the setting."""
    if value.strip().lower() in PLACEHOLDER_SECRETS or "change" in value.lower():
        raise ValueError(
            f"{field} is a placeholder; set a random value of ≥ {MIN_SECRET_LENGTH} chars"
        )
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"{field} must be at least {MIN_SECRET_LENGTH} characters long")
    return value


@dataclass(frozen=True)
class BusConfig:
    """Which EventLog backend to use: ``embedded`` or ``kafka`` with a bootstrap list."""

    kind: Literal["embedded", "kafka"]
    bootstrap: str = ""


def parse_bus(value: str) -> BusConfig:
    """``embedded`` or ``kafka://host:port[,host:port]`` -> BusConfig (clear error otherwise)."""
    if value == "embedded":
        return BusConfig("embedded")
    if value.startswith("kafka://") and len(value) > len("kafka://"):
        return BusConfig("kafka", value.removeprefix("kafka://").rstrip("/"))
    raise ValueError(f"TABSTREAM_BUS must be 'embedded' or 'kafka://host:port', got {value!r}")


class CommonSettings(BaseSettings):
    """What every service shares: the bus, the data directory, artifacts and logging.

    ``KAFKA_REPLICATION`` and ``KAFKA_MIN_ISR`` are the replication factor and the
    ``min.insync.replicas`` of the topics tabstream creates on Kafka (1 and the broker's
    default suit one broker; a production cluster wants 3 and 2, see docs/scaling.md).
    ``S3_ENDPOINT`` and ``S3_REGION`` say where ``s3://`` artifacts and imports live (e.g.
    ``http://minio:9000``; credentials: the standard ``AWS_*`` chain); ``S3_RETRY_S`` is how
    long one artifact call waits for an unreachable S3 server before it gives up.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    bus: str = "embedded"
    topic_prefix: str = Field(default="tabstream", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
    data_dir: Path = Path(".tabstream")
    artifacts_uri: str | None = None
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    instance_id: str | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    shutdown_s: float = Field(default=10.0, gt=0, le=3600)
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_retry_s: float = Field(default=30.0, ge=0, le=3600)
    kafka_replication: int = Field(default=1, ge=1, le=32)
    kafka_min_isr: int | None = Field(default=None, ge=1, le=32)

    @field_validator("bus")
    @classmethod
    def _valid_bus(cls, value: str) -> str:
        parse_bus(value)
        return value

    @field_validator("kafka_min_isr", mode="before")
    @classmethod
    def _empty_min_isr_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _min_isr_within_replication(self) -> CommonSettings:
        if self.kafka_min_isr is not None and self.kafka_min_isr > self.kafka_replication:
            raise ValueError(
                f"TABSTREAM_KAFKA_MIN_ISR ({self.kafka_min_isr}) must not exceed "
                f"TABSTREAM_KAFKA_REPLICATION ({self.kafka_replication})"
            )
        return self

    @property
    def bus_config(self) -> BusConfig:
        return parse_bus(self.bus)

    @property
    def artifact_root(self) -> str:
        """The artifact store URI (default: ``<data_dir>/artifacts`` on local disk)."""
        return self.artifacts_uri or (self.data_dir.resolve() / "artifacts").as_uri()

    @property
    def embedded_log_path(self) -> Path:
        return self.data_dir / "log.sqlite"


class ApiSettings(CommonSettings):
    """The REST API (and the projection it hosts)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_tokens: str | None = None
    secret_key: SecretStr | None = None
    access_token_ttl_s: int = Field(default=900, ge=10)
    max_upload_mb: int = Field(default=512, ge=1)
    max_columns: int = Field(default=2000, ge=1)
    import_root: Path | None = None
    pools: str = "cpu"
    submit_timeout_s: float = Field(default=5.0, gt=0)
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_predict_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    public_docs: bool = True
    max_predict_rows: int = Field(default=10_000, ge=1)
    model_cache_mb: int = Field(default=512, ge=1)
    bench_echo: bool = False
    upload_url_ttl_s: int = Field(default=3600, ge=10, le=7 * 24 * 3600)
    download_url_ttl_s: int = Field(default=900, ge=10, le=7 * 24 * 3600)

    @field_validator("secret_key")
    @classmethod
    def _real_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value(), "TABSTREAM_SECRET_KEY")
        return value


class PipelineSettings(BaseSettings):
    """What the training pipeline is configured with (``bootstrap.common.pipeline_options``
    turns it into ``pipeline.options``): CPU threads of a model fit or prediction when its
    params name none (unset: all cores), the local TabICL checkpoints (unset: tabicl is
    unavailable; nothing is downloaded), ``CPU_FAMILY_MAX_S`` (on a CPU, for runs without a
    ``time_budget_s``: default families estimated to search longer are left out; 0: no limit),
    and distillation's synthetic rows per split (``DISTILL_SYNTHETIC_ROWS``, else
    ``DISTILL_RATIO`` x the training rows) and teacher labels.
    Read by the worker (checked at start) and its job processes, and by the API to load models."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    family_threads: int | None = None
    tabicl_checkpoint: Path | None = None
    tabicl_regressor_checkpoint: Path | None = None
    cpu_family_max_s: float = Field(default=900.0, ge=0)
    distill_synthetic_rows: int | None = None
    distill_ratio: float = 1.0
    distill_labels: Literal["sample", "argmax"] = "sample"

    @field_validator(
        "family_threads",
        "tabicl_checkpoint",
        "tabicl_regressor_checkpoint",
        "distill_synthetic_rows",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


class WorkerSettings(CommonSettings, PipelineSettings):
    """A worker process: one pool, one GPU or N CPU slots (and its jobs' pipeline settings)."""

    pool: str = "cpu"
    gpu: int | None = None
    slots: int = Field(default=1, ge=1, le=64)
    max_attempts: int = Field(default=3, ge=1)
    job_timeout_s: float | None = Field(default=None, gt=0)
    secret_key: SecretStr | None = None
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)

    @field_validator("secret_key")
    @classmethod
    def _real_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value(), "TABSTREAM_SECRET_KEY")
        return value


class ProjectionSettings(CommonSettings):
    """A standalone projection process (and the rebuild and replay commands)."""

    pools: str = "cpu"


class TeacherSettings(BaseSettings):
    """``TABSTREAM_TEACHER_*``: allowed hosts and request limits of HTTP teachers."""

    model_config = SettingsConfigDict(env_prefix="TABSTREAM_TEACHER_", extra="ignore")
    allowed_hosts: str = ""
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0)
    max_response_mb: float = Field(default=64.0, gt=0)

    @property
    def allowed(self) -> frozenset[str]:
        """Lower-cased allow-listed host names."""
        return frozenset(h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip())


class ClientSettings(BaseSettings):
    """The SDK and the CLI's client commands: ``TABSTREAM_URL`` and ``TABSTREAM_TOKEN``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)
    url: str = "http://127.0.0.1:8000"
    token: SecretStr | None = None


def inherited_environment(without: tuple[str, ...]) -> dict[str, str]:
    """This process's environment, less the variables named in ``without`` (what a child
    process inherits: the worker's job children never see the server's secrets)."""
    return {k: v for k, v in os.environ.items() if k not in without}


def load_or_create_secret(data_dir: Path, name: str = "secret.key") -> str:
    """Read a server secret from ``data_dir`` or create one (mode 0600) on first use."""
    path = data_dir / name
    if path.exists():
        return check_secret(path.read_text().strip(), str(path))
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    return value
