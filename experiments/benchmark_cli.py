"""``synthgap benchmark``: run the planner benchmark from the command line.

Example::

    synthgap benchmark --systems BaTiO3,LiMn2O4 --planners random,tpe,synthesis_aware \\
        --seeds 20 --budget 30 --out runs/bench --executor dask --workers 2

``--systems`` takes bundled names or paths of system data files (held-out tasks).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from synthgap.envs.userfiles import float_arg, int_arg

MAX_SEEDS = 1_000  # campaigns per system and planner
MAX_BUDGET = 10_000  # experiments per campaign
MAX_ORACLE_SAMPLES = 2_000_000  # random recipes the oracle screens (about 200 MB of arrays)
MAX_WORKERS = 64
# argparse checks the upper bounds; BenchmarkConfig.validate the lower ones (also for API callers)


def _json_safe(value):
    """NaN ("never reached") becomes null, so the output is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _split(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def add_benchmark_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``benchmark`` sub-command to an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser(
        "benchmark", help="benchmark planners on chemical systems",
        description="Run campaigns (systems x planners x seeds), cache each in OUT, write "
                    "tables and figures, and log to MLflow.")
    p.add_argument("--systems", required=True,
                   help="comma-separated bundled system names or system file paths")
    p.add_argument("--planners", default=None,
                   help="comma-separated names (default: every planner but lhs, as synthgap.agents.benchmark."
                        "DEFAULT_PLANNERS lists them), policy:models:/NAME@ALIAS (a trained Campaign-v0 policy) "
                        "or module:Class (your own Planner subclass, imported from the working directory)")
    p.add_argument("--seeds", type=int_arg(hi=MAX_SEEDS), default=20,
                   help=f"campaigns per system and planner, 1-{MAX_SEEDS:,}")
    p.add_argument("--budget", type=int_arg(hi=MAX_BUDGET), default=30,
                   help=f"experiments per campaign, 1-{MAX_BUDGET:,}")
    p.add_argument("--batch-size", type=int_arg(hi=MAX_BUDGET), default=1, help="suggestions asked per round")
    p.add_argument("--evaluator", choices=("simple", "twin"), default="simple",
                   help="simple noisy-furnace evaluator, or the SimPy lab twin")
    p.add_argument("--oracle-samples", type=int_arg(hi=MAX_ORACLE_SAMPLES), default=200_000,
                   help=f"random recipes the oracle screens per system, 1-{MAX_ORACLE_SAMPLES:,}")
    p.add_argument("--world-spread", type=float_arg(0.0, 10.0, ""), default=0.0,
                   help="0: every campaign in the nominal world; > 0: each seed's campaign in its own held-out "
                        "world drawn with this spread (envs/chemistry/data/world_prior.yaml), scored against "
                        "that world's oracle")
    p.add_argument("--out", default="synthgap-runs/benchmark", help="output and cache folder")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (with --executor dask)")
    p.add_argument("--workers", type=int_arg(hi=MAX_WORKERS), default=None, help=f"worker processes, 1-{MAX_WORKERS}")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=handler)
    return p


def handler(args) -> int:
    """Run the benchmark described by parsed ``args``; 0 on success.

    Raises:
        BenchmarkError: (a ValueError) on bad input, with a message naming it.
    """
    from synthgap.agents.benchmark import DEFAULT_PLANNERS, BenchmarkConfig, markdown_table, run_benchmark

    config = BenchmarkConfig(
        systems=_split(args.systems), planners=_split(args.planners) if args.planners else DEFAULT_PLANNERS,
        seeds=args.seeds,
        budget=args.budget, out=args.out, executor=args.executor, scheduler=args.scheduler,
        workers=args.workers, batch_size=args.batch_size, evaluator=args.evaluator,
        oracle_samples=args.oracle_samples, world_spread=args.world_spread,
        progress=not getattr(args, "no_progress", False),
    )
    tracker = None
    if not args.no_mlflow:
        from .tracking import log_benchmark

        tracker = log_benchmark
    result = run_benchmark(config, tracker)
    if args.json:
        json.dump(_json_safe({"summary": result.summary, "files": result.files,
                              "computed_cells": result.n_computed}),
                  sys.stdout, indent=1, default=str, allow_nan=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(markdown_table(result.summary))
        sys.stdout.write(f"\nwritten to {config.out} ({result.n_computed} cells computed)\n")
        if tracker is not None:
            from .tracking import store_uri

            sys.stdout.write(f"logged to MLflow run {result.files.get('mlflow_run_id', '?')} "
                             f"(store {store_uri(None)})\n")
    return 0
