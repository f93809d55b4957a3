"""The planner benchmark: systems x planners x seeds campaigns, cached, on any executor.

A *cell* is one campaign (system, planner, seed, budget). :func:`run_cell` is a pure
function of its :class:`Cell` (every random draw comes from seeds derived from it), so
the same cell gives the same numbers in this process, a process pool or a Dask worker.
Finished cells are written to ``OUT/cells/<key>.json`` and never recomputed; the oracle
of each system to ``OUT/oracle/<system>.json``.

Outputs (in ``OUT``): ``results.csv`` (one row per cell), ``summary.csv`` and
``summary.md`` (medians and IQRs over seeds per system and planner), ``figures/*.png``
and ``benchmark.json`` (configuration + summary).

This module runs the grid and keeps the cache (which cells to compute, the executors, the
cell and oracle files); the configuration and the cells are :mod:`.benchmark_cells`, the
tables :mod:`.benchmark_tables` (both re-exported here).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from .benchmark_cells import (
    CACHE_VERSION,
    DEFAULT_PLANNERS,
    EXECUTORS,
    ORACLE_VERSION,
    BenchmarkConfig,
    BenchmarkError,
    Cell,
    grid,
    oracle_key,
    oracle_tasks,
    run_cell,
    run_oracle,
    score_recipes,
    system_key,
)
from .benchmark_tables import SUMMARY_MD_COLUMNS, BenchmarkResult, markdown_table, summarise, write_outputs

__all__ = [
    "CACHE_VERSION", "DEFAULT_PLANNERS", "EXECUTORS", "BenchmarkConfig", "BenchmarkError", "BenchmarkResult",
    "BenchmarkTracker", "Cell", "SUMMARY_MD_COLUMNS", "cell_path", "grid", "markdown_table", "open_executor",
    "oracle_path", "run_benchmark", "run_cell", "run_oracle", "score_recipes", "summarise", "system_key",
    "write_outputs",
]


# -- files ---------------------------------------------------------------------------------

def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _read_json(path: Path, version: int = CACHE_VERSION) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if data.get("version") == version else None


def cell_path(out: Path, cell: Cell) -> Path:
    return out / "cells" / f"{cell.key}.json"


def oracle_path(out: Path, system: str, n_random: int, world_spread: float = 0.0,
                world_seed: int | None = None) -> Path:
    return out / "oracle" / f"{oracle_key(system, world_spread, world_seed)}__n{n_random}.json"


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
    for task in oracle_tasks(config):
        rec = _read_json(oracle_path(out, task[0], config.oracle_samples, *task[1:]), ORACLE_VERSION)
        if rec is not None:
            oracles[oracle_key(*task)] = rec
        else:
            oracle_todo.append(task)
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
        for task in oracle_todo:
            futures[ex.submit(run_oracle, task[0], config.oracle_samples, *task[1:])] = ("oracle", task)
        for c in todo:
            futures[ex.submit(run_cell, c)] = ("cell", c)
        bar = tqdm(total=len(futures), desc="benchmark", unit="task",
                   disable=None if config.progress else True)
        try:
            for fut in as_completed(futures):
                kind, what = futures[fut]
                rec = fut.result()
                if kind == "oracle":
                    _write_json(oracle_path(out, what[0], config.oracle_samples, *what[1:]), rec)
                    oracles[oracle_key(*what)] = rec
                else:
                    _write_json(cell_path(out, what), rec)
                    records[what.key] = rec
                bar.update(1)
        finally:
            bar.close()
