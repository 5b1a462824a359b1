"""Property: the fold is insensitive to interleaving (per-stream order kept) and duplicates."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabstream.projection.fold import ProjectionState, apply
from tabstream.projection.sqlite_store import ProjectionStore
from tabstream.projection.synthetic import Synth
from tabstream.schemas import Envelope

job_spec = st.fixed_dictionaries(
    {
        "rows": st.integers(1, 2),
        "trials": st.integers(1, 3),
        "attempts": st.integers(1, 3),
        "outcome": st.sampled_from(["completed", "failed", "cancelled", "running"]),
        "cancel": st.booleans(),
    }
)


def streams_of(seed: int, specs: list[dict[str, object]]) -> list[list[Envelope]]:
    """Every job's commands, control and events streams, plus one dataset stream."""
    synth = Synth(seed)
    dataset = synth.dataset("acme")
    out = [[dataset]]
    for i, spec in enumerate(specs):
        h = synth.job(f"tenant-{i % 2}", uuid.uuid4(), **spec)  # type: ignore[arg-type]
        out += [h.streams["commands"], h.streams["control"], h.streams["events"]]
    return [s for s in out if s]


@st.composite
def shuffled(draw: st.DrawFn) -> tuple[list[Envelope], list[Envelope]]:
    """(canonical order, an arbitrary interleaving of the streams with duplicates injected)."""
    seed = draw(st.integers(0, 2**16))
    streams = streams_of(seed, draw(st.lists(job_spec, min_size=1, max_size=4)))
    canonical = [e for s in streams for e in s]
    cursors = [0] * len(streams)
    mixed: list[Envelope] = []
    while any(c < len(s) for c, s in zip(cursors, streams, strict=True)):
        live = [i for i, s in enumerate(streams) if cursors[i] < len(s)]
        i = draw(st.sampled_from(live))
        mixed.append(streams[i][cursors[i]])
        cursors[i] += 1
    for _ in range(draw(st.integers(0, 10))):
        src = draw(st.integers(0, len(mixed) - 1))
        dst = draw(st.integers(src + 1, len(mixed)))
        mixed.insert(dst, mixed[src])
    return canonical, mixed


def fold(envs: list[Envelope]) -> ProjectionState:
    state = ProjectionState()
    for env in envs:
        state = apply(state, env)
    return state


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shuffled())
def test_interleaving_and_duplicates_do_not_change_the_state(
    case: tuple[list[Envelope], list[Envelope]],
) -> None:
    canonical, mixed = case
    expected, got = fold(canonical), fold(mixed)
    assert got.jobs == expected.jobs
    assert got.trials == expected.trials
    assert got.datasets == expected.datasets
    assert got.models == expected.models


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shuffled(), st.integers(1, 50))
def test_store_digest_ignores_interleaving_duplicates_and_batching(
    case: tuple[list[Envelope], list[Envelope]], batch: int
) -> None:
    canonical, mixed = case
    with tempfile.TemporaryDirectory() as tmp:
        digests = []
        for name, envs, size in (("a", canonical, 10_000), ("b", mixed, batch)):
            store = ProjectionStore(Path(tmp) / f"{name}.sqlite")
            items = [("t", 0, i, e) for i, e in enumerate(envs)]
            for start in range(0, len(items), size):
                store.apply_batch(items[start : start + size])
            store._db.execute("DELETE FROM offsets")  # positions differ by construction
            digests.append(store.digest())
            store.close()
    assert digests[0] == digests[1]
