"""``synthgap emulate furnace|balance|mill|press|robot|lab``: emulators on ptys.

``emulate lab --config lab.yaml`` (or with ``--lab-file``/``--workdir``) starts the whole
lab of :mod:`synthgap.hardware.emulators.lab` (instruments, dosing robot, XRD responder)
and writes a lab file for :class:`~synthgap.hardware.lab.HardwareLab`; it prints the
device lines, ``xrd-inbox``/``xrd-outbox`` and ``lab-file <path>``.

Plug into the project CLI with::

    from synthgap.hardware.emulators.cli import add_emulate_parser
    add_emulate_parser(subparsers)   # sets args.func = run_emulate

or run standalone through :func:`emulate_main`. Prints one ``<device> <path>`` line per
emulator (``--json``: one JSON line), then runs until Ctrl-C / SIGTERM (or ``--duration``
seconds). On exit the lab's device links are removed: the ptys behind them are gone, and
their numbers are reused by the next program that opens one.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

import numpy as np

from synthgap.envs.lab.thermal import FurnaceParams
from synthgap.envs.userfiles import float_arg, int_arg

from ..config import LabConfig
from .balance import BalanceEmulator
from .base import PtyEmulator
from .furnace import FurnaceEmulator
from .stations import StationEmulator

__all__ = ["add_emulate_parser", "build_emulators", "emulate_main", "run_emulate"]

log = logging.getLogger(__name__)

DEVICES = ("furnace", "balance", "mill", "press", "robot", "lab")
MODBUS_SLAVES = (1, 247)  # unicast Modbus addresses (0 is broadcast, 248-255 reserved)
MAX_TIME_SCALE = 100_000.0  # simulated seconds per wall second
MAX_ABS_MASS_G = 1e6  # g: beyond any balance (the capacity, 220 g, may be exceeded to emulate overload)
MAX_DURATION_S = 365 * 86400.0  # s: one year
LAB_TIME_SCALE = 3600.0  # lab s per wall s of `emulate lab`: an hour of milling or firing per wall second


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("device", choices=DEVICES, help="what to emulate ('lab': all)")
    parser.add_argument("--port", default="pty", choices=["pty"],
                        help="transport (only 'pty': a pseudo-terminal pair)")
    parser.add_argument("--slave", type=int_arg(*MODBUS_SLAVES), default=None,
                        help="furnace Modbus slave address, 1-247 (default: config or 1)")
    parser.add_argument("--time-scale", type=float_arg(0.0, MAX_TIME_SCALE, lo_open=True), default=None,
                        help=f"simulated seconds per wall-clock second, in (0, {MAX_TIME_SCALE:g}] (default: "
                             f"{LAB_TIME_SCALE:g} for 'lab', so a deploy of a few recipes finishes in minutes; "
                             "1 for one device; --time-scale 1 runs the lab at real speed)")
    parser.add_argument("--config", default=None, help="lab YAML (slave address, decimals)")
    parser.add_argument("--mass", type=float_arg(-MAX_ABS_MASS_G, MAX_ABS_MASS_G, "g"), default=0.0,
                        help="balance true mass, g (finite; negative or above capacity emulates under/overload)")
    parser.add_argument("--seed", type=int_arg(0), default=0, help="seed of the emulated noise (>= 0)")
    parser.add_argument("--duration", type=float_arg(0.0, MAX_DURATION_S, "s", lo_open=True), default=None,
                        help="stop after this many seconds, > 0 (default: run until Ctrl-C)")
    parser.add_argument("--lab-file", default=None,
                        help="lab: where to write the lab file for HardwareLab (default WORKDIR/lab.yaml)")
    parser.add_argument("--workdir", default=None,
                        help="lab: folder for device links, XRD folders, journal (default: a new temp folder)")
    parser.add_argument("--json", action="store_true",
                        help="print the device paths (and the lab file) as one JSON line instead of text lines")
    parser.add_argument("--system", default=None,
                        help="lab: chemical system of the XRD responder (a catalogue name; starts the whole lab)")
    parser.set_defaults(func=run_emulate)
    return parser


def add_emulate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``emulate`` sub-command to an existing ``add_subparsers()`` object."""
    parser = subparsers.add_parser("emulate", help="run instrument emulators on ptys",
                                   description=__doc__.split("\n\n")[0])
    return _configure(parser)


def build_emulators(args: argparse.Namespace) -> dict[str, PtyEmulator]:
    """Create (not start) the emulators selected by ``args``."""
    cfg = LabConfig.from_yaml(args.config) if args.config else None
    furnace_cfg = cfg.furnace if cfg else None
    slave = args.slave if args.slave is not None else (furnace_cfg.slave if furnace_cfg else 1)
    if not MODBUS_SLAVES[0] <= slave <= MODBUS_SLAVES[1]:
        raise ValueError(f"{args.config}: furnace.slave must be in {MODBUS_SLAVES[0]}..{MODBUS_SLAVES[1]}, "
                         f"got {slave}")
    decimals = furnace_cfg.decimals if furnace_cfg else 1
    rng = np.random.default_rng(args.seed)
    names = ["furnace", "balance", "mill", "press", "robot"] if args.device == "lab" \
        else [args.device]
    out: dict[str, PtyEmulator] = {}
    for name in names:
        if name == "furnace":
            params = FurnaceParams()
            if cfg is not None:
                params = FurnaceParams(max_temperature_K=max(
                    params.max_temperature_K, cfg.limits.max_temperature_K + 50.0))
            out[name] = FurnaceEmulator(params, rng.spawn(1)[0], slave=slave,
                                        decimals=decimals, time_scale=args.time_scale)
        elif name == "balance":
            out[name] = BalanceEmulator(true_mass_g=args.mass, rng=rng.spawn(1)[0])
        else:
            out[name] = StationEmulator(name)
    return out


def run_emulate(args: argparse.Namespace, stop: threading.Event | None = None,
                out: TextIO | None = None) -> int:
    """Start the emulators, print their device paths, wait for Ctrl-C/SIGTERM/``stop``."""
    out = out or sys.stdout
    stop = stop or threading.Event()
    if args.system is not None and args.device != "lab":
        raise ValueError(f"--system applies to 'emulate lab' only, not 'emulate {args.device}'")
    if args.time_scale is None:
        args.time_scale = LAB_TIME_SCALE if args.device == "lab" else 1.0
    if args.device == "lab" and (args.config or args.lab_file or args.workdir or args.system):
        from .lab import run_lab

        return run_lab(args, stop, out)
    emulators = build_emulators(args)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        devices = {name: emu.start() for name, emu in emulators.items()}
        if getattr(args, "json", False):
            print(json.dumps({"devices": devices, "time_scale": args.time_scale}), file=out, flush=True)
        else:
            for name, device in devices.items():
                print(f"{name} {device}", file=out, flush=True)
        stop.wait(args.duration)
    finally:
        for emu in emulators.values():
            emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def emulate_main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``emulate_main(["furnace", "--time-scale", "60"])``."""
    parser = _configure(argparse.ArgumentParser(prog="synthgap emulate"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(emulate_main())
