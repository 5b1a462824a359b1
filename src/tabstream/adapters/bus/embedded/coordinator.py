"""The embedded group coordinator: which member of a consumer group holds which partitions.

Membership lives in this process (members in other processes on the same file are not
seen). Partitions are dealt round-robin in join order whenever a member joins or leaves or
the topics change, and a member restarts each new partition at the group's committed offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from tabstream.adapters.bus.embedded.changes import ChangeSignal
from tabstream.adapters.bus.embedded.storage import LogFile
from tabstream.adapters.bus.port import TopicPartition


class Member(Protocol):
    """What the coordinator needs of a group member (``embedded_group.EmbeddedGroupConsumer``)."""

    group: str
    topics: tuple[str, ...]

    def assign(
        self, tps: frozenset[TopicPartition], committed: Mapping[TopicPartition, int]
    ) -> None:
        """Take these partitions, each from its committed offset."""
        ...

    async def stop(self) -> None:
        """Leave the group."""
        ...


def round_robin(
    tps: Sequence[TopicPartition], subscriptions: Sequence[set[str]]
) -> list[list[TopicPartition]]:
    """Deal ``tps`` over members (in join order), skipping members not subscribed to the topic."""
    plan: list[list[TopicPartition]] = [[] for _ in subscriptions]
    turn = 0
    for tp in tps:
        for _ in range(len(subscriptions)):
            member = turn % len(subscriptions)
            turn += 1
            if tp.topic in subscriptions[member]:
                plan[member].append(tp)
                break
    return plan


class GroupCoordinator:
    """The members of every group on one log file, and their assignments."""

    def __init__(self, file: LogFile, changes: ChangeSignal) -> None:
        self._file = file
        self._changes = changes
        self._members: dict[str, list[Member]] = {}

    def join(self, member: Member) -> None:
        """Add ``member`` to its group and rebalance the group."""
        self._members.setdefault(member.group, []).append(member)
        self._rebalance(member.group)

    def leave(self, member: Member) -> None:
        """Remove ``member`` from its group and rebalance the rest."""
        members = self._members.get(member.group, [])
        if member in members:
            members.remove(member)
            self._rebalance(member.group)

    async def stop_all(self) -> None:
        """Stop every member of every group (each leaves as it stops)."""
        for members in list(self._members.values()):
            for member in list(members):
                await member.stop()

    def topics_changed(self) -> None:
        """Re-read the topics, rebalance every group and wake waiting readers."""
        self._file.reload_topics()
        for group in list(self._members):
            self._rebalance(group)
        self._changes.notify()

    def refresh_topics(self, wanted: Iterable[str]) -> None:
        """When some ``wanted`` topic is unknown, look for it in the file (another process may
        have created it) and rebalance if the topics changed."""
        if any(t not in self._file.topics for t in wanted) and self._file.reload_topics():
            self.topics_changed()

    def _rebalance(self, group: str) -> None:
        members = self._members.get(group, [])
        tps = [
            TopicPartition(t, p)
            for t in sorted({t for m in members for t in m.topics})
            for p in range(self._file.topics.get(t, 0))
        ]
        plan = round_robin(tps, [set(m.topics) for m in members])
        for member, assigned in zip(members, plan, strict=True):
            member.assign(frozenset(assigned), self._file.committed(group, assigned))
