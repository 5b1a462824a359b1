"""Publishing a job's events: envelopes with attempt and a gapless seq, retried while the
bus is down; terminal events go out with the command's offset commit in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from tabstream.adapters.bus.port import (
    EventLog,
    GroupConsumer,
    OutgoingRecord,
    Record,
    TopicPartition,
)
from tabstream.common.logs import get_logger
from tabstream.schemas.events import Envelope, EventPayload, Producer, encode, headers

_log = get_logger(__name__)
RETRY_S = 0.5
MAX_RETRY_S = 120.0


def envelope_record(topic: str, env: Envelope) -> OutgoingRecord:
    """The outgoing record of an envelope (key = aggregate id)."""
    return OutgoingRecord(topic, env.aggregate_id, encode(env), headers(env))


async def retrying(what: str, call: Callable[[], Awaitable[None]], give_up_s: float) -> None:
    """Run ``call`` until it succeeds; re-raise after ``give_up_s`` of failures."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_s
    while True:
        try:
            await call()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if loop.time() > deadline:
                raise
            _log.warning("bus call failed; retrying", what=what, error=repr(exc))
            await asyncio.sleep(RETRY_S)


class JobEmitter:
    """Events of one attempt of one job: ``seq`` counts from 0 without gaps."""

    def __init__(
        self,
        log: EventLog,
        topic: str,
        *,
        job_id: str,
        tenant: str,
        producer: Producer,
        attempt: int,
        give_up_s: float = MAX_RETRY_S,
    ) -> None:
        self.log, self.topic = log, topic
        self.job_id, self.tenant, self.producer, self.attempt = job_id, tenant, producer, attempt
        self.seq = 0
        self._give_up_s = give_up_s

    def wrap(self, payload: EventPayload) -> Envelope:
        """The next envelope of this attempt (advances seq)."""
        env = Envelope.wrap(
            payload,
            tenant=self.tenant,
            producer=self.producer,
            aggregate_id=self.job_id,
            attempt=self.attempt,
            seq=self.seq,
        )
        self.seq += 1
        return env

    async def emit(self, payload: EventPayload) -> None:
        """Publish a progress event (acks=all), retrying while the bus is unavailable."""
        record = envelope_record(self.topic, self.wrap(payload))

        async def send() -> None:
            await self.log.publish(record)

        await retrying(payload.type, send, self._give_up_s)

    async def finish(
        self,
        consumer: GroupConsumer,
        command: Record,
        payloads: Sequence[EventPayload],
        extra: Sequence[OutgoingRecord] = (),
    ) -> None:
        """Publish ``payloads`` (+ ``extra`` records) and commit past ``command`` atomically."""
        records = [*extra, *(envelope_record(self.topic, self.wrap(p)) for p in payloads)]
        await commit_with(consumer, command, records, self._give_up_s)


async def commit_with(
    consumer: GroupConsumer,
    command: Record,
    records: Sequence[OutgoingRecord],
    give_up_s: float = MAX_RETRY_S,
) -> None:
    """One transaction: ``records`` and the commit of ``command.offset + 1``."""
    tp = TopicPartition(command.topic, command.partition)

    async def transact() -> None:
        async with consumer.transaction() as tx:
            for record in records:
                await tx.publish(record)
            tx.commit_offsets({tp: command.offset + 1})

    await retrying("commit transaction", transact, give_up_s)
