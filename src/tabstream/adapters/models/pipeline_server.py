"""``ModelServer`` over the pipeline's bundles: a memory-bounded LRU of verified models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabstream.adapters.artifacts.port import ArtifactStore
from tabstream.adapters.models.port import ModelRefused, SamplesRefused
from tabstream.pipeline.finish.bundle import BundleIntegrityError
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.predict import ModelCache, SampleError, predict_samples


class PipelineModelServer:
    """Loads bundles through the artifact store (sha256 checked) with the family ``options``,
    keeps them in a ``ModelCache`` of ``cache_bytes``, and predicts with the pipeline."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        cache_bytes: int,
        max_rows: int,
        options: FamilyOptions | None = None,
    ) -> None:
        self.cache = ModelCache(artifacts, cache_bytes, options)
        self.max_rows = max_rows

    def predict(
        self, model_id: str, sha256: str, samples: Sequence[Sequence[Any]], names: Sequence[str]
    ) -> dict[str, Any]:
        """See ``ModelServer.predict``."""
        try:
            return dict(predict_samples(self.cache.get(model_id, sha256), samples, names))
        except BundleIntegrityError as exc:
            raise ModelRefused(str(exc)) from None
        except SampleError as exc:
            raise SamplesRefused(str(exc)) from None

    def cached(self, model_id: str) -> bool:
        """See ``ModelServer.cached``."""
        return model_id in self.cache
