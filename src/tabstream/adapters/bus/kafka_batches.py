"""Publishing through aiokafka a batch per partition and event-loop turn, not a send per record.

``AIOKafkaProducer.send`` costs about 15 µs of Python per record (metadata check, partitioner,
accumulator bookkeeping, a future). Records published to one partition during one turn of the
event loop (concurrent API requests, say) go into one ``BatchBuilder`` instead and are handed
over with one ``send_batch``: the idempotent, acks=all producer sends it like any batch, and the
ack's base offset gives each record its own offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaConnectionError

from tabstream.adapters.bus.port import OutgoingRecord, Position

_new_tuple = tuple.__new__


class _Open:
    """A batch still taking records, and each record's future."""

    __slots__ = ("builder", "futures")

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.futures: list[asyncio.Future[Position]] = []


class PartitionBatches:
    """Collects published records per (topic, partition) until the end of the loop's turn."""

    def __init__(self, watch: Callable[[asyncio.Future[Any]], None]) -> None:
        self._watch = watch
        self._open: dict[tuple[str, int], _Open] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def add(
        self, producer: Any, record: OutgoingRecord, partition: int
    ) -> asyncio.Future[Position]:
        """Queue ``record`` for ``partition``; the future gives its position once acknowledged
        (or the error of the batch; ``watch`` bounds the wait)."""
        slot = (record.topic, partition)
        batch = self._open.get(slot) or self._start(producer, slot)
        if not _append(batch, record):
            self._flush(producer, slot)  # full: send it, start another
            batch = self._start(producer, slot)
            if not _append(batch, record):
                raise ValueError(f"a record of {len(record.value)} bytes exceeds the batch size")
        future: asyncio.Future[Position] = asyncio.get_running_loop().create_future()
        batch.futures.append(future)
        self._watch(future)
        return future

    def _start(self, producer: Any, slot: tuple[str, int]) -> _Open:
        batch = self._open[slot] = _Open(producer.create_batch())
        asyncio.get_running_loop().call_soon(self._flush, producer, slot)
        return batch

    def _flush(self, producer: Any, slot: tuple[str, int]) -> None:
        batch = self._open.pop(slot, None)
        if batch is None or not batch.futures:
            return
        task = asyncio.ensure_future(self._send(producer, slot, batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, producer: Any, slot: tuple[str, int], batch: _Open) -> None:
        topic, partition = slot
        try:
            acked = await producer.send_batch(batch.builder, topic, partition=partition)
            meta = await acked
        except asyncio.CancelledError:
            _fail(batch, KafkaConnectionError("the producer stopped before the ack"))
            raise
        except Exception as exc:  # every record of the batch shares its fate
            _fail(batch, exc)
            return
        base = meta.offset
        for index, future in enumerate(batch.futures):
            if not future.done():
                future.set_result(_new_tuple(Position, (partition, base + index)))


def _append(batch: _Open, record: OutgoingRecord) -> bool:
    """Add ``record`` to the builder; False when it is full."""
    key, headers = record.key.encode(), list(record.headers)
    return (
        batch.builder.append(key=key, value=record.value, timestamp=None, headers=headers)
        is not None
    )


def _fail(batch: _Open, error: Exception) -> None:
    for future in batch.futures:
        if not future.done():
            future.set_exception(error)
