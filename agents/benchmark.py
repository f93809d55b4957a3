"""The planner benchmark: systems x planners x seeds campaigns, cached, on any executor.

A *cell* is one campaign (system, planner, seed, budget). :func:`run_cell` is a pure
function of its :class:`Cell` (every random draw comes from seeds derived from it), so
the same cell gives the same numbers in this process, a process pool or a Dask worker.
Finished cells are written to ``OUT/cells/<key>.json`` and never recomputed; the oracle
of each system to ``OUT/oracle/<system>.json``.

Outputs (in ``OUT``): ``results.csv`` (one row per cell), ``summary.csv`` and
``summary.md`` (medians and IQRs over seeds per system and planner), ``figures/*.png``
and ``benchmark.json`` (configuration + summary).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from synthgap.envs.buildable import buildable_performance
from synthgap.envs.chemistry import (
    CatalogueError,
    ChemicalSystem,
    Recipe,
    RecipeBatch,
    bundled_system_names,
    load_system,
)
from synthgap.envs.lab.thermal import FURNACE_OFFSET_SD_K

from .evaluator import EVALUATORS
from .metrics import campaign_metrics, median_iqr
from .oracle import compute_oracle
from .planners import PLANNERS, make_planner
from .space import RecipeSpace

DEFAULT_PLANNERS = ("random", "sobol", "tpe", "gp", "nsga2", "thermo_only", "synthesis_aware")
EXECUTORS = ("local", "dask")
CACHE_VERSION = 2  # bump when a cell's meaning changes; old cell files are then ignored


class BenchmarkError(ValueError):
    """Bad benchmark input (unknown planner or system, bad counts); the message says which."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything a benchmark run depends on (logged as the parent run's params).

    Attributes:
        systems: bundled system names or paths of system data files.
        planners: planner names (keys of ``PLANNERS``).
        seeds: campaigns per (system, planner); seeds are 0 .. seeds-1.
        budget: experiments per campaign.
        out: output folder (cells are cached here).
        executor: ``"local"`` (process pool) or ``"dask"``.
        scheduler: Dask scheduler address; none starts a loopback LocalCluster.
        workers: worker processes (default: CPU count for local, 2 for a LocalCluster).
        batch_size: suggestions asked per round (experiments in flight together).
        evaluator: ``"simple"`` (:class:`~.evaluator.Evaluator`) or ``"twin"`` (the SimPy
            lab twin through :class:`~.evaluator.LabTwinEvaluator`).
        oracle_samples: random recipes the oracle screens per system.
        progress: show a progress bar.
    """

    systems: tuple[str, ...]
    planners: tuple[str, ...] = DEFAULT_PLANNERS
    seeds: int = 20
    budget: int = 30
    out: str = "synthgap-runs/benchmark"
    executor: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    batch_size: int = 1
    evaluator: str = "simple"
    oracle_samples: int = 200_000
    progress: bool = True

    def validate(self) -> BenchmarkConfig:
        """Raise :class:`BenchmarkError` naming the first bad field; return self."""
        if not self.systems:
            raise BenchmarkError("--systems: give at least one system name or file")
        for s in self.systems:
            try:
                load_system(s)
            except CatalogueError as exc:
                raise BenchmarkError(f"--systems: cannot load {s!r}: {exc}") from None
        unknown = [p for p in self.planners if p not in PLANNERS]
        if unknown or not self.planners:
            raise BenchmarkError(f"--planners: unknown {unknown or '(none given)'}; "
                                 f"choose from {', '.join(PLANNERS)}")
        for name in ("seeds", "budget", "batch_size", "oracle_samples"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise BenchmarkError(f"{name} must be a positive integer, got {v!r}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise BenchmarkError(f"workers must be a positive integer, got {self.workers!r}")
        if self.executor not in EXECUTORS:
            raise BenchmarkError(f"--executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.evaluator not in EVALUATORS:
            raise BenchmarkError(f"--evaluator must be one of {tuple(EVALUATORS)}, "
                                 f"got {self.evaluator!r}")
        if self.scheduler and self.executor != "dask":
            raise BenchmarkError("--scheduler needs --executor dask")
        return self


def system_key(system: str) -> str:
    """File-safe key of a system argument: the bundled name, or a file's stem + content hash."""
    if system in bundled_system_names():
        return system
    p = Path(system)
    digest = hashlib.sha1(p.read_bytes()).hexdigest()[:8] if p.exists() else "missing"
    return f"{p.stem}-{digest}"


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass(frozen=True)
class Cell:
    """One campaign of the benchmark grid."""

    system: str
    planner: str
    seed: int
    budget: int
    batch_size: int = 1
    evaluator: str = "simple"

    @property
    def key(self) -> str:
        q = f"__q{self.batch_size}" if self.batch_size != 1 else ""
        e = f"__{self.evaluator}" if self.evaluator != "simple" else ""
        return f"{system_key(self.system)}__{self.planner}__s{self.seed:03d}__b{self.budget}{q}{e}"

    def planner_seed(self) -> int:
        ss = np.random.SeedSequence([self.seed, _crc(system_key(self.system)), _crc(self.planner)])
        return int(ss.generate_state(1)[0])

    def evaluation_rng(self, i: int) -> np.random.Generator:
        """The lab noise of experiment ``i``: shared by every planner (common random numbers)."""
        return np.random.default_rng([self.seed, _crc(system_key(self.system)), i])


def score_recipes(system: ChemicalSystem, recipes: Sequence[dict]) -> list[float]:
    """Buildable performance (property unit) of each recipe (``Recipe.to_dict()`` form), as
    the cells record it; reports divide it by the oracle (:func:`.metrics.campaign_metrics`)."""
    batch = RecipeBatch.from_recipes(system, [Recipe.from_dict(r) for r in recipes])
    return [float(b) for b in buildable_performance(system, batch)]


def run_cell(cell: Cell) -> dict:
    """Run one campaign; return its raw record (JSON-serialisable)."""
    if cell.planner == "gp":
        import torch

        torch.set_num_threads(1)  # one cell per core: threads would oversubscribe the machine
    system = load_system(cell.system)
    space = RecipeSpace(system)
    planner = make_planner(cell.planner, space, cell.budget, seed=cell.planner_seed())
    evaluator = EVALUATORS[cell.evaluator](system)
    experiments, ask_seconds = [], []
    while planner.remaining:
        n = min(cell.batch_size, planner.remaining)
        t0 = time.perf_counter()
        batch = planner.ask(n)
        ask_seconds.extend([(time.perf_counter() - t0) / n] * n)
        for s in batch:
            i = len(experiments)
            res = evaluator.evaluate(s.recipe, cell.evaluation_rng(i))
            planner.tell(s.id, res)
            experiments.append({"id": s.id, "recipe": s.recipe.to_dict(), **res.to_dict()})
    for e, b in zip(experiments, score_recipes(system, [e["recipe"] for e in experiments]), strict=True):
        e["buildable"] = b
    return {
        "version": CACHE_VERSION,
        "cell": {**asdict(cell), "key": cell.key, "system_key": system_key(cell.system)},
        "system_name": system.name,
        "experiments": experiments,
        "ask_seconds": ask_seconds,
        "chosen_target": getattr(planner, "target", None),
    }


def run_oracle(system: str, n_random: int) -> dict:
    """The oracle of one system as a dict (see :func:`compute_oracle`)."""
    return {"version": CACHE_VERSION, "n_random": n_random,
            **compute_oracle(load_system(system), n_random=n_random).to_dict()}


# -- files ---------------------------------------------------------------------------------

def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if data.get("version") == CACHE_VERSION else None


def cell_path(out: Path, cell: Cell) -> Path:
    return out / "cells" / f"{cell.key}.json"


def oracle_path(out: Path, system: str, n_random: int) -> Path:
    return out / "oracle" / f"{system_key(system)}__n{n_random}.json"


# -- executors -----------------------------------------------------------------------------

@contextmanager
def open_executor(kind: str, scheduler: str | None = None, workers: int | None = None):
    """A ``concurrent.futures`` executor: a spawn process pool, or a Dask client's executor.

    Without a scheduler address, Dask runs a LocalCluster bound to 127.0.0.1 with no
    dashboard (see STACK.md: otherwise workers probe an outside address).
    """
    if kind == "local":
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                                 mp_context=multiprocessing.get_context("spawn")) as ex:
            yield ex
        return
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(host="127.0.0.1", dashboard_address=None,
                               scheduler_kwargs={"dashboard": False,
                                                 "dashboard_address": "127.0.0.1:0"},
                               n_workers=workers or 2, threads_per_worker=1, processes=True)
        client = Client(cluster)
    try:
        yield client.get_executor()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# -- the run -------------------------------------------------------------------------------

@dataclass
class BenchmarkResult:
    """What a benchmark produced.

    Attributes:
        rows: one dict per cell (``results.csv``).
        summary: one dict per (system, planner) (``summary.csv``).
        cells: cell key -> raw record.
        oracles: system key -> oracle record.
        n_computed: cells computed in this call (0 when everything came from the cache).
        files: name -> path of every output written.
    """

    rows: list[dict]
    summary: list[dict]
    cells: dict[str, dict]
    oracles: dict[str, dict]
    n_computed: int
    files: dict[str, str] = field(default_factory=dict)


def grid(config: BenchmarkConfig) -> list[Cell]:
    return [Cell(s, p, seed, config.budget, config.batch_size, config.evaluator)
            for s in config.systems for p in config.planners for seed in range(config.seeds)]


class BenchmarkTracker(Protocol):
    """Records a finished benchmark somewhere (``synthgap benchmark`` passes MLflow's,
    :func:`synthgap.experiments.tracking.log_benchmark`)."""

    def __call__(self, config: BenchmarkConfig, result: BenchmarkResult, out: Path) -> dict[str, str]:
        """Record ``result`` (written to folder ``out``); return entries for ``result.files``
        (e.g. the run id)."""
        ...


def run_benchmark(config: BenchmarkConfig, tracker: BenchmarkTracker | None = None) -> BenchmarkResult:
    """Run (or resume) a benchmark, write its tables and figures, then give it to ``tracker``."""
    config.validate()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    cells = grid(config)
    records: dict[str, dict] = {}
    todo = []
    for c in cells:
        rec = _read_json(cell_path(out, c))
        if rec is not None:
            records[c.key] = rec
        else:
            todo.append(c)
    oracles: dict[str, dict] = {}
    oracle_todo = []
    for s in config.systems:
        rec = _read_json(oracle_path(out, s, config.oracle_samples))
        if rec is not None:
            oracles[system_key(s)] = rec
        else:
            oracle_todo.append(s)
    if todo or oracle_todo:
        _compute(config, out, todo, oracle_todo, records, oracles)
    result = summarise(config, cells, records, oracles)
    result.n_computed = len(todo)
    result.files.update(write_outputs(config, out, result))
    if tracker is not None:
        result.files.update(tracker(config, result, out))
    return result


def _compute(config, out, todo, oracle_todo, records, oracles) -> None:
    from tqdm.auto import tqdm

    with open_executor(config.executor, config.scheduler, config.workers) as ex:
        futures: dict[Future, tuple[str, object]] = {}
        # oracles first: they are the longest tasks
        for s in oracle_todo:
            futures[ex.submit(run_oracle, s, config.oracle_samples)] = ("oracle", s)
        for c in todo:
            futures[ex.submit(run_cell, c)] = ("cell", c)
        bar = tqdm(total=len(futures), desc="benchmark", unit="task",
                   disable=None if config.progress else True)
        try:
            for fut in as_completed(futures):
                kind, what = futures[fut]
                rec = fut.result()
                if kind == "oracle":
                    _write_json(oracle_path(out, what, config.oracle_samples), rec)
                    oracles[system_key(what)] = rec
                else:
                    _write_json(cell_path(out, what), rec)
                    records[what.key] = rec
                bar.update(1)
        finally:
            bar.close()


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        return f"{v:.4g}"
    return str(v)


def summarise(config: BenchmarkConfig, cells: Sequence[Cell], records: dict, oracles: dict
              ) -> BenchmarkResult:
    """Per-cell rows and per-(system, planner) summary from raw records."""
    rows = []
    for c in cells:
        rec = records[c.key]
        oracle = oracles[system_key(c.system)]["value"]
        ex = rec["experiments"]
        m = campaign_metrics([e["performance"] for e in ex], [e["buildable"] for e in ex],
                             [e["lab_hours"] for e in ex], oracle)
        best_i = int(np.argmax([e["performance"] for e in ex]))
        rows.append({
            "system": rec["system_name"], "system_key": system_key(c.system),
            "planner": c.planner, "seed": c.seed, "budget": c.budget, "oracle": oracle,
            "final_best": m["final_best"], "final_regret": m["final_regret"],
            "experiments_to_90": m["experiments_to_90"], "experiments_to_95": m["experiments_to_95"],
            "hours_to_90": m["hours_to_90"], "hours_to_95": m["hours_to_95"],
            "total_hours": float(sum(e["lab_hours"] for e in ex)),
            "success_rate": float(np.mean([e["success"] for e in ex])),
            "wall_ms_per_suggestion": 1e3 * float(np.mean(rec["ask_seconds"])),
            "pick_target": ex[best_i]["recipe"]["target"],
            "chosen_target": rec.get("chosen_target") or "",
        })
    summary = []
    keys = list(dict.fromkeys((r["system_key"], r["planner"]) for r in rows))
    for sk, p in keys:
        rs = [r for r in rows if r["system_key"] == sk and r["planner"] == p]
        row = {"system": rs[0]["system"], "system_key": sk, "planner": p, "seeds": len(rs),
               "budget": rs[0]["budget"], "oracle": rs[0]["oracle"]}
        for col in ("final_best", "final_regret", "experiments_to_90", "experiments_to_95",
                    "hours_to_90", "hours_to_95", "success_rate", "wall_ms_per_suggestion"):
            med, q25, q75 = median_iqr([r[col] for r in rs])
            row[f"{col}_median"], row[f"{col}_q25"], row[f"{col}_q75"] = med, q25, q75
        for f in (90, 95):
            row[f"reached_{f}"] = float(np.mean([not math.isnan(r[f"experiments_to_{f}"]) for r in rs]))
        row["pick_target"] = Counter(r["pick_target"] for r in rs).most_common(1)[0][0]
        summary.append(row)
    return BenchmarkResult(rows, summary, {c.key: records[c.key] for c in cells},
                           {system_key(s): oracles[system_key(s)] for s in config.systems}, 0)


SUMMARY_MD_COLUMNS = (
    ("system", "system"), ("planner", "planner"), ("oracle", "oracle"),
    ("final_best_median", "best buildable / oracle (median)"), ("final_best_q25", "q25"),
    ("final_best_q75", "q75"), ("final_regret_median", "regret / oracle (median)"),
    ("experiments_to_90_median", "exps to 90%"), ("experiments_to_95_median", "exps to 95%"),
    ("reached_95", "reached 95%"), ("hours_to_95_median", "lab h to 95%"),
    ("success_rate_median", "success rate"), ("wall_ms_per_suggestion_median", "ms/suggestion"),
    ("pick_target", "pick"),
)


def markdown_table(rows: Iterable[dict], columns=SUMMARY_MD_COLUMNS) -> str:
    lines = ["| " + " | ".join(h for _, h in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[k]) for k, _ in columns) + " |")
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_outputs(config: BenchmarkConfig, out: Path, result: BenchmarkResult) -> dict[str, str]:
    from .figures import write_figures

    files = {"results_csv": out / "results.csv", "summary_csv": out / "summary.csv",
             "summary_md": out / "summary.md", "benchmark_json": out / "benchmark.json"}
    _write_csv(files["results_csv"], result.rows)
    _write_csv(files["summary_csv"], result.summary)
    header = (f"# Planner benchmark\n\n{config.seeds} seeds x budget {config.budget}; "
              "best buildable performance = expected performance over furnace drift "
              f"N(0, {FURNACE_OFFSET_SD_K:g} K) of the recipe with the best measured performance, "
              "as a fraction of the oracle (the best achievable, property unit in column 'oracle'); "
              "medians and IQRs over seeds; '—' = not reached by at least half the seeds.\n\n")
    files["summary_md"].write_text(header + markdown_table(result.summary))
    files["benchmark_json"].write_text(json.dumps(
        {"config": asdict(config), "summary": result.summary, "oracles": result.oracles},
        indent=1, default=str))
    out_files = {k: str(v) for k, v in files.items()}
    out_files.update(write_figures(result, out / "figures"))
    return out_files
