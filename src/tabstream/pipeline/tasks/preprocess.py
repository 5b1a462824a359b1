"""Per-fold preprocessing of an arrow feature table into a ``FeatureMatrix``.

Columns: numbers -> numeric; bool, strings and dictionaries -> categorical; integer columns named
in ``categorical`` with at most 10 distinct values -> categorical; timestamps -> epoch seconds,
hour, day of week, day of month and month (dates: the same without the hour). Columns that are all
missing or constant (one value, no missing cells) are dropped, as are unsupported types.
Non-finite numbers count as missing.

``tree``: numerics as float32 with NaN; categoricals as ordinal codes (unseen/missing -> NaN).
``nn``: numerics median-imputed and standardised, plus a ``<name>__missing`` indicator where the
training fold had missing cells; categoricals one-hot (cardinality <= 32) or a scaled code
``(code + 1) / K``; unseen/missing categories -> all zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.types import FeatureMatrix, PreprocessingKind

MAX_CAT_INT_DISTINCT = 10
MAX_ONE_HOT = 32
_UNIT_SECONDS = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}
CatType = Literal["string", "bool", "int"]


@dataclass
class _Column:
    """One derived feature: where it comes from and the statistics fitted on the training fold."""

    name: str
    source: str
    derive: str  # "value" | "epoch" | "hour" | "dow" | "day" | "month" (numeric) | "cat"
    cat_type: CatType | None = None
    categories: list[Any] = field(default_factory=list)
    median: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    has_missing: bool = False


class Preprocessor:
    """Fit on a training fold, then transform any fold the same way; state is JSON-safe."""

    def __init__(self, kind: PreprocessingKind, categorical: set[str] | None = None) -> None:
        self.kind = kind
        self.categorical = set(categorical or ())
        self.columns: list[_Column] = []
        self.dropped: dict[str, str] = {}
        self.fitted = False

    def fit(self, features: pa.Table) -> Self:
        """Learn column kinds, categories and statistics from ``features`` only."""
        self.columns, self.dropped = [], {}
        for name in features.column_names:
            self._fit_source(name, features.column(name))
        self.fitted = True
        return self

    def transform(self, features: pa.Table) -> FeatureMatrix:
        """Encode ``features`` with the fitted state."""
        if not self.fitted:
            raise RuntimeError("Preprocessor.transform called before fit")
        blocks: list[np.ndarray] = []
        names: list[str] = []
        is_cat: list[bool] = []
        cards: list[int] = []
        for col in self.columns:
            if col.source not in features.column_names:
                raise ValueError(f"feature column {col.source!r} is missing")
            block, block_names, cat = self._encode(col, features.column(col.source))
            blocks.append(block)
            names += block_names
            is_cat += [cat] * len(block_names)
            cards += [len(col.categories)] if cat else []
        n = features.num_rows
        values = np.hstack(blocks).astype(np.float32) if blocks else np.zeros((n, 0), np.float32)
        return FeatureMatrix(values, tuple(names), tuple(is_cat), tuple(cards))

    def fit_transform(self, features: pa.Table) -> FeatureMatrix:
        """``fit`` then ``transform`` on the same table."""
        return self.fit(features).transform(features)

    def state(self) -> dict[str, Any]:
        """JSON-safe state: kind, declared categoricals, fitted columns, dropped columns."""
        return {
            "kind": self.kind,
            "categorical": sorted(self.categorical),
            "columns": [vars(c).copy() for c in self.columns],
            "dropped": dict(self.dropped),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        """Rebuild a fitted preprocessor from ``state()`` output."""
        pre = cls(state["kind"], set(state.get("categorical", ())))
        pre.columns = [_Column(**c) for c in state["columns"]]
        pre.dropped = dict(state.get("dropped", {}))
        pre.fitted = True
        return pre

    def _fit_source(self, name: str, arr: pa.ChunkedArray) -> None:
        typ = _plain_type(arr.type)
        if arr.null_count == len(arr):
            self.dropped[name] = "all missing"
            return
        if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
            parts = ["epoch", "dow", "day", "month"]
            parts[1:1] = ["hour"] if pa.types.is_timestamp(typ) else []
            for part in parts:
                self._fit_numeric(_Column(f"{name}__{part}", name, part), arr)
            return
        cat_type = self._cat_type(name, arr, typ)
        if cat_type is not None:
            self._fit_categorical(_Column(name, name, "cat", cat_type), arr)
        elif _is_numeric(typ):
            self._fit_numeric(_Column(name, name, "value"), arr)
        else:
            self.dropped[name] = f"unsupported type {typ}"

    def _cat_type(self, name: str, arr: pa.ChunkedArray, typ: pa.DataType) -> CatType | None:
        if pa.types.is_boolean(typ):
            return "bool"
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            return "string"
        declared = name in self.categorical and pa.types.is_integer(typ)
        if declared and pc.count_distinct(arr).as_py() <= MAX_CAT_INT_DISTINCT:
            return "int"
        return None

    def _fit_numeric(self, col: _Column, arr: pa.ChunkedArray) -> None:
        x = _numeric(col.derive, arr)
        ok = x[np.isfinite(x)]
        if ok.size == 0 or (ok.size == x.size and ok.min() == ok.max()):
            self.dropped[col.name] = "all missing" if ok.size == 0 else "constant"
            return
        std = float(ok.std())
        col.median, col.mean = float(np.median(ok)), float(ok.mean())
        col.std = std if std > 1e-12 else 1.0
        col.has_missing = bool(ok.size < x.size)
        self.columns.append(col)

    def _fit_categorical(self, col: _Column, arr: pa.ChunkedArray) -> None:
        values = pc.unique(_cat_values(arr, col.cat_type)).drop_null().to_pylist()
        if len(values) == 1 and arr.null_count == 0:
            self.dropped[col.name] = "constant"
            return
        col.categories = sorted(values)
        col.has_missing = arr.null_count > 0
        self.columns.append(col)

    def _encode(self, col: _Column, arr: pa.ChunkedArray) -> tuple[np.ndarray, list[str], bool]:
        if col.derive != "cat":
            x = _numeric(col.derive, arr)
            return self._encode_numeric(col, x)
        value_set = pa.array(col.categories, _CAT_ARROW[col.cat_type or "string"])
        idx = pc.index_in(_cat_values(arr, col.cat_type), value_set=value_set)
        codes = np.asarray(pc.fill_null(idx, -1).to_numpy(), dtype=np.int64)
        return self._encode_categorical(col, codes)

    def _encode_numeric(self, col: _Column, x: np.ndarray) -> tuple[np.ndarray, list[str], bool]:
        missing = ~np.isfinite(x)
        if self.kind == "tree":
            return x[:, None], [col.name], False
        z = (np.where(missing, col.median, x) - col.mean) / col.std
        if not col.has_missing:
            return z[:, None], [col.name], False
        return np.column_stack([z, missing]), [col.name, f"{col.name}__missing"], False

    def _encode_categorical(
        self, col: _Column, codes: np.ndarray
    ) -> tuple[np.ndarray, list[str], bool]:
        k = len(col.categories)
        if self.kind == "tree":
            return np.where(codes < 0, np.nan, codes)[:, None], [col.name], True
        if k > MAX_ONE_HOT:
            return ((codes + 1) / k)[:, None], [col.name], False
        out = np.zeros((codes.size, k), dtype=np.float32)
        rows = np.flatnonzero(codes >= 0)
        out[rows, codes[rows]] = 1.0
        return out, [f"{col.name}={c}" for c in col.categories], False


_CAT_ARROW: dict[str, pa.DataType] = {"string": pa.string(), "bool": pa.bool_(), "int": pa.int64()}
_DATE_PARTS = {"hour": pc.hour, "dow": pc.day_of_week, "day": pc.day, "month": pc.month}


def _plain_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def _is_numeric(typ: pa.DataType) -> bool:
    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ))


def _cat_values(arr: pa.ChunkedArray, cat_type: CatType | None) -> pa.ChunkedArray:
    return arr.cast(_CAT_ARROW[cat_type or "string"])


def _numeric(derive: str, arr: pa.ChunkedArray) -> np.ndarray:
    """Float64 values of a numeric column or a timestamp/date part; missing -> NaN."""
    typ = _plain_type(arr.type)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(typ)
    if derive == "epoch":
        out = _epoch_seconds(arr, typ)
    elif derive in _DATE_PARTS:
        out = _DATE_PARTS[derive](arr).cast(pa.float64())
    else:
        out = arr.cast(pa.float64())
    x = np.asarray(pc.fill_null(out, np.nan).to_numpy(), dtype=np.float64)
    return np.where(np.isfinite(x), x, np.nan)


def _epoch_seconds(arr: pa.ChunkedArray, typ: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_timestamp(typ):
        ints = arr.cast(pa.timestamp(typ.unit)).cast(pa.int64()).cast(pa.float64(), safe=False)
        return pc.divide(ints, _UNIT_SECONDS[typ.unit])
    days = arr.cast(pa.date32()).cast(pa.int32()).cast(pa.float64())
    return pc.multiply(days, 86400.0)
