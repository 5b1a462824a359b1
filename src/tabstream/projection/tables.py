"""The projection store's tables: their schema, upserts, and the row of each aggregate.

Job state is stored as canonical JSON (it is reloaded and mutated, so its text must not
depend on the order keys were added in); trials, datasets and models, built afresh by the fold
from one record, as compact JSON in insertion order. The digest hashes these texts, so they
must stay byte for byte what they are.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic_core import to_json

from tabstream.common.canonical_json import canonical_json
from tabstream.projection.fold_job import Json

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, status TEXT NOT NULL, dataset_id TEXT,
    created_at TEXT NOT NULL, idempotency_key TEXT, state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_idempotency ON jobs (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, created_at DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (tenant, status, created_at DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS jobs_by_dataset
    ON jobs (tenant, dataset_id, created_at DESC, job_id DESC);
CREATE TABLE IF NOT EXISTS trials (
    job_id TEXT NOT NULL, row INTEGER NOT NULL, trial INTEGER NOT NULL, tenant TEXT NOT NULL,
    family TEXT NOT NULL, state TEXT NOT NULL, score REAL, seconds REAL NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (job_id, row, trial)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, created_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS datasets_by_tenant
    ON datasets (tenant, created_at DESC, dataset_id DESC);
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, job_id TEXT NOT NULL,
    created_at TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS models_by_tenant ON models (tenant, created_at DESC, model_id DESC);
CREATE INDEX IF NOT EXISTS models_by_job ON models (job_id);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS upload_completions (
    upload_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
"""
UPSERT_JOB = "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)"
UPSERT_TRIAL = "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
UPSERT_DATASET = "INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?)"
UPSERT_MODEL = "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?)"
UPSERT_UPLOAD = "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?)"
INSERT_FIRST_COMPLETION = "INSERT OR IGNORE INTO upload_completions VALUES (?, ?, ?)"
"""An upload URL is single-use: the first completion folded stays."""
UPSERT_OFFSET = (
    "INSERT INTO offsets VALUES (?, ?, ?) ON CONFLICT (topic, partition)"
    " DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)"
)
DIGEST_TABLES = (
    ("jobs", "job_id"),
    ("trials", "job_id, row, trial"),
    ("datasets", "dataset_id"),
    ("models", "model_id"),
    ("uploads", "upload_id"),
    ("upload_completions", "upload_id"),
    ("offsets", "topic, partition"),
)
"""Every table with its primary key, in the digest's order."""


def job_row(job: Json) -> tuple[Any, ...]:
    """The ``jobs`` row of a job's state (the state itself as canonical JSON)."""
    return (
        job["job_id"],
        job["tenant"],
        job["status"],
        job["dataset_id"],
        job["created_at"],
        job["idempotency_key"],
        dumps(job),
    )


def trial_row(t: Json) -> tuple[Any, ...]:
    """The ``trials`` row of a trial."""
    return (
        t["job_id"],
        t["row"],
        t["trial"],
        t["tenant"],
        t["family"],
        t["state"],
        t["score"],
        t["seconds"],
        dumps_built(t),
    )


def dataset_row(d: Json) -> tuple[Any, ...]:
    """The ``datasets`` row of a dataset."""
    return (d["dataset_id"], d["tenant"], d["created_at"], dumps_built(d))


def model_row(m: Json) -> tuple[Any, ...]:
    """The ``models`` row of a model."""
    return (m["model_id"], m["tenant"], m["job_id"], m["created_at"], dumps_built(m))


def upload_row(u: Json) -> tuple[Any, ...]:
    """The ``uploads`` or ``upload_completions`` row of an upload or its completion."""
    return (u["upload_id"], u["tenant"], dumps_built(u))


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace; ``canonical_json``): for state that is
    reloaded and mutated, so its text must not depend on the order keys were added in."""
    return canonical_json(value)


def dumps_built(value: Any) -> str:
    """Compact JSON in insertion order: for rows built afresh by the fold from one record
    (trials, datasets, models), whose key order is already a function of the log alone.

    orjson writes the same bytes as ``pydantic_core.to_json`` (shortest round-trip floats,
    UTF-8, no escaping beyond JSON's) about 3x faster; integers past 64 bits, which orjson
    refuses, go to ``to_json`` so the text stays the same for every value."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return to_json(value).decode()
