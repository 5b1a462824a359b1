"""Synthetic rows for distillation, generated from a training fold only.

Two generators, mixed by ``marginal_fraction``:

- mixup/perturbation within a class (classification) or a label-quantile bin (regression):
  an anchor row and a partner row of the same group; numeric cells are interpolated
  ``a + lam * (b - a)`` plus Gaussian noise (``noise`` x the column's std), clipped to the
  column's range and rounded for integer columns; categorical, boolean, temporal and other
  cells are copied from the anchor or the partner (probability ``lam``), so only levels that
  exist in the data appear; a missing cell stays missing when both rows lack it.
- marginal resampling: every column sampled independently from its own values.

Column types are preserved exactly (the output has the input's schema).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabstream.pipeline.types import ProblemSpec

N_BINS = 10


def synthesize(
    features: pa.Table,
    y: np.ndarray,
    spec: ProblemSpec,
    n: int,
    rng: np.random.Generator,
    *,
    marginal_fraction: float = 0.2,
    noise: float = 0.05,
    alpha: float = 0.4,
) -> pa.Table:
    """``n`` synthetic rows with the schema of ``features`` (labels are the teacher's job)."""
    if n <= 0 or features.num_rows == 0:
        return features.slice(0, 0)
    n_marginal = round(n * marginal_fraction)
    mixed = _mixup(features, _groups(y, spec), n - n_marginal, rng, noise, alpha)
    marginal = _marginal(features, n_marginal, rng)
    return pa.concat_tables([mixed, marginal]).combine_chunks()


def _groups(y: np.ndarray, spec: ProblemSpec) -> np.ndarray:
    if spec.is_classification:
        return np.asarray(y, dtype=np.int64)
    edges = np.unique(np.quantile(y, np.linspace(0, 1, N_BINS + 1)[1:-1]))
    return np.searchsorted(edges, y)


def _pairs(groups: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    anchors = rng.integers(0, len(groups), n)
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    lo = np.searchsorted(sorted_groups, groups[anchors], side="left")
    hi = np.searchsorted(sorted_groups, groups[anchors], side="right")
    partners = order[lo + (rng.random(n) * (hi - lo)).astype(np.int64)]
    return anchors, partners


def _mixup(
    features: pa.Table,
    groups: np.ndarray,
    n: int,
    rng: np.random.Generator,
    noise: float,
    alpha: float,
) -> pa.Table:
    a, b = _pairs(groups, n, rng)
    lam = rng.beta(alpha, alpha, n)
    columns = {}
    for name in features.column_names:
        col = features.column(name).combine_chunks()
        if _is_numeric(col.type):
            columns[name] = _mix_numeric(col, a, b, lam, rng, noise)
        else:
            columns[name] = col.take(pa.array(np.where(rng.random(n) < lam, b, a)))
    return pa.table(columns, schema=features.schema)


def _mix_numeric(
    col: pa.Array,
    a: np.ndarray,
    b: np.ndarray,
    lam: np.ndarray,
    rng: np.random.Generator,
    noise: float,
) -> pa.Array:
    x = np.asarray(pc.fill_null(col.cast(pa.float64()), np.nan).to_numpy(), dtype=np.float64)
    x = np.where(np.isfinite(x), x, np.nan)
    xa, xb = x[a], x[b]
    xa, xb = np.where(np.isnan(xa), xb, xa), np.where(np.isnan(xb), xa, xb)
    out = xa + lam * (xb - xa)
    ok = x[np.isfinite(x)]
    if ok.size:
        out = np.clip(out + rng.normal(0.0, noise * float(ok.std()), len(out)), ok.min(), ok.max())
    if pa.types.is_integer(col.type):
        out = np.round(out)
    return pa.array(out, mask=np.isnan(out)).cast(col.type, safe=False)


def _marginal(features: pa.Table, n: int, rng: np.random.Generator) -> pa.Table:
    rows = features.num_rows
    columns = {
        name: features.column(name).take(pa.array(rng.integers(0, rows, n)))
        for name in features.column_names
    }
    return pa.table(columns, schema=features.schema)


def _is_numeric(typ: pa.DataType) -> bool:
    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ))
