"""Model bundles: preprocessing state + family files + a manifest, verified by sha256 on load.

Layout under ``models/<model_id>/`` in the artifact store::

    manifest.json                 bundle version, task, input features, metrics, members, digests
    m<i>/f<j>/preprocess.json     Preprocessor.state() of fold model j of member i
    m<i>/f<j>/file<k>             the k-th file of FittedModel.to_files() (name in the manifest)
    stacker.safetensors           the stacker's layers (stacked ensembles only)

Forecasting and sequence models also record their feature ``recipe`` in the manifest:
``LoadedModel`` rebuilds the features from raw rows with it (``tasks.recipes.build_inputs``) and
predicts one value per id (ids ascending; ``predict_table`` returns them with the keys).

A single model is one member with one fold model and weight 1. An ensemble member is the fold
models of one trial, usually its K fold models plus its refit on all rows: it predicts the
weighted mean of its fold models (``fold_weights``, uniform when absent: bundle version 1), and
members are weighted and pooled as ``pooling`` says (``ensemble.pool``: log-probabilities for
classification since bundle version 3; linear, the weighted mean, before), or, ``combiner``
"stack" (version 4; no ``combiner`` means "pool"), by ``finish.stacker`` (weights unused). The
bundle digest is the sha256 of the manifest bytes, which list every file's sha256. No pickle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import numpy as np
import pyarrow as pa

from tabstream.pipeline.families import Families
from tabstream.pipeline.finish.ensemble import Pooling, pool
from tabstream.pipeline.finish.stacker import Stacker
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.tasks.preprocess import Preprocessor
from tabstream.pipeline.tasks.recipes import build_inputs
from tabstream.pipeline.types import Artifacts, FittedModel, ProblemSpec

BUNDLE_VERSION = 3
STACKED_VERSION = 4  # stacked bundles only: readers from before stacking refuse them
READABLE_VERSIONS = (1, 2, 3, 4)
MANIFEST = "manifest.json"
STACKER = "stacker.safetensors"


class BundleIntegrityError(ValueError):
    """A bundle whose bytes do not match the recorded sha256 digests."""


@dataclass(frozen=True)
class FoldModel:
    """One fitted model with the preprocessing state it was trained behind."""

    preprocessor: dict[str, Any]
    files: dict[str, bytes]


@dataclass(frozen=True)
class Member:
    """Fold models of one configuration (their weighted mean), with its ensemble weight.

    ``fold_weights``: one per fold model, summing to 1; None means the plain mean.
    """

    family: str
    folds: list[FoldModel]
    weight: float = 1.0
    row: int | None = None
    trial: int | None = None
    fold_weights: list[float] | None = None


@dataclass(frozen=True)
class Bundle:
    """Everything needed to rebuild a trained model (single or ensemble)."""

    kind: Literal["single", "ensemble"]
    spec: ProblemSpec
    features: list[tuple[str, str]]  # input column name, arrow type string
    members: list[Member]
    metrics: dict[str, float] = field(default_factory=dict)
    recipe: dict[str, Any] | None = None  # forecasting/sequence feature recipe
    pooling: Pooling = "linear"  # how members combine (``ensemble.pool``)
    stacker: Stacker | None = None  # when set, it combines the members instead of ``pool``


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def save_bundle(artifacts: Artifacts, model_id: str, bundle: Bundle) -> tuple[str, str]:
    """Write the bundle under ``models/<model_id>/``; returns (manifest URI, bundle sha256)."""
    base = f"models/{model_id}"
    members = []
    for i, member in enumerate(bundle.members):
        folds = []
        for j, fold in enumerate(member.folds):
            prefix = f"m{i}/f{j}"
            pre = _put(artifacts, base, f"{prefix}/preprocess.json", _dump(fold.preprocessor))
            files = [
                {"name": name} | _put(artifacts, base, f"{prefix}/file{k}", data)
                for k, (name, data) in enumerate(sorted(fold.files.items()))
            ]
            folds.append({"preprocessor": pre, "files": files})
        members.append(
            {
                "family": member.family,
                "weight": member.weight,
                "row": member.row,
                "trial": member.trial,
                "folds": folds,
                "fold_weights": _fold_weights(member),
            }
        )
    stacker = bundle.stacker and _put(artifacts, base, STACKER, bundle.stacker.to_bytes())
    manifest = _dump(_manifest(bundle, members) | ({"stacker": stacker} if stacker else {}))
    uri = artifacts.put_bytes(f"{base}/{MANIFEST}", manifest)
    return uri, sha256(manifest)


def _fold_weights(member: Member) -> list[float]:
    n = len(member.folds)
    weights = member.fold_weights if member.fold_weights is not None else [1.0 / n] * n
    if len(weights) != n or not np.isclose(sum(weights), 1.0):
        raise ValueError(f"fold_weights {weights} do not fit {n} fold models summing to 1")
    return [float(w) for w in weights]


def _put(artifacts: Artifacts, base: str, rel: str, data: bytes) -> dict[str, str]:
    artifacts.put_bytes(f"{base}/{rel}", data)
    return {"key": rel, "sha256": sha256(data)}


def _manifest(bundle: Bundle, members: list[dict[str, Any]]) -> dict[str, Any]:
    spec = bundle.spec
    recipe = {} if bundle.recipe is None else {"recipe": bundle.recipe}
    return recipe | {
        "bundle_version": BUNDLE_VERSION if bundle.stacker is None else STACKED_VERSION,
        "kind": bundle.kind,
        "task": {
            "kind": spec.kind,
            "label": spec.label,
            "classes": list(spec.classes) if spec.classes is not None else None,
        },
        "features": [{"name": n, "type": t} for n, t in bundle.features],
        "metrics": bundle.metrics,
        "families": sorted({m.family for m in bundle.members}),
        "members": members,
        "pooling": bundle.pooling,
        "combiner": "pool" if bundle.stacker is None else "stack",
    }


LoadedMember = tuple[float, list[tuple[Preprocessor, FittedModel]], list[float]]
"""(member weight, fold models with their preprocessing, fold weights)."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified, rebuilt bundle ready to predict on raw Arrow tables."""

    spec: ProblemSpec
    kind: str
    features: list[tuple[str, str]]
    metrics: dict[str, float]
    members: list[LoadedMember]
    recipe: dict[str, Any] | None = None
    pooling: Pooling = "linear"
    stacker: Stacker | None = None

    def predict_raw(self, table: pa.Table) -> np.ndarray:
        """Raw predictions: the members' weighted pool (``pooling``), or the stacker's
        combination when stacked, of the weighted mean of each member's fold models.

        With a recipe, ``table`` holds raw rows and there is one prediction per id (ascending);
        a forecasting series the model did not train on gets its fallback (``forecast_short``).
        """
        if self.recipe is not None:
            built = build_inputs(self.recipe, table)
            return built.with_fallback(replace(self, recipe=None).predict_raw(built.features))
        inputs = self._inputs(table)
        parts = []
        for _, folds, fold_weights in self.members:
            preds = [model.predict_raw(pre.transform(inputs)) for pre, model in folds]
            parts.append(np.average(np.stack(preds), axis=0, weights=fold_weights))
        if self.stacker is not None:
            return self.stacker.predict(parts)
        return pool(parts, [weight for weight, _, _ in self.members], self.pooling)

    def predict(self, table: pa.Table) -> np.ndarray:
        """Decoded class labels (classification) or predicted values (regression)."""
        raw = self.predict_raw(table)
        if self.spec.classes is None:
            return raw
        classes = np.asarray(self.spec.classes, dtype=object)
        return np.asarray(classes[np.argmax(raw, axis=1)])

    def predict_table(self, table: pa.Table) -> pa.Table:
        """Predictions with their keys: per id (plus cutoff and target time for forecasting)
        with a recipe, else the row number; the column ``prediction`` holds ``predict``."""
        if self.recipe is None:
            keys = pa.table({"row": pa.array(np.arange(table.num_rows))})
            return keys.append_column("prediction", pa.array(self.predict(table)))
        built = build_inputs(self.recipe, table)
        model = replace(self, recipe=None)
        predictions = built.with_fallback(model.predict(built.features))
        return built.keys.append_column("prediction", pa.array(predictions))

    def _inputs(self, table: pa.Table) -> pa.Table:
        missing = [n for n, _ in self.features if n not in table.column_names]
        if missing:
            raise ValueError(f"input table lacks feature columns {missing}")
        return table.select([n for n, _ in self.features])


def load_bundle(
    artifacts: Artifacts, model_id: str, expected_sha256: str, options: FamilyOptions | None = None
) -> LoadedModel:
    """Read, verify every digest (``BundleIntegrityError`` on mismatch) and rebuild a bundle;
    its models load with the operator's family ``options``."""
    base = f"models/{model_id}"
    raw = artifacts.get_bytes(f"{base}/{MANIFEST}")
    if sha256(raw) != expected_sha256:
        raise BundleIntegrityError(f"manifest of model {model_id} does not match its sha256")
    manifest = json.loads(raw)
    if manifest.get("bundle_version") not in READABLE_VERSIONS:
        raise BundleIntegrityError(f"unsupported bundle version {manifest.get('bundle_version')}")
    task = manifest["task"]
    classes = tuple(task["classes"]) if task["classes"] is not None else None
    spec = ProblemSpec(task["kind"], task["label"], classes)
    pooling = _pooling(manifest)
    families = Families(options)
    members = [_load_member(artifacts, base, m, spec, families) for m in manifest["members"]]
    features = [(f["name"], f["type"]) for f in manifest["features"]]
    stacker = _stacker(artifacts, base, manifest, spec, pooling)
    metrics, recipe = dict(manifest["metrics"]), manifest.get("recipe")
    return LoadedModel(spec, manifest["kind"], features, metrics, members, recipe, pooling, stacker)


def _pooling(manifest: dict[str, Any]) -> Pooling:
    """Bundles before version 3 pooled linearly."""
    pooling = manifest.get("pooling", "linear")
    if pooling not in ("linear", "log"):
        raise BundleIntegrityError(f"unknown pooling {pooling!r}")
    return cast(Pooling, pooling)


def _stacker(
    artifacts: Artifacts, base: str, manifest: dict[str, Any], spec: ProblemSpec, pooling: Pooling
) -> Stacker | None:
    """The stacker of a stacked bundle (``combiner`` "stack"), verified; None when pooled."""
    combiner = manifest.get("combiner", "pool")
    if combiner == "pool":
        return None
    if combiner != "stack" or "stacker" not in manifest:
        raise BundleIntegrityError(f"unknown combiner {combiner!r} or no stacker file")
    data = _verified(artifacts, base, manifest["stacker"])
    try:
        return Stacker.from_bytes(data, pooling, len(manifest["members"]), spec.n_classes)
    except ValueError as exc:
        raise BundleIntegrityError(f"{base}/{STACKER}: {exc}") from exc


def _load_member(
    artifacts: Artifacts, base: str, member: dict[str, Any], spec: ProblemSpec, families: Families
) -> LoadedMember:
    family = member["family"]
    folds = [_load_fold(artifacts, base, families, family, f, spec) for f in member["folds"]]
    weights = member.get("fold_weights") or [1.0 / len(folds)] * len(folds)
    if len(weights) != len(folds):
        raise BundleIntegrityError(f"{base}: fold_weights do not match the fold models")
    return float(member["weight"]), folds, [float(w) for w in weights]


def _verified(artifacts: Artifacts, base: str, entry: dict[str, str]) -> bytes:
    data = artifacts.get_bytes(f"{base}/{entry['key']}")
    if sha256(data) != entry["sha256"]:
        raise BundleIntegrityError(f"{base}/{entry['key']} does not match its sha256")
    return data


def _load_fold(
    artifacts: Artifacts,
    base: str,
    families: Families,
    family: str,
    fold: dict[str, Any],
    spec: ProblemSpec,
) -> tuple[Preprocessor, FittedModel]:
    state = json.loads(_verified(artifacts, base, fold["preprocessor"]))
    files = {f["name"]: _verified(artifacts, base, f) for f in fold["files"]}
    return Preprocessor.from_state(state), families[family].load(files, spec)
