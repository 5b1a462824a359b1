"""Which model families a run trains, and the notes that say why (``JobCompleted.notes``).

With ``model_types`` the request's families train as asked. Without, the default set comes from
the data's shape, the device and the time budget (``default_model_types``); the notes name the
families a time budget left out, and a Pareto sweep trains the cheapest
``DEFAULT_SWEEP_FAMILIES`` of them (its rows are weight vectors x families).

On a CPU without ``time_budget_s`` nothing bounds the run's wall clock, so each family's search
is estimated (``cpu_search_seconds``: rows x fits x trials x matrix rows per family, at the
family's measured cost) and compared with the operator's ``FamilyOptions.cpu_family_max_s``: a
default family over it is left out (the run stays deterministic: nothing is cut short by the
clock), and a family the request names explicitly is kept with a note estimating its time.
"""

from __future__ import annotations

from dataclasses import dataclass

from tabstream.pipeline.families import (
    BOUNDED_STRETCH,
    BUDGET_SHARE,
    Families,
    by_shape,
    cpu_search_seconds,
    default_model_types,
    trial_seconds,
)
from tabstream.pipeline.families.costs import TIME_BOUNDED
from tabstream.schemas.checks import DEFAULT_SWEEP_FAMILIES, is_pareto_sweep, weight_vector_count
from tabstream.schemas.run import TrainerRunRequest


@dataclass(frozen=True)
class ModelChoice:
    """The families a run trains; ``chosen``: picked by the pipeline (no ``model_types``)."""

    model_types: list[str]
    chosen: bool
    notes: list[str]


def choose_model_types(
    request: TrainerRunRequest,
    n_rows: int,
    n_cols: int,
    device: str,
    families: Families,
    time_budget_s: float | None = None,
    n_classes: int = 2,
) -> ModelChoice:
    """The run's families and the notes explaining them (see the module docstring)."""
    slow = _slow_on_cpu(request, n_rows, device, families, time_budget_s, n_classes)
    if request.model_types:
        asked = list(request.model_types)
        notes = [_slow_note(f, slow[f], n_rows, request) for f in asked if f in slow]
        return ModelChoice(asked, False, notes)
    tabicl = families["tabicl"].available() is None
    fits = request.n_splits or 1
    threads = families.fit_threads
    default = default_model_types(
        n_rows, n_cols, device, tabicl, time_budget_s, fits, n_classes, threads
    )
    kept = [f for f in default if f not in slow]
    if is_pareto_sweep(len(request.metrics or []), request.grid_size):
        kept = kept[:DEFAULT_SWEEP_FAMILIES]
    notes = [f"default model types chosen: {kept}"]
    if time_budget_s is not None:
        shape = by_shape(n_rows, n_cols, device, tabicl)
        over = [f for f in shape if f not in default]
        notes += _budget_note(over, n_rows, fits, time_budget_s, n_classes, threads)
    too_slow = {f: slow[f] for f in default if f in slow}
    if too_slow:
        notes.append(_left_out_note(too_slow, n_rows, request, families))
    return ModelChoice(kept, True, notes)


def _budget_note(
    left_out: list[str], n_rows: int, fits: int, budget: float, n_classes: int, threads: int
) -> list[str]:
    if not left_out:
        return []
    cost = {f: trial_seconds(f, n_rows, fits, n_classes, threads) for f in left_out}
    shown = ", ".join(f"{f} (~{_s(secs)})" for f, secs in sorted(cost.items(), key=_second))
    bounded = [f for f in left_out if f in TIME_BOUNDED]
    stretch = (
        f" ({BOUNDED_STRETCH:g}x that for {', '.join(bounded)}, whose fits stop at a time limit)"
        if bounded
        else ""
    )
    return [
        f"left out of the default model types under time_budget_s {budget:g} s: {shown} per "
        f"default trial of {fits} fits on {n_rows:,} rows, over {BUDGET_SHARE:.0%} of the "
        f"budget{stretch}; name them in model_types to train them anyway"
    ]


def _s(seconds: float) -> str:
    """Seconds for a note: one decimal under 10 s, whole seconds above."""
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:,.0f} s"


def _second(item: tuple[str, float]) -> float:
    return item[1]


def _slow_on_cpu(
    request: TrainerRunRequest,
    n_rows: int,
    device: str,
    families: Families,
    time_budget_s: float | None,
    n_classes: int,
) -> dict[str, float]:
    """family -> estimated seconds, for every family over the limit in an unbounded CPU run."""
    limit = families.options.cpu_family_max_s
    if time_budget_s is not None or device.startswith("cuda") or limit <= 0:
        return {}
    trials, fits = _trials_per_family(request), request.n_splits or 1
    threads = families.fit_threads
    estimates = {
        f: cpu_search_seconds(f, n_rows, trials, fits, n_classes, threads) for f in families
    }
    return {f: secs for f, secs in estimates.items() if secs > limit}


def _trials_per_family(request: TrainerRunRequest) -> int:
    n_metrics = len(request.metrics) if request.metrics else 1
    return request.n_trials * weight_vector_count(n_metrics, request.grid_size)


def _left_out_note(
    left_out: dict[str, float], n_rows: int, request: TrainerRunRequest, families: Families
) -> str:
    shown = ", ".join(f"{f} (~{_s(secs)})" for f, secs in left_out.items())
    return (
        f"left out of the default model types on CPU: {shown}, estimated for {n_rows:,} rows x "
        f"{_trials_per_family(request)} trials, over the limit of "
        f"{families.options.cpu_family_max_s:g} s per family for a run without time_budget_s; "
        "set time_budget_s, or name them in model_types to train them anyway"
    )


def _slow_note(family: str, secs: float, n_rows: int, request: TrainerRunRequest) -> str:
    return (
        f"{family} on CPU without time_budget_s: estimated ~{_s(secs)} for {n_rows:,} rows "
        f"x {_trials_per_family(request)} trials; set time_budget_s to bound the run"
    )
