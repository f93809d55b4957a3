"""``synthgap demo``: the main job on embedded defaults.

It shows the synthesis gap on the catalogue: for each system, the 0 K hull beside the
hull at synthesis temperature, the reaction paths with their trap, and the best recipe
a dense batched search finds for each target, buildable or not. Everything goes into
one folder (PNGs plus ``report.md``); a summary table is printed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path("synthgap-runs") / "demo"


def add_parsers(sub) -> None:
    p = sub.add_parser("demo", help="the main job: the synthesis gap on the catalogue, with a report")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"report folder (default {DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recipes", type=int, default=20_000, help="recipes searched per target")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_demo)


def run_demo(args) -> int:
    from synthgap.envs.chemistry import bundled_system_names, fire, hull_at, load_system, random_recipes
    from synthgap.envs.chemistry.firing import fire_history
    from synthgap.envs.chemistry.pathway import pathways

    from .chemistry_plots import plot_firing, plot_hulls, plot_pathways

    if args.recipes < 1:
        raise ValueError("--recipes must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    rows, lines = [], ["# synthgap demo: the synthesis gap on the catalogue", ""]
    for name in bundled_system_names():
        system = load_system(name)
        T = 1273.0
        lines += [f"## {name}", "", system.description, ""]
        plot_hulls(system, T, out / f"{name}_hull.png")
        lines.append(f"![hull]({name}_hull.png)")
        first = next(iter(system.targets))
        plot_pathways(system, first, T, pathways(system, first, T), out / f"{name}_pathway.png")
        lines.append(f"![pathways]({name}_pathway.png)")
        h0, hT = hull_at(system, 0.0), hull_at(system, T)
        for target in system.targets.values():
            batch = random_recipes(system, args.recipes, rng, target=target.phase)
            fired = fire(system, batch)
            best = int(np.argmax(fired.performance))
            recipe = batch.recipe(system, best)
            rows.append({
                "system": name, "target": target.phase, "unobtainium": target.unobtainium,
                "theoretical": target.performance.theoretical,
                "e_above_hull_0K_meV": 1e3 * h0.e_above_hull[target.phase],
                "e_above_hull_T_meV": 1e3 * hT.e_above_hull[target.phase],
                "best_measured": float(fired.performance[best]),
                "success_rate": float(np.mean(fired.target_fraction > 0.9)),
                "best_recipe": recipe.to_dict(),
            })
            if fired.performance[best] > 0:
                png = out / f"{name}_{target.phase}_best_firing.png"
                plot_firing(system, recipe, fire_history(system, recipe), png)
                lines.append(f"![best firing of {target.phase}]({png.name})")
        lines.append("")
    header = "| system | target | theoretical | 0 K hull (meV/atom) | hull at 1273 K | best made | recipes >90 % pure |"
    table = [header, "|" + "---|" * 7]
    for r in rows:
        flag = " (unobtainium)" if r["unobtainium"] else ""
        table.append(f"| {r['system']} | {r['target']}{flag} | {r['theoretical']:g} | "
                     f"{r['e_above_hull_0K_meV']:.1f} | {r['e_above_hull_T_meV']:.1f} | "
                     f"{r['best_measured']:.4g} | {100 * r['success_rate']:.1f} % |")
    lines = lines[:2] + table + [""] + lines[2:]
    (out / "report.md").write_text("\n".join(lines))
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"out": str(out), "seconds": elapsed, "targets": rows}))
    else:
        print("\n".join(table))
        print(f"\nreport: {out / 'report.md'}  ({elapsed:.0f} s)")
    return 0
