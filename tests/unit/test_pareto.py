"""Simplex grids, normalisation and Pareto fronts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabstream.pipeline.search.pareto import normalise, pareto_front, scalarise, simplex_grid
from tabstream.schemas.checks import pareto_weight_count


@pytest.mark.parametrize(
    ("n", "step", "size"), [(2, 0.5, 3), (3, 0.25, 15), (2, 0.1, 11), (1, 1.0, 1)]
)
def test_grid_sizes(n: int, step: float, size: int) -> None:
    grid = simplex_grid(n, step)
    assert len(grid) == size
    assert all(abs(sum(w) - 1) < 1e-9 and len(w) == n for w in grid)
    assert len(set(grid)) == size


@pytest.mark.parametrize(("n", "step"), [(2, 0.1), (3, 0.2), (4, 0.25), (5, 0.5), (1, 0.5)])
def test_the_grid_is_every_composition_and_its_count_is_closed_form(n: int, step: float) -> None:
    import itertools

    steps = round(1 / step)
    brute = sorted(
        (
            tuple(c / steps for c in combo)
            for combo in itertools.product(range(steps + 1), repeat=n)
            if sum(combo) == steps
        ),
        reverse=True,
    )
    assert simplex_grid(n, step) == brute
    assert pareto_weight_count(n, step) == len(brute)


def test_normalise_directions_and_bounds() -> None:
    maximise = {"auc": True, "rmse": False}
    ref = [{"auc": 0.7, "rmse": 1.0}, {"auc": 0.9, "rmse": 3.0}]
    out = normalise({"auc": 0.8, "rmse": 2.0}, ref, maximise)
    assert out == pytest.approx({"auc": 0.2, "rmse": 0.5})
    assert normalise({"rmse": 2.0}, [], maximise) == {"rmse": 0.0}
    assert scalarise([0.5, 0.5], [out["auc"], out["rmse"]]) == pytest.approx(0.35)


def _brute(points: list[dict[str, float]], maximise: dict[str, bool]) -> list[int]:
    def loss(p: dict[str, float], m: str) -> float:
        return -p[m] if maximise[m] else p[m]

    def dominates(a: dict[str, float], b: dict[str, float]) -> bool:
        ms = list(maximise)
        return all(loss(a, m) <= loss(b, m) for m in ms) and any(
            loss(a, m) < loss(b, m) for m in ms
        )

    return [j for j, b in enumerate(points) if not any(dominates(a, b) for a in points)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12))
def test_front_matches_brute_force(raw: list[tuple[int, int]]) -> None:
    maximise = {"auc": True, "logloss": False}
    points = [{"auc": float(a), "logloss": float(b)} for a, b in raw]
    assert pareto_front(points, ["auc", "logloss"], maximise) == _brute(points, maximise)
