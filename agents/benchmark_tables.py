"""The benchmark's tables: per-cell rows, per-(system, planner) summaries, and the files they go to.

From the raw cell and oracle records (:mod:`.benchmark_cells`): ``results.csv`` (one row
per cell), ``summary.csv`` and ``summary.md`` (medians and IQRs over seeds per system and
planner; best buildable performance as a mean with its bootstrap interval and paired tests
against random search and the best BO planner, regret as a fraction of the oracle, lab hours
in h, wall time in ms per suggestion), ``benchmark.json`` (configuration + summary) and the
figures (:mod:`.figures`).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from synthgap.envs.lab.thermal import FURNACE_OFFSET_SD_K

from .benchmark_cells import BenchmarkConfig, Cell, system_key
from .metrics import campaign_metrics, median_iqr
from .objectives import hypervolume, reference_hours
from .statistics import bootstrap_mean, paired_wilcoxon


@dataclass
class BenchmarkResult:
    """What a benchmark produced.

    Attributes:
        rows: one dict per cell (``results.csv``).
        summary: one dict per (system, planner) (``summary.csv``).
        cells: cell key -> raw record.
        oracles: oracle key (system key, or the system key and world) -> oracle record.
        n_computed: cells computed in this call (0 when everything came from the cache).
        files: name -> path of every output written.
    """

    rows: list[dict]
    summary: list[dict]
    cells: dict[str, dict]
    oracles: dict[str, dict]
    n_computed: int
    files: dict[str, str] = field(default_factory=dict)


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        return f"{v:.4g}"
    return str(v)


def _property(system) -> str:
    """The property the system's targets are scored on, with its unit (``relative permittivity
    (dimensionless)``): the unit of the oracle column."""
    from synthgap.envs.chemistry import load_system

    perf = next(iter(load_system(system).targets.values())).performance
    return f"{perf.property} ({perf.unit or 'dimensionless'})"


def summarise(config: BenchmarkConfig, cells: Sequence[Cell], records: dict, oracles: dict
              ) -> BenchmarkResult:
    """Per-cell rows and per-(system, planner) summary from raw records."""
    rows = []
    for c in cells:
        rec = records[c.key]
        oracle = oracles[c.oracle_key]["value"]
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
            "failures": int(sum(not e["success"] for e in ex)),
            "hypervolume": hypervolume([e["lab_hours"] for e in ex], np.asarray([e["buildable"] for e in ex]) / oracle),
            "wall_ms_per_suggestion": 1e3 * float(np.mean(rec["ask_seconds"])),
            "pick_target": ex[best_i]["recipe"]["target"],
            "chosen_target": rec.get("chosen_target") or "",
        })
    summary = []
    keys = list(dict.fromkeys((r["system_key"], r["planner"]) for r in rows))
    for sk, p in keys:
        rs = [r for r in rows if r["system_key"] == sk and r["planner"] == p]
        row = {"system": rs[0]["system"], "system_key": sk, "planner": p, "seeds": len(rs),
               "budget": rs[0]["budget"], "oracle": float(np.mean([r["oracle"] for r in rs])),
               "property": _property(next(c.system for c in cells if system_key(c.system) == sk))}
        for col in ("final_best", "final_regret", "experiments_to_90", "experiments_to_95",
                    "hours_to_90", "hours_to_95", "success_rate", "wall_ms_per_suggestion"):
            med, q25, q75 = median_iqr([r[col] for r in rs])
            row[f"{col}_median"], row[f"{col}_q25"], row[f"{col}_q75"] = med, q25, q75
        for f in (90, 95):
            row[f"reached_{f}"] = float(np.mean([not math.isnan(r[f"experiments_to_{f}"]) for r in rs]))
        row["pick_target"] = Counter(r["pick_target"] for r in rs).most_common(1)[0][0]
        first = records[next(c.key for c in cells if c.planner == p)]
        row["training_experiments"] = int(first.get("training_experiments", 0))
        trained_on = first.get("training_systems") or []
        # a policy's campaign in a system it never trained on: the held-out-system result
        row["held_out_system"] = ("" if not trained_on else "no" if rs[0]["system"] in trained_on else "yes")
        for col in ("final_best", "failures", "hypervolume"):
            ci = bootstrap_mean([r[col] for r in rs])
            row[f"{col}_mean"], row[f"{col}_ci_low"], row[f"{col}_ci_high"] = ci.mean, ci.low, ci.high
        summary.append(row)
    _paired_tests(rows, summary)
    return BenchmarkResult(rows, summary, {c.key: records[c.key] for c in cells},
                           {c.oracle_key: oracles[c.oracle_key] for c in cells}, 0)


#: the Bayesian-optimisation planners a planner is compared with (the best of them by mean, per system)
BO_PLANNERS = ("gp", "gp_feasible", "tpe", "nsga2", "gp_mo")


def _paired_tests(rows: list[dict], summary: list[dict]) -> None:
    """Add to each summary row the paired Wilcoxon p-values (same seeds) of its final best
    buildable performance against random search (``p_vs_random``) and against the best BO
    planner of its system by mean (``p_vs_best_bo``, naming it in ``best_bo``), and of its
    failed syntheses against the GP's (``p_failures_vs_gp``); NaN where the reference is
    missing, is the planner itself, or the seeds do not pair."""
    def by_seed(sk: str, planner: str, col: str) -> dict[int, float]:
        return {r["seed"]: r[col] for r in rows if r["system_key"] == sk and r["planner"] == planner}

    for row in summary:
        sk = row["system_key"]
        bo = [s for s in summary if s["system_key"] == sk and s["planner"] in BO_PLANNERS]
        best_bo = max(bo, key=lambda s: s["final_best_mean"])["planner"] if bo else ""
        row["best_bo"] = best_bo
        for key, ref, col in (("p_vs_random", "random", "final_best"), ("p_vs_best_bo", best_bo, "final_best"),
                              ("p_failures_vs_gp", "gp", "failures")):
            mine = by_seed(sk, row["planner"], col)
            theirs = by_seed(sk, ref, col) if ref and ref != row["planner"] else {}
            seeds = sorted(set(mine) & set(theirs))
            row[key] = (paired_wilcoxon([mine[k] for k in seeds], [theirs[k] for k in seeds])
                        if len(seeds) >= 2 and len(seeds) == len(mine) else math.nan)


SUMMARY_MD_COLUMNS = (  # (key, header with its unit)
    ("system", "system"), ("planner", "planner"), ("oracle", "oracle (property unit in 'property')"),
    ("property", "property (unit)"),
    ("final_best_mean", "best buildable / oracle (mean, fraction)"), ("final_best_ci_low", "95 % CI low"),
    ("final_best_ci_high", "95 % CI high"), ("final_best_median", "median (fraction)"),
    ("p_vs_random", "p vs random"), ("p_vs_best_bo", "p vs best BO"), ("best_bo", "best BO"),
    ("final_regret_median", "regret / oracle (median, fraction)"),
    ("experiments_to_90_median", "experiments to 90 % (median, count)"),
    ("experiments_to_95_median", "experiments to 95 % (median, count)"),
    ("reached_95", "reached 95 % (fraction of seeds)"), ("hours_to_95_median", "lab hours to 95 % (median, h)"),
    ("success_rate_median", "success rate (median, fraction)"),
    ("failures_mean", "failed syntheses per campaign (mean, count)"),
    ("p_failures_vs_gp", "p failures vs gp"), ("hypervolume_mean", "hypervolume (mean, fraction of the box)"),
    ("wall_ms_per_suggestion_median", "wall time per suggestion (median, ms)"),
    ("training_experiments", "experiments in training (count)"),
    ("held_out_system", "system held out of training"),
    ("pick_target", "pick (most frequent best target)"),
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
              "means with 95 % bootstrap intervals over seeds, paired Wilcoxon p-values (same seeds) "
              "against random search and against the best Bayesian-optimisation planner by mean; failed "
              "syntheses (target below the majority phase as measured) per campaign as means, paired against "
              "the GP; hypervolume: the area the campaign's experiments dominate in (lab hours, buildable / "
              f"oracle), as a fraction of the box [0, {reference_hours():.4g} h] x [0, 1] (the slowest recipe "
              "the limits allow); other columns medians over seeds (lab hours in h, wall time in ms); '—' = "
              "not reached by at least half the seeds.\n\n")
    files["summary_md"].write_text(header + markdown_table(result.summary))
    files["benchmark_json"].write_text(json.dumps(
        {"config": asdict(config), "summary": result.summary, "oracles": result.oracles},
        indent=1, default=str))
    out_files = {k: str(v) for k, v in files.items()}
    out_files.update(write_figures(result, out / "figures"))
    return out_files
