"""Benchmark figures, drawn from the runs (matplotlib's object API; no pyplot state).

* ``regret_<system>.png``: median simple regret (1 - buildable performance as a fraction
  of the oracle; IQR band) per planner against the number of experiments and against
  simulated lab hours.
* ``fig2_1_synthesis_gap.png`` (the seed's figure 2.1): each target's theoretical
  performance against its synthesis difficulty (1 - success rate of every experiment
  aimed at it in this benchmark), with the thermodynamics-only pick and the
  synthesis-aware pick marked, and the buildable performance each actually reached
  (property unit on the plot, fraction of the oracle in the legend).
* ``fig2_2_drift.png`` (figure 2.2): performance against furnace temperature offset for
  the two planners' recommended recipes (median seed), the N(0, 10 K) drift band shaded.
* ``failures.png`` and ``pareto.png``: failed syntheses and the two objectives' fronts
  (:mod:`.figures_objectives`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

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


def regret_figure(result, system_key: str, recs: list[dict]) -> Figure:
    oracles = [cell_oracle(result, r) for r in recs]  # one per campaign in held-out worlds
    oracle = float(np.mean(oracles))
    planners = list(dict.fromkeys(r["cell"]["planner"] for r in recs))
    fig = Figure(figsize=(10, 4.6 + 0.2 * ((len(planners) + 2) // 3)), layout="constrained")
    ax_n, ax_h = fig.subplots(1, 2)
    max_h = max(sum(e["lab_hours"] for e in r["experiments"]) for r in recs)
    grid_h = np.linspace(0, max_h, 200)
    for p in planners:
        runs = [r for r in recs if r["cell"]["planner"] == p]
        curves, on_h = [], []
        for r in runs:
            ex = r["experiments"]
            m = campaign_metrics([e["performance"] for e in ex], [e["buildable"] for e in ex],
                                 [e["lab_hours"] for e in ex], cell_oracle(result, r))
            reg = np.asarray(m["regret"])
            curves.append(reg)
            on_h.append(on_hours_grid(reg, np.asarray(m["cum_hours"]), grid_h, 1.0))
        q = curve_quantiles(np.array(curves))
        n = np.arange(1, len(q["median"]) + 1)
        (line,) = ax_n.plot(n, q["median"], label=p)
        ax_n.fill_between(n, q["q25"], q["q75"], color=line.get_color(), alpha=0.15)
        qh = curve_quantiles(np.array(on_h))
        ax_h.plot(grid_h, qh["median"], color=line.get_color(), label=p)
        ax_h.fill_between(grid_h, qh["q25"], qh["q75"], color=line.get_color(), alpha=0.15)
    for ax, xl in ((ax_n, "experiments"), (ax_h, "simulated lab hours")):
        ax.set_xlabel(xl)
        ax.set_ylabel("simple regret (fraction of the oracle)")
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        ax.grid(alpha=0.3)
    handles, labels = ax_n.get_legend_handles_labels()  # below the plots: never over the curves
    fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    where = f"mean oracle of the held-out worlds {oracle:.4g}" if len(set(oracles)) > 1 else f"oracle {oracle:.4g}"
    fig.suptitle(f"{recs[0]['system_name']}: regret vs effort over {len(recs) // max(len(planners), 1)} seeds\n"
                 f"(lines: median; bands: 25-75 % of seeds; {where})")
    return fig


def gap_figure(result, systems: dict[str, list[dict]]) -> Figure:
    n = len(systems)
    fig = Figure(figsize=(max(4.5 * n, 7.0), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    for ax, (_, recs) in zip(axes, systems.items(), strict=True):
        system = load_system(recs[0]["cell"]["system"])
        tries: Counter = Counter()
        wins: Counter = Counter()
        for r in recs:
            for e in r["experiments"]:
                tries[e["recipe"]["target"]] += 1
                wins[e["recipe"]["target"]] += bool(e["success"])
        pos = {}
        for t, spec in system.targets.items():
            x = 1.0 - wins[t] / tries[t] if tries[t] else 1.05
            y = spec.performance.theoretical
            pos[t] = x
            ax.scatter([x], [y], color="0.4", s=40, zorder=2,
                       marker="x" if spec.unobtainium else "o")
            ax.annotate(t + (" (unobtainium)" if spec.unobtainium else ""), (x, y),
                        textcoords="offset points", xytext=(5, 5), fontsize=8)
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
            y = system.targets[t].performance.theoretical
            ax.scatter([pos[t]], [y], s=260, facecolors="none", edgecolors=color, linewidths=2,
                       marker=marker, zorder=3, label=label)
            got = _median_seed_recipe(runs)
            if got is not None:
                frac = fraction_of_oracle(got[1], float(np.mean([cell_oracle(result, r) for r in runs])))
                ax.scatter([pos[t]], [got[1]], s=80, color=color, marker=marker, zorder=3,
                           label=f"{planner}: buildable reached ({frac:.2f} of the oracle)")
                ax.annotate("", (pos[t], got[1]), (pos[t], y),
                            arrowprops={"arrowstyle": "->", "color": color, "alpha": 0.6})
        ax.set_xlabel("synthesis difficulty (1 - success rate in this benchmark)")
        model = next(iter(system.targets.values())).performance
        unit = f", {model.unit}" if model.unit else ""  # relative permittivity has none
        ax.set_ylabel(f"theoretical performance\n({model.property}{unit})", fontsize=8)
        ax.set_xlim(-0.05, 1.2)
        top = max(spec.performance.theoretical for spec in system.targets.values())
        ax.set_ylim(0, 1.15 * top)  # room for the labels under the title
        ax.set_title(recs[0]["system_name"])
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # the picks: only when thermo_only or synthesis_aware ran
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Theoretical performance vs synthesis difficulty (figure 2.1)")
    return fig


def drift_figure(result, systems: dict[str, list[dict]]) -> Figure:
    n = len(systems)
    fig = Figure(figsize=(max(4.5 * n, 7.0), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    offsets = np.linspace(-50, 50, 41)
    for ax, (_, recs) in zip(axes, systems.items(), strict=True):
        system = load_system(recs[0]["cell"]["system"])
        ax.axvspan(-FURNACE_OFFSET_SD_K, FURNACE_OFFSET_SD_K, color="0.9", label="±1 sd drift")
        for planner, color, _, label in PICKS:
            got = _median_seed_recipe([r for r in recs if r["cell"]["planner"] == planner])
            if got is None:
                continue
            recipe, _ = got
            perf = performance_at_offsets(system, RecipeBatch.from_recipes(system, [recipe]), offsets)[0]
            ax.plot(offsets, perf, color=color,
                    label=f"{label}: {recipe.target} @ {recipe.dwell_temperature:.0f} K")
        ax.set_xlabel("furnace temperature offset (K)")
        ax.set_ylabel("performance")
        ax.set_title(recs[0]["system_name"])
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Performance vs furnace offset of each planner's recommendation (figure 2.2)")
    return fig


def write_figures(result, folder: Path) -> dict[str, str]:
    """Write every figure; return name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    systems = _by_system(result)
    files = {}
    for sk, recs in systems.items():
        path = folder / f"regret_{sk}.png"
        regret_figure(result, sk, recs).savefig(path, dpi=110)
        files[f"regret_{sk}"] = str(path)
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
