"""Job ids: version-7 UUIDs, drawn so that one window's ids share a commands partition."""

from __future__ import annotations

import random
import time
import uuid

import pytest

from tabstream.adapters.bus.partitioner import partition_for
from tabstream.producer_api import job_ids
from tabstream.producer_api.job_ids import JobIdDraw, uuid7


@pytest.fixture(autouse=True)
def seeded_ids(monkeypatch: pytest.MonkeyPatch) -> list[uuid.UUID]:
    """Every id a JobIdDraw makes comes from a fixed clock and a seeded generator (which
    partition an id maps to is then the same in every run); returns the ids made, in order."""
    rng, made = random.Random(7), list[uuid.UUID]()

    def seeded() -> uuid.UUID:
        made.append(uuid7(1_790_000_000_000 + len(made), rng.getrandbits(80)))
        return made[-1]

    monkeypatch.setattr(job_ids, "uuid7", seeded)
    return made


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_uuid7_carries_version_variant_and_milliseconds() -> None:
    ms = 1_790_000_000_123
    job_id = uuid7(ms)
    assert job_id.version == 7 and job_id.variant == uuid.RFC_4122
    assert job_id.int >> 80 == ms
    now = uuid7()
    assert abs((now.int >> 80) - time.time_ns() // 1_000_000) < 1000


def test_uuid7_ids_sort_by_time_and_do_not_repeat() -> None:
    ids = [uuid7(ms) for ms in range(1_790_000_000_000, 1_790_000_000_000 + 500) for _ in range(4)]
    assert len(set(ids)) == len(ids)
    by_ms = [str(i) for i in ids[::4]]
    assert by_ms == sorted(by_ms)


def test_a_windows_ids_all_map_to_its_partition_and_windows_take_turns() -> None:
    clock = FakeClock()
    draw = JobIdDraw(8, window_s=0.02, clock=clock)
    turns = []
    for window in range(16):
        clock.now = 0.02 * window + 0.01  # mid-window
        turn = draw.turn()
        turns.append(turn)
        for _ in range(25):
            assert partition_for(str(draw.draw()), 8) == turn
    assert turns == [w % 8 for w in range(16)]


def test_spare_ids_are_used_in_their_own_window(seeded_ids: list[uuid.UUID]) -> None:
    made = seeded_ids
    clock = FakeClock()
    draw = JobIdDraw(8, window_s=0.02, max_spare=10_000, clock=clock)
    drawn = []
    for _ in range(40):  # five rounds of the eight partitions
        drawn += [draw.draw() for _ in range(20)]
        clock.now += 0.02
    assert len(set(drawn)) == len(drawn) == 800
    kept = [job_id for queue in draw._spare for _, job_id in queue]
    assert sorted(made) == sorted(drawn + kept)  # every id made is drawn or kept: none wasted
    assert len(kept) < len(drawn) / 3


def test_spares_are_capped_per_partition() -> None:
    draw = JobIdDraw(8, max_spare=5, clock=FakeClock())
    for _ in range(200):
        draw.draw()
    assert max(len(queue) for queue in draw._spare) == 5


def test_stale_spares_are_dropped() -> None:
    clock = FakeClock()
    draw = JobIdDraw(4, window_s=0.02, max_age_s=1.0, clock=clock)
    first = {draw.draw() for _ in range(30)}
    spares = {job_id for queue in draw._spare for _, job_id in queue}
    assert spares and not spares & first
    clock.now += 10.0
    later = [draw.draw() for _ in range(4 * 30)]
    assert not spares & set(later)


def test_one_partition_draws_plain_version_7_ids() -> None:
    draw = JobIdDraw(1)
    assert {draw.draw().version for _ in range(10)} == {7}
    with pytest.raises(ValueError, match="partitions"):
        JobIdDraw(0)
