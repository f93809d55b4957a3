"""The lab file (YAML): instrument ports, slave addresses, safety limits and lab settings.

:func:`read_lab_file` is the one reader of a lab file; every caller (the hardware lab,
deploy, the emulators' ``--config``, :meth:`LabConfig.from_yaml`) goes through it.

Example ``lab.yaml``::

    furnace: {url: /dev/ttyUSB0, slave: 1, decimals: 1, baudrate: 19200}
    balance: {url: "socket://10.0.0.5:4001"}
    mill: {url: /dev/ttyUSB1}
    press: {url: /dev/ttyUSB2}
    robot: {url: /dev/ttyUSB3}
    xrd: {inbox: /srv/xrd/in, outbox: /srv/xrd/out, timeout_s: 3600}
    journal: /var/lib/synthgap/journal.jsonl
    limits:
      max_temperature_K: 1473.15
      max_ramp_rate_K_per_min: 10
      max_dwell_h: 48
      max_mass_g: 50
      safe_temperature_K: 333.15
    lab: {system: BaTiO3, time_scale: 20000, poll_s: 0.005}

Every section except ``limits`` is optional (:func:`load_lab_file` also requires every
instrument, as a :class:`~synthgap.hardware.lab.HardwareLab` needs them). ``lab`` holds the
:class:`LabSettings`. A malformed file raises :class:`~synthgap.hardware.errors.ConfigError`
naming the file, the field and the problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from synthgap.envs.userfiles import UserFileError, load_user_file, short

from .errors import ConfigError

__all__ = ["DeviceConfig", "LabConfig", "LabSettings", "SafetyLimits", "XRDConfig", "load_lab_file",
           "read_lab_file"]


@dataclass(frozen=True)
class SafetyLimits:
    """Hard limits enforced by the safety shield (never clamped: violations raise).

    Attributes:
        max_temperature_K: highest allowed furnace setpoint, K.
        max_ramp_rate_K_per_min: highest allowed setpoint ramp rate, K/min (> 0).
        max_dwell_h: longest allowed dwell, h.
        max_mass_g: heaviest allowed sample / crucible load, g.
        safe_temperature_K: temperature the furnace is sent to on emergency stop, and
            below which unloading is allowed, K.
        min_temperature_K: lowest allowed setpoint (programmed as the controller's
            setpoint low limit), K.
        max_cooling_rate_K_per_min: fastest the furnace's thermocouple can really cool,
            K/min. A reading that fell faster since the last believed one (plus a 10 K
            allowance for noise and wire resolution) is not believed: a stale or zero frame
            (0 degC with the furnace at 1400 K a second ago) counts as unknown, hence hot.
            Default 200 K/min, an assumption: several times the fastest natural cooling of
            lab box and tube furnaces from 1400 K with the door shut (of order 5-50 K/min;
            rapid-cooling models quote about 100 K/min). Set it from your furnace's measured
            cooling curve. The check runs on the furnace's own clock (scaled for an
            accelerated emulator).
        max_plausible_temperature_K: highest reading believed, K; above it the reading is
            a sensor or decoding fault (unknown, hence hot). Default 2600 K, an assumption:
            just above the about 2320 degC (2593 K) top of type C (W-Re) thermocouples, the
            highest-range type in common furnace use; lower it to your thermocouple's range
            (type K: 1645 K). Must exceed ``max_temperature_K``.
    """

    max_temperature_K: float
    max_ramp_rate_K_per_min: float
    max_dwell_h: float
    max_mass_g: float
    safe_temperature_K: float
    min_temperature_K: float = 273.15
    max_cooling_rate_K_per_min: float = 200.0
    max_plausible_temperature_K: float = 2600.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{f.name}: must be a finite number > 0, got {short(value)}")
        if not (self.min_temperature_K <= self.safe_temperature_K <= self.max_temperature_K):
            raise ValueError(
                "safe_temperature_K: must lie in [min_temperature_K, max_temperature_K], got "
                f"{self.safe_temperature_K} not in [{self.min_temperature_K}, "
                f"{self.max_temperature_K}]")
        if not self.max_plausible_temperature_K > self.max_temperature_K:
            raise ValueError(
                f"max_plausible_temperature_K: must exceed max_temperature_K "
                f"{self.max_temperature_K}, got {self.max_plausible_temperature_K}")


@dataclass(frozen=True)
class DeviceConfig:
    """Where one serial instrument is: ``url`` for ``serial.serial_for_url``."""

    url: str
    slave: int = 1
    decimals: int = 1
    baudrate: int | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not self.url.strip():
            raise ValueError("url: must name a port, e.g. /dev/ttyUSB0 or socket://127.0.0.1:5020")
        if not 1 <= self.slave <= 247:  # 0 is broadcast (no replies), 248-255 reserved
            raise ValueError(f"slave: must be a Modbus slave address 1-247, got {short(self.slave)}")
        if self.decimals not in (0, 1, 2):
            raise ValueError(f"decimals: must be 0, 1 or 2, got {short(self.decimals)}")
        if self.baudrate is not None and not 300 <= self.baudrate <= 4_000_000:
            raise ValueError(f"baudrate: must be 300-4000000 baud, got {short(self.baudrate)}")
        if self.timeout_s is not None and not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= 60):
            raise ValueError(f"timeout_s: must be in (0, 60] s, got {short(self.timeout_s)}")


@dataclass(frozen=True)
class XRDConfig:
    """Shared folders of the XRD instrument PC."""

    inbox: Path
    outbox: Path
    timeout_s: float = 3600.0


@dataclass(frozen=True)
class LabConfig:
    """The whole lab: instrument locations, limits, journal path."""

    limits: SafetyLimits
    furnace: DeviceConfig | None = None
    balance: DeviceConfig | None = None
    mill: DeviceConfig | None = None
    press: DeviceConfig | None = None
    robot: DeviceConfig | None = None
    xrd: XRDConfig | None = None
    journal: Path | None = None
    source: Path | None = field(default=None, compare=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> LabConfig:
        """Load and validate the lab file ``path`` (its ``lab`` section is validated, then
        dropped: :func:`read_lab_file`); raises ``ConfigError`` on any problem."""
        return read_lab_file(path)[0]

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "<dict>") -> LabConfig:
        """Validate an already-parsed mapping (``source`` is used in messages)."""
        where = str(source)

        def fail(fieldname: str, problem: str) -> ConfigError:
            return ConfigError(f"{where}: {fieldname}: {problem}")

        if not isinstance(data, dict):
            raise fail("<top level>", f"expected a mapping, got {type(data).__name__}")
        known = {"limits", "furnace", "balance", "mill", "press", "robot", "xrd", "journal"}
        for key in data:
            if key not in known:
                raise fail(str(key), f"unknown section (expected one of {sorted(known)})")
        if "limits" not in data:
            raise fail("limits", "missing (safety limits are required)")
        limits = _build(SafetyLimits, data["limits"], "limits", fail)
        devices = {}
        for name in ("furnace", "balance", "mill", "press", "robot"):
            if data.get(name) is not None:
                devices[name] = _build(DeviceConfig, data[name], name, fail)
        xrd = None
        if data.get("xrd") is not None:
            raw = _build(XRDConfig, data["xrd"], "xrd", fail)
            xrd = XRDConfig(Path(raw.inbox), Path(raw.outbox), raw.timeout_s)
        journal = data.get("journal")
        if journal is not None and not isinstance(journal, str):
            raise fail("journal", f"expected a path string, got {short(journal)}")
        return cls(limits=limits, xrd=xrd, journal=Path(journal) if journal else None,
                   source=Path(source) if source != "<dict>" else None, **devices)


@dataclass(frozen=True)
class LabSettings:
    """The ``lab`` section of the lab file.

    Attributes:
        system: chemical system the lab makes (catalogue name).
        time_scale: lab seconds per wall-clock second (an accelerated emulator); None: real time.
        poll_s: furnace polling period during a firing, wall-clock s.
        batch_mass_g: target mass each recipe is weighed for, g.
        ambient_K: end setpoint of the cooling segment, K.
        xrd_poll_s: XRD result polling period, wall-clock s.
        reconnect_s: how long an emergency stop keeps re-opening a lost furnace port, wall s.
        watchdog_s: shield watchdog (no poll for this long -> safe), wall s; None: off.
        mill_rpm, press_force_kN, press_hold_s: fixed station settings.
    """

    system: str = "BaTiO3"
    time_scale: float | None = None
    poll_s: float = 1.0
    batch_mass_g: float = 2.0
    ambient_K: float = 298.15
    xrd_poll_s: float = 1.0
    reconnect_s: float = 30.0
    watchdog_s: float | None = None
    mill_rpm: float = 400.0
    press_force_kN: float = 10.0
    press_hold_s: float = 60.0

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LabSettings:
        """Validate the parsed ``lab`` section (None: defaults); ``where`` names the file in messages."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: lab: expected a mapping, got {short(data)}")
        names = {f.name for f in fields(cls)}
        for key, value in data.items():
            if key not in names:
                raise ConfigError(f"{where}: lab.{key}: unknown field (expected one of {sorted(names)})")
            if key == "system":
                if not isinstance(value, str):
                    raise ConfigError(f"{where}: lab.system: expected a system name, got {short(value)}")
                continue
            if value is None and key in ("time_scale", "watchdog_s"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError(f"{where}: lab.{key}: expected a finite number > 0, got {short(value)}")
        return cls(**data)


INSTRUMENTS = ("furnace", "balance", "mill", "press", "robot", "xrd")  # the sections a HardwareLab needs


def read_lab_file(path: str | Path) -> tuple[LabConfig, LabSettings]:
    """Read a lab YAML: the instrument config (instruments may be missing) and the ``lab``
    settings. The one reader of a lab file. Raises ``ConfigError``."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: <top level>: expected a mapping, got {type(data).__name__}")
    data = dict(data)
    settings = LabSettings.from_dict(data.pop("lab", None), str(path))
    return LabConfig.from_dict(data, path), settings


def load_lab_file(path: str | Path) -> tuple[LabConfig, LabSettings]:
    """:func:`read_lab_file`, and every instrument must be configured. Raises ``ConfigError``."""
    config, settings = read_lab_file(path)
    missing = [n for n in INSTRUMENTS if getattr(config, n) is None]
    if missing:
        raise ConfigError(f"{path}: {', '.join(missing)}: missing (a HardwareLab needs every instrument)")
    return config, settings


_TYPES = {"float": (int, float), "int": (int,), "str": (str,), "Path": (str,)}


def _build(cls: type, data: Any, section: str, fail: Any) -> Any:
    if not isinstance(data, dict):
        raise fail(section, f"expected a mapping, got {short(data)}")
    names = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in names:
            raise fail(f"{section}.{key}", f"unknown field (expected one of {sorted(names)})")
    kwargs = {}
    for name, f in names.items():
        if name not in data:
            if f.default is f.default_factory:  # both MISSING: required
                raise fail(f"{section}.{name}", "missing")
            continue
        value = data[name]
        type_name = str(f.type).split("|")[0].strip()
        allowed = _TYPES.get(type_name, (object,))
        optional = "None" in str(f.type)
        if value is None and optional:
            kwargs[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise fail(f"{section}.{name}", f"expected {type_name}, got {short(value)}")
        if type_name == "float" and isinstance(value, int) and abs(value) > 1e300:  # beyond any float
            raise fail(f"{section}.{name}", f"expected a finite float, got {short(value)}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise fail(section, str(exc)) from exc


def read_yaml(path: str | Path):
    """The parsed YAML of a lab file, read by :func:`synthgap.envs.userfiles.load_user_file`
    (1 MiB, nesting and alias-expansion limits); ``ConfigError`` naming the file, in one
    line, if it cannot be read or parsed."""
    try:
        return load_user_file(path)
    except UserFileError as exc:
        raise ConfigError(str(exc)) from None
