"""The quality benchmark's ``--update``: rerunning some systems of a dataset keeps the other
systems' earlier results of that dataset and the other datasets' records."""

from __future__ import annotations

from typing import Any

from benchmarks.quality import merged


def _record(dataset: str, **scores: float) -> dict[str, Any]:
    systems = {name: {"score": score} for name, score in scores.items()}
    return {"dataset": dataset, "metric": "rmse", "systems": systems, "winner": None}


def test_a_rerun_system_replaces_only_its_own_result() -> None:
    old = [_record("a", tabstream=2.0, autogluon=1.5), _record("b", tabstream=3.0)]
    fresh = {"a": _record("a", tabstream=1.0)}
    out = merged(old, ["a", "b", "c"], fresh)
    assert [r["dataset"] for r in out] == ["a", "b"]
    assert out[0]["systems"] == {"tabstream": {"score": 1.0}, "autogluon": {"score": 1.5}}
    assert out[0]["winner"] == "tabstream"  # recomputed over the merged systems
    assert out[1] == old[1]


def test_a_new_dataset_joins_in_card_order() -> None:
    out = merged([_record("b", tabstream=3.0)], ["a", "b"], {"a": _record("a", flaml=1.0)})
    assert [r["dataset"] for r in out] == ["a", "b"]
    assert out[0]["systems"] == {"flaml": {"score": 1.0}}
