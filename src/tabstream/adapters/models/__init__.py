"""Serving registered models: the ``ModelServer`` port and its pipeline-backed implementation."""
