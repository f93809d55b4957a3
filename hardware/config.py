"""Lab configuration (YAML): instrument ports, slave addresses and safety limits.

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

Every section except ``limits`` is optional. A malformed file raises
:class:`~synthgap.hardware.errors.ConfigError` naming the file, the field and the problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["DeviceConfig", "LabConfig", "SafetyLimits", "XRDConfig"]


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
    """

    max_temperature_K: float
    max_ramp_rate_K_per_min: float
    max_dwell_h: float
    max_mass_g: float
    safe_temperature_K: float
    min_temperature_K: float = 273.15

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{f.name}: must be a finite number > 0, got {value!r}")
        if not (self.min_temperature_K <= self.safe_temperature_K <= self.max_temperature_K):
            raise ValueError(
                "safe_temperature_K: must lie in [min_temperature_K, max_temperature_K], got "
                f"{self.safe_temperature_K} not in [{self.min_temperature_K}, "
                f"{self.max_temperature_K}]")


@dataclass(frozen=True)
class DeviceConfig:
    """Where one serial instrument is: ``url`` for ``serial.serial_for_url``."""

    url: str
    slave: int = 1
    decimals: int = 1
    baudrate: int | None = None
    timeout_s: float | None = None


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
        """Load and validate ``path``; raises ``ConfigError`` on any problem."""
        return cls.from_dict(read_yaml(path), Path(path))

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
            raise fail("journal", f"expected a path string, got {journal!r}")
        return cls(limits=limits, xrd=xrd, journal=Path(journal) if journal else None,
                   source=Path(source) if source != "<dict>" else None, **devices)


_TYPES = {"float": (int, float), "int": (int,), "str": (str,), "Path": (str,)}


def _build(cls: type, data: Any, section: str, fail: Any) -> Any:
    if not isinstance(data, dict):
        raise fail(section, f"expected a mapping, got {data!r}")
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
            raise fail(f"{section}.{name}", f"expected {type_name}, got {value!r}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise fail(section, str(exc)) from exc


def read_yaml(path: str | Path):
    """The parsed YAML of a lab file; ``ConfigError`` naming the file if it cannot be read."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
