"""The whole emulated lab: every instrument on a pty plus an XRD instrument PC, from a lab YAML.

:class:`LabEmulator` starts

- the furnace controller (:class:`~.furnace.FurnaceEmulator`, accelerated by ``time_scale``),
- the balance, mill and press,
- the robot arm with a powder dosing head (:class:`DosingRobotEmulator`): ``MOVE x BALANCE``
  puts an empty vial on the balance pan, ``MOVE BALANCE x`` takes it off, and
  ``DOSE <precursor> <g>`` doses powder into the vial on the pan (the dispensed mass
  has a relative error ``dispense_rel_sd``, as in the twin),
- an XRD responder thread (:class:`XRDResponder`) playing the instrument PC of
  :class:`~synthgap.hardware.xrd.XRDFolderDriver`,

and writes a lab file (``lab.yaml``) that :class:`~synthgap.hardware.lab.HardwareLab` opens.
Each serial device is reached through a stable symlink ``<workdir>/dev/<name>`` (like
``/dev/serial/by-id/...``), so :meth:`LabEmulator.unplug` can make a port disappear and
come back on a new pty, as a USB adapter re-enumerating does.

XRD physics: besides the request file, the lab drops ``<inbox>/<sample_id>.sample.json``
(recipe, weighed masses, batch mass, logged thermocouple trace). The responder takes the
sample temperature as the logged thermocouple minus the furnace's true calibration offset
(which only the emulator knows), and fires the weighed amounts through
:func:`synthgap.envs.chemistry.fire` on that trace, then measures it with the lab's measurement model
(:mod:`synthgap.envs.lab.measurement`: XRD noise and detection limit, property noise). Its result file carries
``phase_fractions`` plus ``performance`` (the property measurement).

Units: temperatures K, masses g, times s (simulated unless stated as wall-clock).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from synthgap.envs.chemistry.limits import FURNACE_MAX_TEMPERATURE_K, PROGRAMME_RATE, RECIPE_LIMITS
from synthgap.envs.lab.measurement import MeasurementModel, lab_measurement
from synthgap.envs.lab.thermal import FurnaceParams
from synthgap.envs.userfiles import load_user_file

from ..config import LabConfig, read_lab_file
from ..xrd import write_json_atomic
from .balance import BalanceEmulator
from .base import Fault, PtyEmulator
from .furnace import FurnaceEmulator
from .stations import StationEmulator

__all__ = ["DEFAULT_LIMITS", "DosingRobotEmulator", "LabEmulator", "LabEmulatorSettings", "XRDResponder",
           "SAMPLE_SUFFIX"]

log = logging.getLogger(__name__)

SAMPLE_SUFFIX = ".sample.json"  # sidecar the lab writes next to an XRD request
REQUEST_SUFFIX = ".request.json"
VIAL_MASS_G = 12.0  # g, an empty vial on the balance pan
RESPONDER_POLL_S = 0.005  # s wall, XRD inbox polling period
BALANCE_LOCATION = "BALANCE"

MAX_DOSE_G = 50.0  # g, heaviest dose of the emulated lab (assumption: a 50 g crucible load)
SAFE_TEMPERATURE_K = 333.15  # K (60 degC), below it the robot may reach into the furnace (assumption)

#: limits of the emulated lab, from :mod:`synthgap.envs.chemistry.limits`: every recipe of the
#: action box runs (furnace maximum, fastest programme rate, longest dwell).
DEFAULT_LIMITS = {"max_temperature_K": FURNACE_MAX_TEMPERATURE_K, "max_ramp_rate_K_per_min": PROGRAMME_RATE.high,
                  "max_dwell_h": RECIPE_LIMITS["dwell_time"].high, "max_mass_g": MAX_DOSE_G,
                  "safe_temperature_K": SAFE_TEMPERATURE_K}


@dataclass(frozen=True)
class LabEmulatorSettings:
    """Knobs of the emulated lab.

    Attributes:
        system: chemical system the XRD responder fires (catalogue name).
        time_scale: simulated s per wall-clock s of the furnace (and the lab clock).
        offset_K: the furnace's true calibration offset (thermocouple reads this much high), K.
        dispense_rel_sd: relative sd of a dose around the commanded mass.
        measurement: XRD and property noise and the XRD detection limit (the twin's model).
        seed: seed of every emulated noise source.
    """

    system: str = "BaTiO3"
    time_scale: float = 100_000.0
    offset_K: float = 3.0
    dispense_rel_sd: float = 0.01
    measurement: MeasurementModel = field(default_factory=lab_measurement)
    seed: int = 0


class DosingRobotEmulator(StationEmulator):
    """Robot arm with a dosing head, coupled to the balance emulator (see module docstring)."""

    def __init__(self, balance: BalanceEmulator, rng: np.random.Generator, dispense_rel_sd: float = 0.01) -> None:
        super().__init__("robot")
        self.balance = balance
        self.rng = rng
        self.dispense_rel_sd = dispense_rel_sd
        self.dosed: list[tuple[str, float]] = []  # (precursor, true dispensed g)

    def handle_frame(self, frame: bytes) -> bytes | None:
        words = frame.decode("ascii", errors="replace").split()
        if words and words[0] == "DOSE":
            if len(words) != 3:
                return b"ERR 2 DOSE takes 2 arguments\r\n"
            try:
                mass = float(words[2])
            except ValueError:
                return f"ERR 2 bad number {words[2]}\r\n".encode()
            if not (math.isfinite(mass) and mass > 0):
                return f"ERR 2 bad mass {words[2]}\r\n".encode()
            with self.balance.lock:
                if self.balance.true_mass_g < VIAL_MASS_G / 2:
                    return b"ERR 4 no vial on the balance\r\n"
                dispensed = mass * (1.0 + self.dispense_rel_sd * float(self.rng.standard_normal()))
                self.balance.true_mass_g += dispensed
            with self.lock:
                self.executed.append(" ".join(words))
                self.dosed.append((words[1], dispensed))
            return b"OK\r\n"
        reply = super().handle_frame(frame)
        if reply == b"OK\r\n" and words and words[0] == "MOVE":
            with self.balance.lock:
                if words[2] == BALANCE_LOCATION:
                    self.balance.true_mass_g = VIAL_MASS_G
                elif words[1] == BALANCE_LOCATION:
                    self.balance.true_mass_g = 0.0
        return reply


class XRDResponder:
    """Instrument PC of the XRD folder exchange, answering from the twin's chemistry.

    Args:
        inbox, outbox: the shared folders.
        offset_K: true thermocouple calibration offset of the furnace, K.
        settings: noise levels and the seed.
    """

    def __init__(self, inbox: Path, outbox: Path, offset_K: float, settings: LabEmulatorSettings) -> None:
        self.inbox, self.outbox = Path(inbox), Path(outbox)
        self.offset_K = offset_K
        self.settings = settings
        self.rng = np.random.default_rng([settings.seed, 7])
        self.answered: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the watcher thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="emu-xrd", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watcher thread (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(RESPONDER_POLL_S):
            for req in sorted(self.inbox.glob(f"*{REQUEST_SUFFIX}")):
                try:
                    self.answer(req)
                except Exception:  # a bad request must not kill the instrument PC
                    log.exception("XRD responder failed on %s", req)

    def answer(self, request_path: Path) -> dict[str, Any]:
        """Answer one request file (and remove it, as the instrument PC does)."""
        request = load_user_file(request_path)
        rid, sid = request["request_id"], request["sample_id"]
        sample_path = self.inbox / f"{sid}{SAMPLE_SUFFIX}"
        try:
            sample = load_user_file(sample_path)
            fractions, performance = self.measure(sample)
            result: dict[str, Any] = {"request_id": rid, "phase_fractions": fractions, "performance": performance}
        except (OSError, ValueError, KeyError) as exc:
            result = {"request_id": rid, "error": f"cannot measure {sid}: {exc}"}
        write_json_atomic(self.outbox / f"{rid}.result.json", result)
        request_path.unlink(missing_ok=True)
        self.answered.append(rid)
        return result

    def measure(self, sample: dict[str, Any]) -> tuple[dict[str, float], float]:
        """Measured XRD fractions and property of a sample sidecar (see module docstring)."""
        fired = fire_sample(sample, self.offset_K)
        model = self.settings.measurement
        solids = list(fired["phase_fractions"])
        true = np.array([fired["phase_fractions"][p] for p in solids])
        meas = model.xrd(true, self.rng.standard_normal(true.size))
        perf = model.property(fired["performance"], float(self.rng.standard_normal()))
        return dict(zip(solids, meas.tolist(), strict=True)), perf


def fire_sample(sample: dict[str, Any], offset_K: float) -> dict[str, Any]:
    """Fire a sample sidecar through the chemistry: true fractions, target fraction, property.

    The sample temperature of step k is the mean of the logged thermocouple readings at
    the ends of steps k-1 and k, minus ``offset_K`` (K); amounts come from the weighed
    masses (mol per mol of target intended).
    """
    from synthgap.envs.chemistry import Recipe, TemperatureTrace, fire, load_system, network_for
    from synthgap.envs.chemistry.stoichiometry import amounts_from_masses

    system = load_system(sample["system"])
    recipe = Recipe.from_dict(sample["recipe"])
    net = network_for(system)
    initial = amounts_from_masses(system, recipe.target, sample["weighed_g"], float(sample["batch_mass_g"]))
    t = np.asarray(sample["trace"]["time_s"], dtype=float)
    tc = np.asarray(sample["trace"]["thermocouple_K"], dtype=float) - offset_K
    if t.size < 2:
        raise ValueError("the firing trace has fewer than 2 points")
    dt = np.diff(t)
    keep = dt > 0
    kin_T = 0.5 * (tc[:-1] + tc[1:])[keep]
    out = fire(system, [recipe], trace=TemperatureTrace(kin_T[None, :], dt[keep][None, :]), initial=initial[None, :])
    return {"phase_fractions": dict(zip(net.solids, out.phase_fractions[0].tolist(), strict=True)),
            "target_fraction": float(out.target_fraction[0]), "performance": float(out.performance[0])}


class LabEmulator:
    """Every instrument of a lab, emulated; see the module docstring.

    Args:
        workdir: folder for the device symlinks, the XRD folders, the lab file and the journal.
        settings: :class:`LabEmulatorSettings`.
        config: a lab config whose furnace slave address / decimals and limits are used
            (the emulator replaces the device locations); ``None`` for the defaults.
    """

    SERIAL = ("furnace", "balance", "mill", "press", "robot")

    def __init__(self, workdir: str | Path, settings: LabEmulatorSettings | None = None,
                 config: LabConfig | None = None) -> None:
        self.workdir = Path(workdir)
        self.settings = settings or LabEmulatorSettings()
        self.config = config
        s = self.settings
        rng = np.random.default_rng(s.seed)
        limits = dict(DEFAULT_LIMITS)
        slave, decimals = 1, 1
        if config is not None:
            limits = {k: getattr(config.limits, k) for k in (*DEFAULT_LIMITS, "min_temperature_K")}
            if config.furnace is not None:
                slave, decimals = config.furnace.slave, config.furnace.decimals
        self.limits = limits
        self.slave, self.decimals = slave, decimals
        params = FurnaceParams(offset_K=s.offset_K,
                               max_temperature_K=max(FURNACE_MAX_TEMPERATURE_K, limits["max_temperature_K"] + 50.0))
        self.furnace = FurnaceEmulator(params, rng.spawn(1)[0], slave=slave, decimals=decimals,
                                       time_scale=s.time_scale)
        self.balance = BalanceEmulator(rng=rng.spawn(1)[0])
        self.mill = StationEmulator("mill")
        self.press = StationEmulator("press")
        self.robot = DosingRobotEmulator(self.balance, rng.spawn(1)[0], s.dispense_rel_sd)
        self.xrd_inbox = self.workdir / "xrd" / "in"
        self.xrd_outbox = self.workdir / "xrd" / "out"
        self.xrd = XRDResponder(self.xrd_inbox, self.xrd_outbox, s.offset_K, s)
        self.lab_file = self.workdir / "lab.yaml"
        self.journal_path = self.workdir / "journal.jsonl"
        self._timers: list[threading.Thread] = []

    @property
    def emulators(self) -> dict[str, PtyEmulator]:
        """Name -> serial emulator."""
        return {n: getattr(self, n) for n in self.SERIAL}

    def link(self, name: str) -> Path:
        """The stable device path (symlink) of serial instrument ``name``."""
        return self.workdir / "dev" / name

    def _point(self, name: str, device: str) -> None:
        link = self.link(name)
        tmp = link.with_name(f".{name}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(device, tmp)
        os.replace(tmp, link)

    def start(self) -> Path:
        """Start everything; write and return the lab file."""
        (self.workdir / "dev").mkdir(parents=True, exist_ok=True)
        self.xrd_inbox.mkdir(parents=True, exist_ok=True)
        self.xrd_outbox.mkdir(parents=True, exist_ok=True)
        self.furnace.advance(1e-3)  # compile the physics kernel now, not during the first request
        for name, emu in self.emulators.items():
            self._point(name, emu.start())
        self.xrd.start()
        self.write_lab_file(self.lab_file)
        return self.lab_file

    def lab_dict(self) -> dict[str, Any]:
        """The lab file's content (see :mod:`synthgap.hardware.lab` for the ``lab`` section)."""
        data: dict[str, Any] = {
            "furnace": {"url": str(self.link("furnace")), "slave": self.slave, "decimals": self.decimals},
            **{n: {"url": str(self.link(n))} for n in ("balance", "mill", "press", "robot")},
            "xrd": {"inbox": str(self.xrd_inbox), "outbox": str(self.xrd_outbox), "timeout_s": 60.0},
            "journal": str(self.journal_path),
            "limits": dict(self.limits),
            "lab": {"system": self.settings.system, "time_scale": self.settings.time_scale,
                    "poll_s": 0.005, "ambient_K": self.furnace.params.ambient_K, "xrd_poll_s": 0.005,
                    "reconnect_s": 5.0},
        }
        return data

    def write_lab_file(self, path: str | Path) -> Path:
        """Write the lab YAML to ``path``."""
        path = Path(path)
        path.write_text(yaml.safe_dump(self.lab_dict(), sort_keys=False), encoding="utf-8")
        return path

    def unplug(self, name: str, replug_after_s: float | None = 0.3) -> None:
        """Make ``name``'s port disappear at its next reply; re-plug (new pty, same symlink)
        ``replug_after_s`` wall seconds later (``None``: stays unplugged)."""
        emu = self.emulators[name]
        emu.inject(Fault.CLOSE_PORT)

        def replug() -> None:
            while emu.faults:  # the port closes at the next reply
                time.sleep(0.005)
            if replug_after_s is None:
                return
            time.sleep(replug_after_s)
            emu.stop()
            self._point(name, emu.start())
            log.info("%s re-plugged on %s", name, emu.device)

        t = threading.Thread(target=replug, name=f"replug-{name}", daemon=True)
        self._timers.append(t)
        t.start()

    def stop(self) -> None:
        """Stop every emulator and thread (idempotent)."""
        for emu in self.emulators.values():
            emu.faults.clear()
            emu.stop()
        for t in self._timers:
            t.join(timeout=5.0)
        self._timers.clear()
        for emu in self.emulators.values():
            emu.stop()  # a replug may have restarted one
        self.xrd.stop()
        for name in self.SERIAL:  # a pty number is reused by the next program that opens one: a link
            link = self.link(name)  # left behind would lead a later deploy to someone else's device
            if link.is_symlink():
                link.unlink()

    def __enter__(self) -> LabEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _check_system(system: Any, where: str) -> None:
    """Refuse, before anything starts, a system the XRD responder could not fire."""
    from synthgap.envs.chemistry import CatalogueError, load_system
    from synthgap.envs.userfiles import short

    from ..errors import ConfigError

    if not isinstance(system, str):
        raise ConfigError(f"{where}: expected a system name, got {short(system)}")
    try:
        load_system(system)
    except CatalogueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def run_lab(args: Any, stop: threading.Event, out: Any) -> int:
    """``synthgap emulate lab`` with a config: the whole lab until ``stop`` / ``--duration``."""
    import signal
    import tempfile

    config, lab_settings = read_lab_file(args.config) if args.config else (None, None)
    system = args.system or (lab_settings.system if lab_settings is not None else LabEmulatorSettings.system)
    _check_system(system, "--system" if args.system else f"{args.config}: lab.system")
    time_scale = args.time_scale  # the CLI's default for the lab: LAB_TIME_SCALE
    settings = LabEmulatorSettings(system=system, time_scale=time_scale, seed=args.seed)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="synthgap-lab-"))
    emu = LabEmulator(workdir, settings, config)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        emu.start()
        lab_file = emu.write_lab_file(args.lab_file) if args.lab_file else emu.lab_file
        if getattr(args, "json", False):
            print(json.dumps({"devices": {name: str(emu.link(name)) for name in emu.SERIAL},
                              "xrd_inbox": str(emu.xrd_inbox), "xrd_outbox": str(emu.xrd_outbox),
                              "lab_file": str(lab_file), "time_scale": time_scale}), file=out, flush=True)
        else:
            for name in emu.SERIAL:
                print(f"{name} {emu.link(name)}", file=out, flush=True)
            print(f"xrd-inbox {emu.xrd_inbox}", file=out, flush=True)
            print(f"xrd-outbox {emu.xrd_outbox}", file=out, flush=True)
            print(f"lab-file {lab_file}", file=out, flush=True)
            print(f"time-scale {time_scale:g}", file=out, flush=True)  # lab s per wall s (1: real speed)
        stop.wait(args.duration)
    finally:
        emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
