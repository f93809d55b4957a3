"""Benchmark figures of failures and of the two objectives (matplotlib's object API).

* ``failures.png``: failed syntheses per campaign (the target below the majority phase as
  measured), mean with its 95 % bootstrap interval per planner, one dot per seed; one panel
  per system.
* ``pareto.png``: lab hours against buildable performance (fraction of the oracle) of the
  Pareto front of each multi-objective planner's median campaign (the campaign with the
  median hypervolume), beside the GP's and random search's for reference; one panel per
  system (:mod:`.objectives`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .metrics import cell_oracle
from .objectives import pareto_front, reference_hours
from .planners import MULTI_OBJECTIVE
from .statistics import bootstrap_mean

#: planners drawn in the Pareto figure beside the multi-objective ones
PARETO_REFERENCES = ("gp", "random")


def _planners(recs: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["cell"]["planner"] for r in recs))


def _panels(n: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(max(width * n, 7.0), height), layout="constrained")
    return fig, np.atleast_1d(fig.subplots(1, n))


def failures_figure(result, systems: dict[str, list[dict]]) -> Figure:
    """Failed syntheses per campaign, per planner and system (see the module docstring)."""
    fig, axes = _panels(len(systems), 4.8, 4.2)
    rng = np.random.default_rng(0)  # the dots' jitter only
    for ax, (_, recs) in zip(axes, systems.items(), strict=True):
        planners = _planners(recs)
        for k, p in enumerate(planners):
            fails = np.array([sum(not e["success"] for e in r["experiments"]) for r in recs
                              if r["cell"]["planner"] == p], dtype=float)
            ci = bootstrap_mean(fails)
            ax.scatter(k + rng.uniform(-0.18, 0.18, fails.size), fails, s=9, color="0.65", zorder=1,
                       label="one campaign (seed)" if k == 0 else None)
            ax.errorbar([k], [ci.mean], yerr=[[ci.mean - ci.low], [ci.high - ci.mean]], fmt="o", color="tab:blue",
                        capsize=4, zorder=3, label="mean, 95 % bootstrap interval" if k == 0 else None)
        ax.set_xticks(range(len(planners)), planners, rotation=35, ha="right", fontsize=8)
        budget = recs[0]["cell"]["budget"]
        ax.set_ylabel(f"failed syntheses per campaign (of {budget})")
        ax.set_ylim(-0.5, budget + 0.5)
        ax.set_title(recs[0]["system_name"])
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    seeds = len(recs) // max(len(_planners(recs)), 1)
    fig.suptitle(f"Failed syntheses (target below the majority phase as measured), {seeds} seeds")
    return fig


def _median_campaign(runs: list[dict], result) -> dict:
    """The campaign of ``runs`` (one planner, one system) with the median hypervolume, as the
    table's rows score it."""
    hv = {(r["system_key"], r["planner"], r["seed"]): r["hypervolume"] for r in result.rows}
    ranked = sorted(runs, key=lambda r: hv[r["cell"]["system_key"], r["cell"]["planner"], r["cell"]["seed"]])
    return ranked[len(ranked) // 2]


def pareto_figure(result, systems: dict[str, list[dict]]) -> Figure | None:
    """The median campaign's Pareto front of each multi-objective planner (and the
    references); None when no multi-objective planner ran."""
    if not any(r["cell"]["planner"] in MULTI_OBJECTIVE for recs in systems.values() for r in recs):
        return None
    fig, axes = _panels(len(systems), 4.8, 4.4)
    ref = reference_hours()
    order = list(dict.fromkeys(p for recs in systems.values() for p in _planners(recs)
                               if p in MULTI_OBJECTIVE or p in PARETO_REFERENCES))
    colours = {p: f"C{k}" for k, p in enumerate(order)}  # one colour per planner in every panel
    for ax, (_, recs) in zip(axes, systems.items(), strict=True):
        for p in [p for p in _planners(recs) if p in colours]:
            r = _median_campaign([r for r in recs if r["cell"]["planner"] == p], result)
            ex = r["experiments"]
            hours = np.array([e["lab_hours"] for e in ex])
            frac = np.array([e["buildable"] for e in ex]) / cell_oracle(result, r)
            idx = pareto_front(hours, frac)
            kind = "multi-objective" if p in MULTI_OBJECTIVE else "reference"
            ax.step(np.append(hours[idx], ref), np.append(frac[idx], frac[idx][-1]), where="post",
                    linestyle="-" if p in MULTI_OBJECTIVE else ":", color=colours[p], label=f"{p} ({kind}): front")
            ax.scatter(hours, frac, s=8, color=colours[p], alpha=0.35)
        ax.set_xscale("log")
        ax.set_xlim(right=ref)
        ax.set_xlabel("lab hours of the experiment (h, log scale)")
        ax.set_ylabel("buildable performance, fraction of the oracle")
        ax.set_ylim(-0.02, 1.05)
        ax.set_title(recs[0]["system_name"])
        ax.grid(alpha=0.3)
    handles: dict = {}
    for ax in axes:  # every planner once, below the panels: never over a front
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    per_row = max(1, int(fig.get_figwidth() // 3.2))  # legend columns that fit the figure's width
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncol=min(per_row, len(handles)), fontsize=8, frameon=False)
    fig.suptitle("Pareto fronts of the median campaign (by hypervolume) of each planner\n"
                 "lines: its non-dominated experiments; dots: all its experiments, in its colour;\n"
                 f"hypervolume box to {ref:.0f} h", fontsize=10)
    return fig
