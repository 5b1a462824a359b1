"""Distillation: a teacher labels synthetic rows; students train on real plus synthetic rows.

How it plugs into the search (``train.run`` calls ``augment`` when the request names a teacher):

- For every split, ``synth.synthesize`` draws synthetic rows from that split's *training* rows
  only; they join that split's training indices and never a validation fold, so every score
  (true-label metrics, fidelity) is on held-out real rows.
- Real rows keep their true labels. Synthetic rows get the teacher's (``teacher_labels``): the
  value (regression); for classification a label drawn from the teacher's probabilities
  (``labels="sample"``, the default: an unbiased Monte-Carlo estimate of the soft-target loss
  that every family can train on) or its argmax (``labels="argmax"``, hard labels).
- The teacher also labels the real rows once; ``fidelity`` compares out-of-fold student
  predictions with them: ``fidelity_agreement`` (same argmax) or ``fidelity_r2`` (R^2 to the
  teacher's values). ``train.run`` adds it to the rows' best metrics (leaderboard,
  ModelRegistered).

Synthetic rows per split and the labelling: ``options.DistillOptions`` (the operator's
``TABSTREAM_DISTILL_*`` settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tabstream.pipeline.distill.synth import synthesize
from tabstream.pipeline.distill.teacher_labels import label
from tabstream.pipeline.options import DistillOptions
from tabstream.pipeline.types import ProblemSpec, Split, Teacher


@dataclass(frozen=True)
class Augmented:
    """Real + synthetic training data, the splits over it, and the teacher on real rows."""

    features: pa.Table
    y: np.ndarray
    splits: list[Split]
    teacher_real: np.ndarray
    notes: list[str] = field(default_factory=list)


def augment(
    features: pa.Table,
    y: np.ndarray,
    spec: ProblemSpec,
    splits: list[Split],
    teacher: Teacher,
    config: DistillOptions,
    seed: int,
) -> Augmented:
    """Synthesize per split, label with ``teacher``, and extend the splits' training rows."""
    rng = np.random.default_rng(seed)
    teacher_real = label(teacher, features, spec)
    tables, labels, new_splits = [features], [y], []
    offset = features.num_rows
    for tr, va in splits:
        m = config.n_synthetic(len(tr))
        syn = synthesize(
            features.take(pa.array(tr)),
            y[tr],
            spec,
            m,
            rng,
            marginal_fraction=config.marginal_fraction,
        )
        tables.append(syn)
        labels.append(_targets(label(teacher, syn, spec), spec, config, rng))
        new_splits.append((np.concatenate([tr, offset + np.arange(syn.num_rows)]), va))
        offset += syn.num_rows
    total = offset - features.num_rows
    note = (
        f"distillation: {total} synthetic rows over {len(splits)} split(s), "
        f"teacher labels ({config.labels if spec.is_classification else 'values'})"
    )
    table = pa.concat_tables(tables).combine_chunks()
    return Augmented(table, np.concatenate(labels), new_splits, teacher_real, [note])


def _targets(
    raw: np.ndarray, spec: ProblemSpec, config: DistillOptions, rng: np.random.Generator
) -> np.ndarray:
    if not spec.is_classification:
        return np.asarray(raw, dtype=np.float64)
    if len(raw) == 0:
        return np.zeros(0, np.int64)
    if config.labels == "argmax":
        return np.asarray(np.argmax(raw, axis=1), dtype=np.int64)
    cum = np.cumsum(raw, axis=1)
    draws = rng.random(len(raw))[:, None] * cum[:, -1:]
    return np.asarray(np.minimum((draws > cum).sum(axis=1), raw.shape[1] - 1), dtype=np.int64)


def fidelity(spec: ProblemSpec, student: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
    """Agreement (classification) or R^2 (regression) of student to teacher predictions."""
    if len(teacher) == 0:
        return {}
    if spec.is_classification:
        agree = np.argmax(student, axis=1) == np.argmax(teacher, axis=1)
        return {"fidelity_agreement": float(np.mean(agree))}
    sst = float(np.sum((teacher - teacher.mean()) ** 2))
    sse = float(np.sum((student - teacher) ** 2))
    return {"fidelity_r2": 1.0 - sse / sst if sst > 0 else float(sse == 0)}
