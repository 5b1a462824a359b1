"""TabM's training loop (mini-batch AdamW, early stopping, a wall-clock cap) and its tensors."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from tabm import TabM
from torch import nn

from tabstream.pipeline.search.budget import check_time, fit_limit_s, stopped_at_limit
from tabstream.pipeline.types import FeatureMatrix

PREDICT_BATCH = 4096


def _loss(out: torch.Tensor, y: torch.Tensor, classification: bool) -> torch.Tensor:
    """Mean over the k heads of the per-head loss; out is (batch, k, d_out)."""
    k = out.shape[1]
    if classification:
        return nn.functional.cross_entropy(out.flatten(0, 1), y.repeat_interleave(k))
    return nn.functional.mse_loss(out[..., 0], y[:, None].expand(-1, k))


@torch.inference_mode()
def predict_mean(model: TabM, x: torch.Tensor, classification: bool) -> torch.Tensor:
    """Ensemble prediction: mean of per-head probabilities (or values)."""
    model.eval()
    parts = []
    for chunk in torch.split(x, PREDICT_BATCH):
        out = model(chunk).float()
        parts.append(out.softmax(-1).mean(1) if classification else out[..., 0].mean(1))
    return torch.cat(parts)


def _val_loss(pred: torch.Tensor, y: torch.Tensor, classification: bool) -> float:
    if classification:
        return float(nn.functional.nll_loss(pred.clamp_min(1e-12).log(), y))
    return float(nn.functional.mse_loss(pred, y))


class Trainer:
    """One training run: mini-batch AdamW, early stopping on validation loss, and a stop at
    ``params["time_limit_s"]`` seconds or the search's ``budget.fit_limit_s``, whichever is
    sooner (checked after every batch; neither: no limit)."""

    def __init__(self, model: TabM, params: Mapping[str, Any], cls: bool, seed: int) -> None:
        self.model, self.params, self.cls = model, params, cls
        self.opt = torch.optim.AdamW(
            model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
        )
        self.gen = torch.Generator().manual_seed(seed)
        limits = [float(x) for x in (params.get("time_limit_s"), fit_limit_s()) if x is not None]
        self.deadline = time.monotonic() + min(limits, default=math.inf)

    def epoch(self, x: torch.Tensor, y: torch.Tensor) -> bool:
        """One pass over shuffled mini-batches; False when the time limit cut it short."""
        self.model.train()
        bs = int(self.params["batch_size"])
        order = torch.randperm(len(x), generator=self.gen).to(x.device)
        for idx in torch.split(order, bs):
            check_time()
            self.opt.zero_grad(set_to_none=True)
            torch.autograd.backward(_loss(self.model(x[idx]), y[idx], self.cls))
            self.opt.step()
            if time.monotonic() > self.deadline:
                stopped_at_limit()
                return False
        return True

    def run(self, data: tuple[torch.Tensor, ...]) -> int:
        """Train; returns the number of epochs of the kept weights."""
        x, y, xv, yv = data
        best, best_state, best_epoch, waited = float("inf"), None, 0, 0
        for epoch in range(1, int(self.params["max_epochs"]) + 1):
            in_time = self.epoch(x, y)
            if len(xv):
                loss = _val_loss(predict_mean(self.model, xv, self.cls), yv, self.cls)
                if loss < best:
                    best, best_epoch, waited = loss, epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                else:
                    waited += 1
            if waited > int(self.params["patience"]) or not in_time:
                break
        if best_state is None:
            return epoch
        self.model.load_state_dict(best_state)
        return best_epoch


def tensors(
    X: FeatureMatrix,
    y: np.ndarray,
    val: tuple[FeatureMatrix, np.ndarray] | None,
    keep: list[int],
    y_stats: tuple[float, float],
    cls: bool,
    dev: torch.device,
) -> tuple[torch.Tensor, ...]:
    """(x, y, x_val, y_val) on ``dev``; the validation pair is empty when ``val`` is None."""

    def feats(m: FeatureMatrix | None) -> torch.Tensor:
        vals = m.values[:, keep] if m is not None else np.zeros((0, len(keep)))
        return torch.as_tensor(vals, dtype=torch.float32, device=dev)

    def target(t: np.ndarray | None) -> torch.Tensor:
        t = np.zeros(0) if t is None else t
        if cls:
            return torch.as_tensor(t, dtype=torch.long, device=dev)
        return torch.as_tensor((t - y_stats[0]) / y_stats[1], dtype=torch.float32, device=dev)

    x_val, y_val = val if val is not None else (None, None)
    return feats(X), target(y), feats(x_val), target(y_val)
