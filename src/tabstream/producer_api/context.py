"""Everything the routers need, built once by the composition root and passed to create_app."""

from __future__ import annotations

import os
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from tabstream.adapters.artifacts.port import ArtifactStore
from tabstream.adapters.bus.port import BusUnavailable, EventLog, OutgoingRecord, Position
from tabstream.adapters.models.port import ModelServer
from tabstream.adapters.s3_imports import S3ImportConfig
from tabstream.adapters.secrets import HeaderCipher
from tabstream.common.deadlines import TaskDeadlines
from tabstream.common.logs import get_logger
from tabstream.producer_api.api_topics import ApiTopics
from tabstream.producer_api.auth import Authenticator
from tabstream.producer_api.job_ids import JobIdDraw, uuid7
from tabstream.producer_api.keyed_locks import KeyedLocks
from tabstream.producer_api.readmodel import JobReadModel, Row
from tabstream.producer_api.signed_urls import SignedUrls
from tabstream.schemas import Envelope, EventPayload, Producer, encode, headers

_log = get_logger(__name__)
DATASET_CACHE_SIZE = 1024


class Published(NamedTuple):
    """A record this replica published: where it landed and its envelope."""

    topic: str
    position: Position
    envelope: Envelope


@dataclass(frozen=True)
class ApiLimits:
    """Request limits and timeouts, and where dataset imports may read from (the import root
    for ``file://``, the operator's S3 endpoint/region for ``s3://``)."""

    max_upload_bytes: int = 512 * 1024 * 1024
    max_columns: int = 2000
    max_rows: int = 100_000_000
    submit_timeout_s: float = 5.0
    apply_timeout_s: float = 2.0
    sse_heartbeat_s: float = 15.0
    import_root: str | None = None
    s3_import: S3ImportConfig = field(default_factory=S3ImportConfig)
    max_json_body_bytes: int = 1024 * 1024
    max_predict_body_bytes: int = 32 * 1024 * 1024
    public_docs: bool = True
    max_predict_rows: int = 10_000
    model_cache_mb: int = 512
    upload_url_ttl_s: int = 3600
    download_url_ttl_s: int = 900


@dataclass
class ApiContext:
    """The API's dependencies (ports and small services), shared by every request."""

    log: EventLog
    artifacts: ArtifactStore
    read_model: JobReadModel
    auth: Authenticator
    models: ModelServer
    cipher: HeaderCipher
    digest_key: bytes
    topics: ApiTopics = field(default_factory=ApiTopics)
    limits: ApiLimits = field(default_factory=ApiLimits)
    producer: Producer = field(
        default_factory=lambda: Producer(service="producer_api", instance="local")
    )
    bench_echo: bool = False
    idempotency_locks: KeyedLocks = field(default_factory=KeyedLocks)
    recent_submissions: OrderedDict[tuple[str, str], tuple[str, str]] = field(
        default_factory=OrderedDict
    )
    dataset_cache: OrderedDict[tuple[str, str], Row] = field(default_factory=OrderedDict)
    job_ids: dict[str, JobIdDraw] = field(default_factory=dict)
    publish_deadlines: TaskDeadlines = field(default_factory=TaskDeadlines)
    on_unshowable: Callable[[str], None] = lambda kind: None
    signed_urls: SignedUrls = field(default_factory=lambda: SignedUrls(os.urandom(32)))

    def report_unshowable(self, kind: str, ident: str, error: str) -> None:
        """A read-model row the API cannot show as it is: a warning and a metric."""
        _log.warning("read model row not showable as is", kind=kind, id=ident, error=error)
        self.on_unshowable(kind)

    async def learn_partitions(self) -> None:
        """Read the partition count of each pool's commands topic, for ``new_job_id``."""
        for pool in self.topics.pools:
            topic = self.topics.commands(pool)
            self.job_ids[topic] = JobIdDraw(await self.log.partitions(topic))

    def new_job_id(self, topic: str) -> uuid.UUID:
        """A job id for a run published to ``topic`` (see ``job_ids``)."""
        draw = self.job_ids.get(topic)
        return uuid7() if draw is None else draw.draw()

    def dataset(self, tenant: str, dataset_id: str) -> Row | None:
        """The tenant's dataset; registered datasets never change, so hits are cached (LRU)."""
        key = (tenant, dataset_id)
        row = self.dataset_cache.get(key)
        if row is None:
            row = self.read_model.get_dataset(tenant, dataset_id)
            if row is None:
                return None
            self.dataset_cache[key] = row
            if len(self.dataset_cache) > DATASET_CACHE_SIZE:
                self.dataset_cache.popitem(last=False)
        else:
            self.dataset_cache.move_to_end(key)
        return row

    async def publish(
        self, topic: str, payload: EventPayload, tenant: str, key: str | None = None
    ) -> Position:
        """Envelope, encode and publish ``payload``; returns after the broker's ack.

        Raises ``BusUnavailable`` when no ack arrives within ``submit_timeout_s``.
        """
        return (await self.publish_envelope(topic, payload, tenant, key)).position

    async def publish_envelope(
        self, topic: str, payload: EventPayload, tenant: str, key: str | None = None
    ) -> Published:
        """``publish``, returning the envelope too (for ``wait_applied``)."""
        env = Envelope.wrap(payload, tenant=tenant, producer=self.producer)
        record = OutgoingRecord(topic, key or env.aggregate_id, encode(env), headers(env))
        try:
            with self.publish_deadlines.bounded(self.limits.submit_timeout_s):
                position = await self.log.publish(record)
        except TimeoutError:
            raise BusUnavailable(
                f"the event log did not acknowledge within {self.limits.submit_timeout_s:g} s"
            ) from None
        return Published(topic, position, env)

    async def wait_applied(self, published: Published) -> bool:
        """Wait (``apply_timeout_s`` at most) until the local projection has folded a record
        this replica published, so that its next read sees it; False when the wait timed out.
        The projection is handed the envelope itself and need not decode the record again."""
        return await self.read_model.wait_applied(
            published.topic,
            published.position.partition,
            published.position.offset,
            self.limits.apply_timeout_s,
            published.envelope,
        )

    def remember(self, tenant: str, key: str, job_id: str, digest: str) -> None:
        """Keep a just-acknowledged idempotent submission until the projection has it."""
        self.recent_submissions[(tenant, key)] = (job_id, digest)
        while len(self.recent_submissions) > 10_000:
            self.recent_submissions.popitem(last=False)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
