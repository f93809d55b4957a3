"""Test-wide settings: no telemetry, no stray SB3 folders in /tmp, no key in $HOME, headless plots."""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _sb3_logdir(tmp_path_factory):
    """SB3 writes /tmp/SB3-* folders unless told otherwise: keep them in pytest's tmp.

    Session-wide, so module-scoped fixtures that train are covered too.
    """
    old = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3"))
    yield
    if old is None:
        os.environ.pop("SB3_LOGDIR", None)
    else:
        os.environ["SB3_LOGDIR"] = old


@pytest.fixture(autouse=True, scope="session")
def _policy_signing_key(tmp_path_factory):
    """Registering a model creates a signing key: keep it in pytest's tmp, never in the home directory."""
    old = os.environ.get("SYNTHGAP_KEY_FILE")
    os.environ["SYNTHGAP_KEY_FILE"] = str(tmp_path_factory.mktemp("keys") / "policy-signing.key")
    yield
    if old is None:
        os.environ.pop("SYNTHGAP_KEY_FILE", None)
    else:
        os.environ["SYNTHGAP_KEY_FILE"] = old
