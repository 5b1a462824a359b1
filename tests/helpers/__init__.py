"""Reusable test helpers (tiny model checkpoints, ...)."""
