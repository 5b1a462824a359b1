"""What every entry point builds the same way: the event log, the artifact store, the server
secret, the pool list and the pipeline's options (all from settings)."""

from __future__ import annotations

from tabstream.adapters.artifacts.factory import open_artifact_store
from tabstream.adapters.artifacts.port import ArtifactStore
from tabstream.adapters.artifacts.s3_store import OnUnavailable
from tabstream.adapters.bus.embedded import EmbeddedEventLog
from tabstream.adapters.bus.kafka import KafkaEventLog
from tabstream.adapters.bus.port import EventLog
from tabstream.adapters.s3_imports import S3ImportConfig
from tabstream.common.logs import get_logger
from tabstream.pipeline.options import DistillOptions, FamilyOptions, PipelineOptions
from tabstream.settings import (
    ApiSettings,
    CommonSettings,
    ConfigError,
    PipelineSettings,
    load_or_create_secret,
)

_log = get_logger(__name__)
CONNECT_RETRY_S = 2.0


def build_event_log(
    settings: CommonSettings, *, client_id: str = "tabstream", linger_ms: int | None = None
) -> EventLog:
    """``embedded`` -> SQLite file in the data dir; ``kafka://...`` -> aiokafka, creating
    topics with ``TABSTREAM_KAFKA_REPLICATION`` replicas and ``TABSTREAM_KAFKA_MIN_ISR``.

    ``linger_ms`` overrides the Kafka producer's batching delay (the API uses a short one:
    each submission waits for its own ack).
    """
    config = settings.bus_config
    if config.kind == "embedded":
        return EmbeddedEventLog(settings.embedded_log_path)
    replicas, min_isr = settings.kafka_replication, settings.kafka_min_isr
    if linger_ms is None:
        return KafkaEventLog(
            config.bootstrap,
            client_id=client_id,
            replication_factor=replicas,
            min_insync_replicas=min_isr,
        )
    return KafkaEventLog(
        config.bootstrap,
        client_id=client_id,
        replication_factor=replicas,
        min_insync_replicas=min_isr,
        linger_ms=linger_ms,
    )


def build_artifacts(
    settings: CommonSettings, on_unavailable: OnUnavailable | None = None
) -> ArtifactStore:
    """The artifact store named by ``artifacts_uri`` (default ``<data_dir>/artifacts``); an
    ``s3://`` one on ``TABSTREAM_S3_ENDPOINT`` / ``TABSTREAM_S3_REGION``, retrying an
    unreachable server for ``TABSTREAM_S3_RETRY_S`` seconds per call, then calling
    ``on_unavailable`` (if given) before it raises ``ArtifactStoreUnavailable``."""
    try:
        s3 = S3ImportConfig.from_settings(settings.s3_endpoint, settings.s3_region)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return open_artifact_store(
            settings.artifact_root,
            s3,
            retry_s=settings.s3_retry_s,
            on_unavailable=on_unavailable,
        )
    except ValueError as exc:
        raise ConfigError(f"TABSTREAM_ARTIFACTS_URI: {exc}") from None


def server_secret(settings: ApiSettings) -> str:
    """TABSTREAM_SECRET_KEY, or a random key kept in ``<data_dir>/secret.key``."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    try:
        return load_or_create_secret(settings.data_dir)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parse_pools(text: str) -> tuple[str, ...]:
    """``"gpu,cpu"`` -> ("gpu", "cpu")."""
    pools = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not pools:
        raise ConfigError("TABSTREAM_POOLS must name at least one pool")
    return pools


def pipeline_options(settings: PipelineSettings) -> PipelineOptions:
    """The pipeline's options from its settings (``TABSTREAM_FAMILY_THREADS``,
    ``TABSTREAM_TABICL_*CHECKPOINT``, ``TABSTREAM_CPU_FAMILY_MAX_S``, ``TABSTREAM_DISTILL_*``)."""
    families = FamilyOptions(
        threads=settings.family_threads,
        tabicl_checkpoint=settings.tabicl_checkpoint,
        tabicl_regressor_checkpoint=settings.tabicl_regressor_checkpoint,
        cpu_family_max_s=settings.cpu_family_max_s,
    )
    distill = DistillOptions(
        synthetic_rows=settings.distill_synthetic_rows,
        ratio=settings.distill_ratio,
        labels=settings.distill_labels,
    )
    return PipelineOptions(families, distill)
