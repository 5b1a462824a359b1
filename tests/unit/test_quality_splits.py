"""The quality benchmark across outer splits: mean scores over the splits both systems ran,
splits won, and the mean loss with the metric's direction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmarks.quality_splits import compare, growth, main, split_records


def _run(seed: int, budget: float, metric: str, **scores: float | None) -> dict[str, Any]:
    systems = {s: {"score": v} for s, v in scores.items() if v is not None}
    record = {"dataset": "d", "metric": metric, "systems": systems, "winner": None}
    return {"seed": seed, "runs": [{"budget_s": budget, "datasets": [record]}]}


def _store(tmp_path: Path, runs: dict[str, dict[str, Any]]) -> Path:
    for name, data in runs.items():
        (tmp_path / name).write_text(json.dumps(data))
    return tmp_path


def test_rmse_means_over_the_splits_both_systems_ran(tmp_path: Path) -> None:
    results = _store(
        tmp_path,
        {
            "quality.json": _run(0, 60.0, "rmse", tabstream=2.0, autogluon=2.2),
            "quality_seed1.json": _run(1, 60.0, "rmse", tabstream=3.0, autogluon=2.6),
            "quality_seed2.json": _run(2, 60.0, "rmse", tabstream=9.0, autogluon=None),
        },
    )
    c = compare(split_records(results, 60.0), "d", "autogluon")
    assert c["seeds"] == [0, 1]  # seed 2 has no AutoGluon score
    assert (c["tabstream"], c["autogluon"], c["ge"]) == pytest.approx((2.5, 2.4, 1))
    assert c["loss_pct"] == pytest.approx(100 * 0.1 / 2.4)


def test_auc_is_better_higher_and_other_budgets_are_ignored(tmp_path: Path) -> None:
    results = _store(
        tmp_path,
        {
            "quality.json": _run(0, 60.0, "auc", tabstream=0.9, flaml=0.8),
            "quality_300.json": _run(1, 300.0, "auc", tabstream=0.1, flaml=0.9),
        },
    )
    c = compare(split_records(results, 60.0), "d", "flaml")
    assert c["seeds"] == [0] and c["ge"] == 1
    assert c["loss_pct"] == pytest.approx(-12.5)


def test_the_report_names_every_dataset_and_fails_without_runs(tmp_path: Path) -> None:
    assert main(["--results", str(tmp_path)]) == 1
    _store(tmp_path, {"quality.json": _run(0, 60.0, "rmse", tabstream=2.0, autogluon=2.2)})
    assert main(["--results", str(tmp_path)]) == 0
    report = (tmp_path / "quality_splits.md").read_text()
    assert "| d | rmse | 1 | 2.00000 | 2.20000 | 1 of 1 | -9.091 % |" in report
    assert "on 1 of 1 datasets" in report
    assert "## Budget 60 s (seeds [0] stored)" in report
    assert "## Budget 300 s" not in report  # none stored at 300 s


def test_the_larger_budget_is_compared_with_the_smaller_on_the_splits_both_ran(
    tmp_path: Path,
) -> None:
    results = _store(
        tmp_path,
        {
            "quality.json": _run(0, 60.0, "rmse", tabstream=2.0, autogluon=2.2),
            "quality_seed1.json": _run(1, 60.0, "rmse", tabstream=3.0),
            "quality_300.json": _run(0, 300.0, "rmse", tabstream=2.1, autogluon=2.0),
            "quality_300_seed1.json": _run(1, 300.0, "rmse", tabstream=2.5),
            "quality_300_seed2.json": _run(2, 300.0, "rmse", tabstream=9.0),
        },
    )
    c = growth(split_records(results, 60.0), split_records(results, 300.0), "d")
    assert c["seeds"] == [0, 1]  # seed 2 ran at 300 s only
    assert (c["small"], c["large"], c["ge"]) == pytest.approx((2.5, 2.3, 1))
    assert c["loss_pct"] == pytest.approx(-100 * 0.2 / 2.5)
    assert main(["--results", str(results)]) == 0
    report = (results / "quality_splits.md").read_text()
    assert "## tabstream: 300 s vs 60 s" in report
    assert "| d | rmse | 2 | 2.50000 | 2.30000 | 1 of 2 | -8.000 % |" in report
    assert "tabstream at 300 s >= at 60 s on 1 of 2 dataset splits" in report


def test_one_budget_alone_has_no_budget_comparison(tmp_path: Path) -> None:
    _store(tmp_path, {"quality.json": _run(0, 60.0, "auc", tabstream=0.9, flaml=0.8)})
    assert main(["--results", str(tmp_path)]) == 0
    assert "vs 60 s" not in (tmp_path / "quality_splits.md").read_text()
