"""What the operator configures for the pipeline, passed down as arguments (never read here).

The pipeline reads no environment: ``tabstream.settings`` reads ``TABSTREAM_FAMILY_THREADS``,
``TABSTREAM_TABICL_CHECKPOINT``, ``TABSTREAM_TABICL_REGRESSOR_CHECKPOINT``,
``TABSTREAM_CPU_FAMILY_MAX_S`` and ``TABSTREAM_DISTILL_*``, and the composition root
(``tabstream.bootstrap``) turns them into these options for ``train.run`` (and
``FamilyOptions`` for loading models to predict). The defaults are those of unset variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

MIN_SYNTHETIC, MAX_SYNTHETIC = 500, 50_000


@dataclass(frozen=True)
class FamilyOptions:
    """How the model families run here.

    - ``threads``: CPU threads of a fit or prediction when its params name none
      (``n_threads``); None: all cores.
    - ``tabicl_checkpoint`` / ``tabicl_regressor_checkpoint``: the local TabICL weights for
      classification / regression; None: tabicl is unavailable for that task (nothing is ever
      downloaded).
    - ``cpu_family_max_s``: on a CPU, for a run without ``time_budget_s``, the most seconds one
      family's search is expected to take (``families.cpu_search_seconds``): a default family
      over it is left out, an explicitly requested one gets a note; 0: no limit.
    """

    threads: int | None = None
    tabicl_checkpoint: Path | None = None
    tabicl_regressor_checkpoint: Path | None = None
    cpu_family_max_s: float = 900.0


@dataclass(frozen=True)
class DistillOptions:
    """How many synthetic rows distillation adds per split, and how the teacher labels them
    (``distill.augment``): ``synthetic_rows`` when set, else ``ratio`` x the split's training
    rows clipped to [``MIN_SYNTHETIC``, ``MAX_SYNTHETIC``]; ``labels`` "sample" (drawn from the
    teacher's probabilities) or "argmax"."""

    synthetic_rows: int | None = None
    ratio: float = 1.0
    labels: Literal["sample", "argmax"] = "sample"
    marginal_fraction: float = 0.2

    def n_synthetic(self, n_train: int) -> int:
        """Synthetic rows for a training set of ``n_train`` rows."""
        if self.synthetic_rows is not None:
            return max(0, self.synthetic_rows)
        return int(np.clip(round(self.ratio * n_train), MIN_SYNTHETIC, MAX_SYNTHETIC))


@dataclass(frozen=True)
class PipelineOptions:
    """Everything ``train.run`` is configured with besides the request."""

    families: FamilyOptions = field(default_factory=FamilyOptions)
    distill: DistillOptions = field(default_factory=DistillOptions)
