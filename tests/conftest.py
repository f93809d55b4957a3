"""Test-wide settings: no telemetry, no stray SB3 folders in /tmp, headless plots."""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _sb3_logdir(tmp_path, monkeypatch):
    """SB3 writes /tmp/SB3-* folders unless told otherwise: keep them in the test's tmp."""
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3"))
