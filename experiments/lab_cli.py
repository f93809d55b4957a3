"""CLI of the lab twin: ``lab run``, ``calibrate`` and ``bench lab``.

``add_lab_parsers(subparsers)`` adds the subcommands to the main parser; each handler
is ``handler(args) -> int``. Bad input raises a ``ValueError`` subclass before anything
is simulated (the main CLI maps it to exit status 2).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from synthgap.envs.userfiles import int_arg, short

MAX_SAMPLES = 100_000  # samples in one ``lab run`` / ``bench lab`` (records and plots stay in memory)
MAX_FURNACES = 256  # furnaces of the twin
MAX_REPEATS = 100

__all__ = ["add_lab_parsers", "cmd_lab_run", "cmd_calibrate", "cmd_bench_lab", "bench_lab"]


def _folder(text: str) -> Path:
    """An output folder argument; an empty one would mean the current folder, silently."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a folder for the records and plots (it is created)")
    return Path(text)


def add_lab_parsers(subparsers, bench_sub) -> None:
    """Add ``lab run``, ``calibrate`` and ``bench lab`` to an argparse subparsers object."""
    lab = subparsers.add_parser("lab", help="the SimPy lab twin")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    run = lab_sub.add_parser("run", help="run random recipes through the twin")
    run.add_argument("--samples", type=int_arg(1, MAX_SAMPLES), default=100, help=f"1-{MAX_SAMPLES:,}")
    run.add_argument("--furnaces", type=int_arg(hi=MAX_FURNACES), default=4, help=f"1-{MAX_FURNACES}")
    run.add_argument("--seed", type=int_arg(0), default=0, help=">= 0")
    run.add_argument("--out", type=_folder, required=True,
                     help="folder for records and plots (created; an existing file is refused)")
    run.add_argument("--system", default="BaTiO3")
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=cmd_lab_run)
    from .coordination_cli import add_coordination_parser

    add_coordination_parser(lab_sub)

    cal = subparsers.add_parser("calibrate", help="fit furnace offsets (or, with --kinetics, the chemistry's "
                                                  "reaction rates) from lab records")
    cal.add_argument("records", type=Path)
    cal.add_argument("--kinetics", default=None, metavar="SYSTEM",
                     help="fit SYSTEM's activation energies and prefactors to the records' XRD, with 95 %% "
                          "intervals (a posterior: Laplace-shaped Metropolis chains)")
    cal.add_argument("--out", default=None, metavar="FILE.yaml",
                     help="with --kinetics: write the calibrated model as a system file (every --system takes it)")
    cal.add_argument("--json", action="store_true")
    cal.set_defaults(func=cmd_calibrate)

    bl = bench_sub.add_parser("lab", help="throughput of the lab twin (1, 4, 16 furnaces)")
    bl.add_argument("--samples", type=int_arg(1, MAX_SAMPLES), default=2000, help=f"1-{MAX_SAMPLES:,}")
    bl.add_argument("--repeats", type=int_arg(1, MAX_REPEATS), default=3, help=f"1-{MAX_REPEATS}")
    bl.add_argument("--json", action="store_true")
    bl.set_defaults(func=cmd_bench_lab)


def _campaign(system: str, samples: int, furnaces: int, seed: int):
    import numpy as np

    from synthgap.envs.chemistry import load_system
    from synthgap.envs.lab import LabInputError, SimLab, random_lab_recipes

    if not 1 <= samples <= MAX_SAMPLES:
        raise LabInputError(f"--samples must be in [1, {MAX_SAMPLES}], got {samples}")
    if not 1 <= furnaces <= MAX_FURNACES:
        raise LabInputError(f"--furnaces (n_furnaces) must be in [1, {MAX_FURNACES}], got {furnaces}")
    lab = SimLab(load_system(system), n_furnaces=furnaces, seed=seed)
    recipes = random_lab_recipes(lab.system, samples, np.random.default_rng([seed, 1]),
                                 lab.max_temperature_K)
    for r in recipes:
        lab.submit(r)
    return lab, lab.run()


def cmd_lab_run(args: argparse.Namespace) -> int:
    from synthgap.envs.lab import LabInputError
    from synthgap.envs.lab.plots import plot_furnace_traces, plot_gantt, plot_queues

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise LabInputError(f"--out {short(str(out), 200)}: exists and is not a folder; give a folder for the "
                            "records and plots")
    lab, recs = _campaign(args.system, args.samples, args.furnaces, args.seed)
    lab.write(out)
    truth = {d["firing_id"]: (d["offset_K"], d["drift_std_K"]) for d in lab.firing_truth}
    plot_gantt(lab.usage, out / "gantt.png")
    plot_furnace_traces(lab.firings, truth, out / "furnace_traces.png")
    plot_queues(lab.queue_log, out / "queues.png")
    summary = {
        "samples_done": sum(r.status == "done" for r in recs),
        "samples_failed": sum(r.status == "failed" for r in recs),
        "lab_hours": lab.now / 3600.0,
        "utilisation": lab.utilisation(),
        "out": str(out),
    }
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(f"{summary['samples_done']} samples done, {summary['samples_failed']} failed, "
              f"{summary['lab_hours']:.1f} lab hours; records and plots in {out}")
    return 0


def cmd_calibrate_kinetics(args: argparse.Namespace) -> int:
    """``calibrate DIR --kinetics SYSTEM``: the reaction rates' posterior from ``DIR/samples.csv``."""
    from synthgap.envs.chemistry import load_system
    from synthgap.envs.lab.kinetic_calibration import fit_kinetics, records_from_table, traces_from_table, write_belief

    table = args.records / "samples.csv" if args.records.is_dir() else args.records
    if not table.is_file():
        raise ValueError(f"{args.records}: no samples.csv (give the folder 'synthgap lab run --out DIR' writes)")
    if args.out is not None and (not str(args.out).strip() or not Path(args.out).resolve().parent.is_dir()):
        raise ValueError(f"--out {args.out!r}: give a file in an existing folder")
    records = records_from_table(table)
    # the logged thermocouple traces when the folder has them (a better record of what each
    # sample saw than its programme: the furnace's lag and overshoot are in them)
    traces = traces_from_table(table.parent / "traces.csv", records)
    post = fit_kinetics(load_system(args.kinetics), records, traces=traces)
    belief = write_belief(post, args.kinetics, args.out) if args.out is not None else None
    if args.json:
        print(json.dumps({**post.to_dict(), "belief_file": str(belief) if belief else None}))
        return 0
    print(f"{post.nominal.name}: {post.n_records} records, XRD residual sd {post.residual_sd:.4f}; "
          "estimate [95 % interval] (prior's 95 % interval)")
    for p in post.parameters:
        unit, k = ("kJ/mol", 1e-3) if p.name == "activation_energy" else ("1/s", 1.0)
        print(f"  {p.reaction:<34} {'Ea' if unit == 'kJ/mol' else 'A':>2} {p.estimate * k:10.4g} "
              f"[{p.low * k:.4g}, {p.high * k:.4g}] ({p.prior_low * k:.4g}-{p.prior_high * k:.4g}) {unit}")
    for a in post.assumptions:
        print(f"  assumed: {a}")
    if belief is not None:
        print(f"belief model: {belief} (use it as --system {belief})")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from synthgap.envs.lab.calibration import calibrate_records, calibration_json

    if args.kinetics is not None:
        return cmd_calibrate_kinetics(args)
    if args.out is not None:
        raise ValueError("--out writes a calibrated system file: it goes with --kinetics SYSTEM")
    cal = calibrate_records(args.records)
    if args.json:
        print(calibration_json(cal))
    else:
        for f, c in cal.items():
            print(f"furnace-{f}: offset {c.offset_K:+.2f} ± {c.offset_se_K:.2f} K "
                  f"(latest {c.offset_latest_K:+.2f} K, {c.n_runs} runs), "
                  f"drift scale {c.drift_scale_K:.2f} K")
    return 0


def bench_lab(samples: int = 2000, repeats: int = 3, furnaces=(1, 4, 16)) -> dict:
    """Median samples and lab hours per wall-second through the whole twin."""
    _campaign("BaTiO3", 50, 2, 99)  # warm up: imports, numba, caches
    out = {}
    for k in furnaces:
        sps, lhs = [], []
        for rep in range(repeats):
            t0 = time.perf_counter()
            lab, recs = _campaign("BaTiO3", samples, k, rep)
            wall = time.perf_counter() - t0
            sps.append(len(recs) / wall)
            lhs.append(lab.now / 3600.0 / wall)
        out[str(k)] = {"samples_per_s": statistics.median(sps),
                       "lab_hours_per_s": statistics.median(lhs)}
    return {"furnaces": out}


def cmd_bench_lab(args: argparse.Namespace) -> int:
    res = bench_lab(args.samples, args.repeats)
    if args.json:
        print(json.dumps(res, sort_keys=True))
    else:
        for k, v in res["furnaces"].items():
            print(f"{k:>2} furnaces: {v['samples_per_s']:.0f} samples/s, "
                  f"{v['lab_hours_per_s']:.0f} lab h/s")
    return 0
