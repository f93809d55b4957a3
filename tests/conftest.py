"""Test-wide settings: no telemetry, no stray SB3 folders in /tmp, no key in $HOME, headless plots;
the emulated lab shared by a test module."""

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


#: lab s per wall s of the emulated lab: a few lab hours of firing take a fraction of a wall second.
EMULATOR_TIME_SCALE = 50_000.0


@pytest.fixture(scope="module")
def lab_emulator(tmp_path_factory):
    """The whole emulated lab (furnace, balance, mill, press, robot, XRD) on pseudo-terminals.

    One per test module (its start and the first lab's warm-up are paid once), at :data:`EMULATOR_TIME_SCALE`,
    seed 3. Its ``lab_file`` opens a :class:`~synthgap.hardware.lab.HardwareLab`; pass each lab
    its own ``journal=`` so tests do not read each other's events. Tests that unplug a port or
    count every request an instrument saw want a fresh emulator of their own instead.
    """
    from synthgap.hardware.emulators.lab import LabEmulator, LabEmulatorSettings

    settings = LabEmulatorSettings(time_scale=EMULATOR_TIME_SCALE, seed=3)
    with LabEmulator(tmp_path_factory.mktemp("lab"), settings) as emu:
        yield emu
