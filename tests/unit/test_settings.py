"""Settings: env prefix, bus parsing, placeholder secrets refused, secret file creation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from tabstream.settings import (
    ApiSettings,
    CommonSettings,
    WorkerSettings,
    load_or_create_secret,
    parse_bus,
)

REAL_SECRET = "k" * 20 + "Zq9-real-random-value"


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TABSTREAM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TABSTREAM_BUS", "kafka://127.0.0.1:9092")
    settings = CommonSettings()
    assert settings.data_dir == tmp_path
    assert settings.bus_config.kind == "kafka"
    assert settings.bus_config.bootstrap == "127.0.0.1:9092"
    assert settings.artifact_root == (tmp_path.resolve() / "artifacts").as_uri()


@pytest.mark.parametrize("bus", ["kafka://", "redis://x", "embeded", ""])
def test_bad_bus_is_refused_with_the_setting_named(bus: str) -> None:
    with pytest.raises(ValueError, match="TABSTREAM_BUS"):
        parse_bus(bus)
    with pytest.raises(ValidationError, match="TABSTREAM_BUS"):
        CommonSettings(bus=bus)


@pytest.mark.parametrize(
    "secret", ["changeme", "secret", "please-change-me-now-" + "x" * 20, "short"]
)
def test_placeholder_or_short_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="TABSTREAM_SECRET_KEY"):
        ApiSettings(secret_key=secret)
    with pytest.raises(ValidationError, match="TABSTREAM_SECRET_KEY"):
        WorkerSettings(secret_key=secret)


def test_real_secret_is_accepted_and_hidden() -> None:
    settings = ApiSettings(secret_key=REAL_SECRET)
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == REAL_SECRET
    assert REAL_SECRET not in repr(settings)


def test_secret_file_is_created_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path)
    path = tmp_path / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(tmp_path) == first
    assert len(first) >= 32


def test_pipeline_settings_become_the_pipeline_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The variable names users set (unchanged since the pipeline read them itself) reach
    ``pipeline.options``; unset or empty means the default. A bad value stops the worker."""
    from tabstream.bootstrap.common import pipeline_options
    from tabstream.pipeline.options import PipelineOptions
    from tabstream.settings import PipelineSettings

    assert pipeline_options(PipelineSettings()) == PipelineOptions()
    monkeypatch.setenv("TABSTREAM_FAMILY_THREADS", "3")
    monkeypatch.setenv("TABSTREAM_TABICL_CHECKPOINT", str(tmp_path / "c.ckpt"))
    monkeypatch.setenv("TABSTREAM_TABICL_REGRESSOR_CHECKPOINT", str(tmp_path / "r.ckpt"))
    monkeypatch.setenv("TABSTREAM_DISTILL_SYNTHETIC_ROWS", "")
    monkeypatch.setenv("TABSTREAM_DISTILL_RATIO", "2.5")
    monkeypatch.setenv("TABSTREAM_DISTILL_LABELS", "argmax")
    options = pipeline_options(PipelineSettings())
    assert options.families.threads == 3
    assert options.families.tabicl_checkpoint == tmp_path / "c.ckpt"
    assert options.families.tabicl_regressor_checkpoint == tmp_path / "r.ckpt"
    assert (options.distill.synthetic_rows, options.distill.ratio) == (None, 2.5)
    assert options.distill.labels == "argmax"
    monkeypatch.setenv("TABSTREAM_DISTILL_LABELS", "soft")
    with pytest.raises(ValidationError, match="distill_labels"):
        WorkerSettings()


def test_kafka_replication_and_min_isr(monkeypatch: pytest.MonkeyPatch) -> None:
    """``TABSTREAM_KAFKA_REPLICATION`` (default 1: one broker) and ``TABSTREAM_KAFKA_MIN_ISR``
    (default unset: the broker's own); a min ISR above the replication is refused, named."""
    from tabstream.settings import config_error

    assert (CommonSettings().kafka_replication, CommonSettings().kafka_min_isr) == (1, None)
    monkeypatch.setenv("TABSTREAM_KAFKA_REPLICATION", "3")
    monkeypatch.setenv("TABSTREAM_KAFKA_MIN_ISR", "2")
    assert (WorkerSettings().kafka_replication, ApiSettings().kafka_min_isr) == (3, 2)
    monkeypatch.setenv("TABSTREAM_KAFKA_MIN_ISR", "")
    assert CommonSettings().kafka_min_isr is None
    monkeypatch.setenv("TABSTREAM_KAFKA_MIN_ISR", "4")
    with pytest.raises(ValidationError) as too_high:
        CommonSettings()
    assert "TABSTREAM_KAFKA_MIN_ISR (4) must not exceed TABSTREAM_KAFKA_REPLICATION (3)" in str(
        config_error(too_high.value)
    )
    monkeypatch.setenv("TABSTREAM_KAFKA_REPLICATION", "0")
    with pytest.raises(ValidationError) as zero:
        CommonSettings()
    assert "TABSTREAM_KAFKA_REPLICATION" in str(config_error(zero.value))
