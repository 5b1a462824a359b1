"""Step 2 of a run: one optuna study per matrix row (a family, and a metric weight vector in a
Pareto sweep), each trial scored out of fold, within the run's time budget."""
