"""benchmarks.family_costs: the measured seconds become a plan that never costs less on more
rows, and a parallel share from the speed-up at the largest size."""

from __future__ import annotations

import pytest
from benchmarks.family_costs import fitted


def test_a_dip_in_the_measured_seconds_is_planned_at_the_smaller_sizes_cost() -> None:
    record = {"sizes": [500, 2000, 8000], "seconds": {"1": [2.9, 2.8, 14.0], "2": [2, 2, 8.0]}}
    cost = fitted(record)
    assert cost.points == ((500, 2.9), (2000, 2.9), (8000, 14.0))
    assert cost.parallel == pytest.approx(0.86)
    assert cost.seconds(1000) == pytest.approx(2.9)


def test_rising_seconds_are_planned_as_measured() -> None:
    record = {"sizes": [500, 2000], "seconds": {"1": [1.0, 3.0]}}
    assert fitted(record).points == ((500, 1.0), (2000, 3.0))
    assert fitted(record).parallel == 0.0
