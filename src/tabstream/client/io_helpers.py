"""Helpers of the Python SDK: SSE parsing, table conversion and error messages (no HTTP)."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

TERMINAL_EVENTS = frozenset({"JobCompleted", "JobFailed", "JobCancelled"})
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


@dataclass
class SseEvent:
    """One server-sent event: its id, event name and decoded JSON data."""

    id: str | None
    event: str | None
    data: dict[str, Any] = field(default_factory=dict)


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Decode SSE ``lines`` (comments and heartbeats skipped) into events."""
    event_id: str | None = None
    name: str | None = None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield SseEvent(event_id, name, json.loads("\n".join(data)))
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "data":
            data.append(value)
        elif key == "id":
            event_id = value
        elif key == "event":
            name = value
    if data:
        yield SseEvent(event_id, name, json.loads("\n".join(data)))


def error_message(status: int, detail: Any) -> str:
    """A one-line message from a FastAPI error body, naming the field when it has one."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                msg = item.get("msg", "")
                parts.append(f"{loc}: {msg}" if loc else str(msg))
            else:
                parts.append(str(item))
        text = "; ".join(parts)
    elif isinstance(detail, dict):
        text = json.dumps(detail)
    else:
        text = str(detail)
    return f"HTTP {status}: {text}"


def table_bytes(data: Any) -> tuple[bytes, str]:
    """(Parquet bytes, file name) of a pandas DataFrame or pyarrow Table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue(), "data.parquet"


def upload_bytes(data: Any) -> tuple[bytes, str]:
    """(bytes, file_format) to upload: a CSV/Parquet path as it is (by its first bytes), a
    DataFrame or pyarrow Table as Parquet."""
    if isinstance(data, str | Path):
        content = Path(data).read_bytes()
        return content, "parquet" if content[:4] == b"PAR1" else "csv"
    return table_bytes(data)[0], "parquet"


def read_table(path: str | Path) -> Any:
    """A pandas DataFrame from a CSV or Parquet file (by extension; CSV otherwise)."""
    import pandas as pd

    text = str(path).lower()
    if text.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def to_samples(frame: Any, names: list[str]) -> list[list[Any]]:
    """Rows of ``frame[names]`` as JSON cells (NaN -> None, timestamps -> ISO strings)."""
    return [[_cell(v) for v in row] for row in frame[names].itertuples(index=False, name=None)]


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value.__class__.__name__ in ("NAType", "NaTType"):
        return None
    return value
