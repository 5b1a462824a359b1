"""The ``ModelServer`` port: predict with a registered model in the teacher protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ModelRefused(ValueError):
    """The model's stored bytes failed their integrity check: it is never served."""


class SamplesRefused(ValueError):
    """The samples cannot be read by the model (missing features, bad cells); names the field."""


class ModelServer(Protocol):
    """Predicts with registered models.

    ``predict`` loads the model ``model_id`` whose bundle digest is ``sha256`` (verifying it)
    and answers ``{predictions, probabilities, classes}``. It raises ``ModelRefused`` for a
    model that fails its check, ``SamplesRefused`` for unreadable samples and ``OSError`` when
    the artifact store cannot be read. It blocks: call it from a worker thread.
    """

    max_rows: int
    """The most samples one call may carry."""

    def predict(
        self, model_id: str, sha256: str, samples: Sequence[Sequence[Any]], names: Sequence[str]
    ) -> dict[str, Any]:
        """The teacher-protocol response of the model for ``samples`` (see the class)."""
        ...

    def cached(self, model_id: str) -> bool:
        """Whether a verified copy of ``model_id`` is kept in memory."""
        ...
