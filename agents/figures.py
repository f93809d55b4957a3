"""Benchmark figures, drawn from the runs (matplotlib's object API; no pyplot state).

* ``regret_<system>.png`` and ``regret_hours_<system>.png``: median simple regret (1 -
  buildable performance as a fraction of the oracle; band: interquartile range over the
  seeds) against the number of experiments, and against simulated lab hours: one panel per
  planner on shared axes, random search in grey in each for reference.
* ``fig2_1_synthesis_gap.png`` (the seed's figure 2.1): each target's theoretical
  performance against its synthesis difficulty (1 - success rate of every experiment
  aimed at it in this benchmark), with the thermodynamics-only pick and the
  synthesis-aware pick marked, and the buildable performance each actually reached
  (property unit on the plot, fraction of the oracle in the legend).
* ``fig2_2_drift.png`` (figure 2.2): performance against furnace temperature offset for
  the two planners' recommended recipes (median seed), the ±1 sd drift band shaded; the
  property and its unit on the y axis.
* ``failures.png`` and ``pareto.png``: failed syntheses and the two objectives' fronts
  (:mod:`.figures_objectives`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from synthgap.envs.buildable import fraction_of_oracle, performance_at_offsets
from synthgap.envs.chemistry import Recipe, RecipeBatch, load_system
from synthgap.envs.lab.thermal import FURNACE_OFFSET_SD_K

from .metrics import campaign_metrics, cell_oracle, curve_quantiles, on_hours_grid

PICKS = (("thermo_only", "tab:red", "o", "thermodynamics-only pick"),
         ("synthesis_aware", "tab:green", "*", "synthesis-aware pick"))


def _by_system(result):
    systems: dict[str, list[dict]] = {}
    for rec in result.cells.values():
        systems.setdefault(rec["cell"]["system_key"], []).append(rec)
    return systems


def _median_seed_recipe(recs: list[dict]) -> tuple[Recipe, float] | None:
    if not recs:
        return None
    finals = []
    for r in recs:
        ex = r["experiments"]
        i = int(np.argmax([e["performance"] for e in ex]))
        finals.append((ex[i]["buildable"], ex[i]["recipe"]))
    finals.sort(key=lambda f: f[0])
    b, recipe = finals[len(finals) // 2]
    return Recipe.from_dict(recipe), b


def _property_label(system) -> str:
    """The performance property of ``system``'s targets with its unit (or "dimensionless")."""
    model = next(iter(system.targets.values())).performance
    return f"{model.property}, {model.unit}" if model.unit else f"{model.property}, dimensionless"


def _regret_curves(result, recs: list[dict], grid_h: np.ndarray | None) -> dict[str, dict]:
    """Planner -> quantiles (:func:`.metrics.curve_quantiles`) of its seeds' regret curves,
    per experiment (``grid_h`` None) or read on the lab-hours grid ``grid_h`` (h)."""
    out = {}
    for p in dict.fromkeys(r["cell"]["planner"] for r in recs):
        curves = []
        for r in (r for r in recs if r["cell"]["planner"] == p):
            ex = r["experiments"]
            m = campaign_metrics([e["performance"] for e in ex], [e["buildable"] for e in ex],
                                 [e["lab_hours"] for e in ex], cell_oracle(result, r))
            reg = np.asarray(m["regret"])
            curves.append(reg if grid_h is None else on_hours_grid(reg, np.asarray(m["cum_hours"]), grid_h, 1.0))
        out[p] = curve_quantiles(np.array(curves))
    return out


def regret_figure(result, system_key: str, recs: list[dict], hours: bool = False) -> Figure:
    """Simple regret per planner, one panel each on shared axes, random search in grey in
    every panel; against experiments, or against simulated lab hours (``hours``)."""
    oracles = [cell_oracle(result, r) for r in recs]  # one per campaign in held-out worlds
    oracle = float(np.mean(oracles))
    grid_h = None
    if hours:
        grid_h = np.linspace(0, max(sum(e["lab_hours"] for e in r["experiments"]) for r in recs), 200)
    q = _regret_curves(result, recs, grid_h)
    planners = list(q)
    ncol = min(3, len(planners))
    nrow = -(-len(planners) // ncol)
    fig = Figure(figsize=(3.6 * ncol + 0.6, 2.5 * nrow + 1.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False)).ravel()
    cycle = iter([f"C{i}" for i in range(10) if i != 7] * len(planners))  # C7 is grey: random search's
    colours = {p: "0.45" if p == "random" else next(cycle) for p in planners}
    for k, (ax, p) in enumerate(zip(axes, planners, strict=False)):
        shown = [("random", "0.55", 1)] if "random" in q and p != "random" else []
        for name, colour, z in [*shown, (p, colours[p], 2)]:
            x = grid_h if hours else np.arange(1, len(q[name]["median"]) + 1)
            ax.plot(x, q[name]["median"], color=colour, lw=1.8 if z == 2 else 1.2, zorder=z + 1,
                    drawstyle="steps-post")
            ax.fill_between(x, q[name]["q25"], q[name]["q75"], color=colour, alpha=0.2 if z == 2 else 0.15,
                            lw=0, zorder=z, step="post")
        ax.set_title(p, fontsize=10, color=colours[p])
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if k + ncol >= len(planners):  # the lowest panel of its column
            ax.set_xlabel("simulated lab hours, h" if hours else "experiments (count)")
            ax.tick_params(labelbottom=True)
    for ax in axes[len(planners):]:
        ax.set_visible(False)
    fig.supylabel("simple regret, fraction of the oracle\n(1 - best buildable / oracle)")
    seeds = len(recs) // max(len(planners), 1)
    worlds = "held-out worlds" if len(set(oracles)) > 1 else "seeds"
    model = next(iter(load_system(recs[0]["cell"]["system"]).targets.values())).performance
    where = (f"{'mean oracle of the held-out worlds' if len(set(oracles)) > 1 else 'oracle'}: {model.property} "
             f"{oracle:.4g}{' ' + model.unit if model.unit else ''}")
    fig.legend(handles=[Line2D([], [], color="k", lw=1.8, label=f"planner: median over {seeds} {worlds}"),
                        Patch(facecolor="k", alpha=0.2, label=f"band: 25-75 % of the {worlds} (interquartile range)"),
                        Line2D([], [], color="0.55", lw=1.2, label="random search (reference, same seeds)")],
               loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{recs[0]['system_name']}: simple regret vs "
                 f"{'lab hours' if hours else 'experiments'}, one panel per planner ({where})", fontsize=10)
    return fig


def _legend_below(ax) -> None:
    """The panel's legend under its axes: never over a point."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1, frameon=False,
                  markerscale=0.7, borderaxespad=0.5)


def gap_figure(result, systems: dict[str, list[dict]]) -> Figure:
    from synthgap.envs.lab.plots import place_labels, renderer_of

    n = len(systems)
    fig = Figure(figsize=(max(5.0 * n, 7.5), 5.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    labels = []
    for ax, (_, recs) in zip(axes, systems.items(), strict=True):
        system = load_system(recs[0]["cell"]["system"])
        tries: Counter = Counter()
        wins: Counter = Counter()
        for r in recs:
            for e in r["experiments"]:
                tries[e["recipe"]["target"]] += 1
                wins[e["recipe"]["target"]] += bool(e["success"])
        pos, text, marks, untried = {}, [], [], []
        for t, spec in system.targets.items():
            if not tries[t]:  # no success rate: no place on a 0-1 axis
                untried.append(t)
                continue
            x = 1.0 - wins[t] / tries[t]
            y = spec.performance.theoretical
            pos[t] = x
            ax.scatter([x], [y], color="0.4", s=40, zorder=2, marker="x" if spec.unobtainium else "o", clip_on=False,
                       label=("target (x: unobtainium candidate)" if not text else None))
            text.append((t + (" (unobtainium)" if spec.unobtainium else ""), (x, y), {}))
            marks.append(((x, y), 4))
        for planner, color, marker, label in PICKS:
            runs = [r for r in recs if r["cell"]["planner"] == planner]
            if not runs:
                continue
            picks = []
            for r in runs:
                ex = r["experiments"]
                picks.append(r.get("chosen_target") or
                             ex[int(np.argmax([e["performance"] for e in ex]))]["recipe"]["target"])
            t = Counter(picks).most_common(1)[0][0]
            if t not in pos:
                continue
            y = system.targets[t].performance.theoretical
            ax.scatter([pos[t]], [y], s=260, facecolors="none", edgecolors=color, linewidths=2,
                       marker=marker, zorder=3, label=f"{label}: {t}", clip_on=False)
            marks.append(((pos[t], y), 10))
            got = _median_seed_recipe(runs)
            if got is not None:
                frac = fraction_of_oracle(got[1], float(np.mean([cell_oracle(result, r) for r in runs])))
                ax.scatter([pos[t]], [got[1]], s=80, color=color, marker=marker, zorder=3, clip_on=False,
                           label=f"{planner}: buildable reached (median seed), {frac:.2f} of the oracle")
                marks.append(((pos[t], got[1]), 6))
                ax.annotate("", (pos[t], got[1]), (pos[t], y),
                            arrowprops={"arrowstyle": "->", "color": color, "alpha": 0.6})
        ax.set_xlabel("synthesis difficulty, fraction\n(1 - success rate of the experiments aimed at it)")
        ax.set_ylabel(f"theoretical performance\n({_property_label(system)})")
        ax.set_xlim(-0.02, 1.02)
        top = max(spec.performance.theoretical for spec in system.targets.values())
        ax.set_ylim(-0.04 * top, 1.15 * top)  # room for the labels, and for a mark at 0
        ax.set_title(recs[0]["system_name"] + (f"\n(never aimed at: {', '.join(untried)})" if untried else ""),
                     fontsize=10)
        ax.grid(alpha=0.3)
        _legend_below(ax)
        labels.append((ax, text, marks))
    fig.suptitle("Theoretical performance vs synthesis difficulty (figure 2.1)", fontsize=11)
    renderer_of(fig)  # lay out once; the labels stay out of the layout, so it holds at savefig
    for ax, text, marks in labels:
        place_labels(ax, text, marks, fontsize=8)
    return fig


def drift_figure(result, systems: dict[str, list[dict]]) -> Figure:
    n = len(systems)
    fig = Figure(figsize=(max(5.0 * n, 7.5), 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    offsets = np.linspace(-50, 50, 41)
    for ax, (_, recs) in zip(axes, systems.items(), strict=True):
        system = load_system(recs[0]["cell"]["system"])
        ax.axvspan(-FURNACE_OFFSET_SD_K, FURNACE_OFFSET_SD_K, color="0.9",
                   label=f"furnace drift, ±1 sd ({FURNACE_OFFSET_SD_K:g} K)")
        for planner, color, _, label in PICKS:
            got = _median_seed_recipe([r for r in recs if r["cell"]["planner"] == planner])
            if got is None:
                continue
            recipe, _ = got
            perf = performance_at_offsets(system, RecipeBatch.from_recipes(system, [recipe]), offsets)[0]
            ax.plot(offsets, perf, color=color,
                    label=f"{label}: {recipe.target} @ {recipe.dwell_temperature:.0f} K")
        ax.set_xlabel("furnace temperature offset, K")
        ax.set_ylabel(f"performance\n({_property_label(system)})")
        ax.set_title(recs[0]["system_name"], fontsize=10)
        ax.set_ylim(bottom=-0.03 * ax.get_ylim()[1])  # a recipe that makes nothing stays in sight at 0
        ax.grid(alpha=0.3)
        _legend_below(ax)
    fig.suptitle("Performance vs furnace offset of each planner's recommendation, median seed (figure 2.2)",
                 fontsize=10)
    return fig


def write_figures(result, folder: Path) -> dict[str, str]:
    """Write every figure; return name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    systems = _by_system(result)
    files = {}
    for sk, recs in systems.items():
        for name, hours in ((f"regret_{sk}", False), (f"regret_hours_{sk}", True)):
            path = folder / f"{name}.png"
            regret_figure(result, sk, recs, hours=hours).savefig(path, dpi=110)
            files[name] = str(path)
    from .figures_objectives import failures_figure, pareto_figure

    for name, make in (("fig2_1_synthesis_gap", gap_figure), ("fig2_2_drift", drift_figure),
                       ("failures", failures_figure), ("pareto", pareto_figure)):
        fig = make(result, systems)
        if fig is None:  # e.g. no multi-objective planner ran
            continue
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=110)
        files[name] = str(path)
    return files
