"""Rebuild model inputs from raw rows with a bundle's feature recipe (forecasting, sequence)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tabstream.pipeline.tasks.forecast import forecast_inputs
from tabstream.pipeline.tasks.sequence import sequence_inputs
from tabstream.pipeline.tasks.timeseries_features import Inputs


def build_inputs(recipe: dict[str, Any], table: pa.Table) -> Inputs:
    """Features and keys for ``table`` (history rows for forecasting, event rows for sequences).

    Forecasting: one row per id, forecasting ``horizon`` steps after the id's last timestamp.
    Sequence tasks: one row per id, aggregated over the id's rows. Keys are sorted by id.
    """
    if recipe["kind"] == "forecasting":
        return forecast_inputs(recipe, table)
    if recipe["kind"] == "sequence":
        return sequence_inputs(recipe, table)
    raise ValueError(f"unknown feature recipe kind {recipe['kind']!r}")
