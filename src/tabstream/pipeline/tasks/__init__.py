"""Step 1 of a run: the data a task trains on. Load and filter the dataset, prepare it per task
kind (labels; forecasting and sequence features), split it, and preprocess it per fold."""
