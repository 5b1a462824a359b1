"""Teacher-protocol inputs, verified loading and the memory-bounded model cache."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tabstream.pipeline.finish.bundle import BundleIntegrityError
from tabstream.pipeline.predict import ModelCache, SampleError, predict_samples, samples_table
from tests.unit.pipeline_support import of_type, request, run_collect, store_with

FEATURES = [("n", "int64"), ("s", "string"), ("b", "bool"), ("t", "timestamp[us]"),
            ("d", "dictionary<values=string, indices=int32, ordered=0>")]  # fmt: skip


def test_samples_table_reads_cells_as_the_model_types() -> None:
    names = ["zz", "d", "t", "b", "s", "n"]
    rows = [[0, "x", "2011-01-01T05:00:00", True, 7, "3"], [None, None, None, None, None, None]]
    table = samples_table(rows, names, FEATURES)
    assert table.column_names == ["n", "s", "b", "t", "d"]
    assert table.column("n").to_pylist() == [3.0, None]
    assert table.column("s").to_pylist() == ["7", None]
    assert table.column("t").type == pa.timestamp("us") and table.column("t")[0].as_py().hour == 5
    assert table.column("b").to_pylist() == [True, None]


@pytest.mark.parametrize(
    ("rows", "names", "match"),
    [
        ([[1, "a"]], ["n", "s"], r"\['b', 't', 'd'\]"),
        ([[1]], ["n", "s", "b", "t", "d"], "samples\\[0\\] has 1 cells"),
        ([["x", "a", True, None, "q"]], ["n", "s", "b", "t", "d"], "'n'"),
        ([[1, "a", "maybe", None, "q"]], ["n", "s", "b", "t", "d"], "'b'"),
        ([[1, "a", True, "not a time", "q"]], ["n", "s", "b", "t", "d"], "'t'"),
        ([[1, 2]], ["n", "n"], "duplicates"),
    ],
)
def test_bad_samples_name_the_field(rows: list, names: list[str], match: str) -> None:
    with pytest.raises(SampleError, match=match):
        samples_table(rows, names, FEATURES)


def test_cache_verifies_evicts_by_memory_and_never_caches_failures(tmp_path: Path) -> None:
    store, ref = store_with(tmp_path, "abalone", 120)
    _, events = run_collect(store, ref, request("abalone", n_trials=1, n_splits=None))
    (reg,) = of_type(events, "ModelRegistered")
    model_id = str(reg.model_id)
    cache = ModelCache(store)
    model = cache.get(model_id, reg.sha256)
    assert cache.get(model_id, reg.sha256) is model and model_id in cache and cache.used > 0
    table = store.read_parquet(ref.key).slice(0, 3)
    names = [n for n in table.column_names if n != "rings"]
    rows = [[r[n] for n in names] for r in table.to_pylist()]
    assert len(predict_samples(model, rows, names)["predictions"]) == 3
    with pytest.raises(BundleIntegrityError):
        ModelCache(store).get(model_id, "0" * 64)
    tiny = ModelCache(store, max_bytes=1)
    assert tiny.get(model_id, reg.sha256) is not None and model_id not in tiny
    key = f"models/{model_id}/m0/f0/preprocess.json"
    store.put_bytes(key, store.get_bytes(key) + b" ")
    fresh = ModelCache(store)
    with pytest.raises(BundleIntegrityError):
        fresh.get(model_id, reg.sha256)
    assert model_id not in fresh
