"""Logging: JSON lines with bound context, secrets masked."""

from __future__ import annotations

import json

import pytest
import structlog

from tabstream.common.logs import configure_logging, get_logger


def test_json_lines_carry_bound_context_and_mask_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json", "INFO", force=True)
    try:
        with structlog.contextvars.bound_contextvars(job_id="j1", topic="t", partition=2, offset=7):
            get_logger("test").info("record_processed", token="s3cr3t", attempt=1)
        line = capsys.readouterr().err.strip().splitlines()[-1]
        event = json.loads(line)
        assert event["event"] == "record_processed"
        assert (event["job_id"], event["topic"], event["partition"], event["offset"]) == (
            "j1",
            "t",
            2,
            7,
        )
        assert event["token"] == "***"
        assert "s3cr3t" not in line
    finally:
        structlog.reset_defaults()
        configure_logging("console", force=True)
