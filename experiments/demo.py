"""``synthgap demo``: the main job, on embedded defaults, in a few minutes on 2 cores.

1. The synthesis gap on the catalogue: for every target, the 0 K hull against the hull
   at synthesis temperature and the best recipe a dense batched search finds.
2. A PPO policy trained on ``synthgap/Campaign-v0`` in training worlds (through ``synthgap
   train`` on the native vector env, 64 campaigns at a time: tracked in MLflow, registered,
   hash-checked when loaded back), compared with random search in held-out worlds on the
   SimPy twin, same budget, same seeded campaigns, paired.
3. A report (Markdown and PNGs) in one folder, one MLflow run holding it, and a summary
   table on stdout with how to open the UI.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path("synthgap-runs") / "demo"
CAMPAIGN = "synthgap/Campaign-v0"
TRAIN_CAMPAIGNS = 64  # campaigns the native vector env steps together in training


def add_parsers(sub) -> None:
    p = sub.add_parser("demo", help="the main job: the synthesis gap, a trained policy against random search, a report")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"report folder (default {DEFAULT_OUT})")
    p.add_argument("--system", default="BaTiO3", help="system the policy is trained on")
    from synthgap.envs.userfiles import int_arg

    from .cli_common import tracking_uri

    # argparse checks the upper bounds, _check the lower ones

    p.add_argument("--budget", type=int_arg(hi=1_000), default=10, help="experiments per campaign, 1-1000")
    p.add_argument("--timesteps", type=int_arg(hi=10**9), default=600_000,
                   help=f"PPO training steps (experiments, {TRAIN_CAMPAIGNS} campaigns at a time)")
    p.add_argument("--campaigns", type=int_arg(hi=1_000), default=30,
                   help="seeded evaluation campaigns per policy (paired by seed), 1-1000; 20 or more for the "
                        "paired test to mean something")
    p.add_argument("--recipes", type=int_arg(hi=1_000_000), default=20_000,
                   help="recipes searched per target in the overview, 1-1,000,000")
    p.add_argument("--seed", type=int_arg(0, 2**32 - 1), default=0)
    p.add_argument("--tracking-uri", default=None, type=tracking_uri,
                   help="MLflow store (default: sqlite:///synthgap-runs/mlflow.db)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_demo)


def _check(args) -> None:
    for name in ("budget", "timesteps", "campaigns", "recipes"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")


def hull_png(system: str) -> str:
    """The one hull figure of a system in the report folder (0 K beside 1273 K)."""
    return f"{system}_hull.png"


def overview(out: Path, rng: np.random.Generator, recipes: int) -> tuple[list[dict], list[str]]:
    """The synthesis gap on the catalogue: hull plots and the best recipe of every target."""
    from synthgap.envs.chemistry import bundled_system_names, fire, hull_at, load_system, random_recipes
    from synthgap.envs.chemistry.pathway import pathways

    from .chemistry_plots import plot_hulls, plot_pathways

    rows, lines = [], []
    for name in bundled_system_names():
        system = load_system(name)
        T = 1273.0
        plot_hulls(system, T, out / hull_png(name))
        first = next(iter(system.targets))
        plot_pathways(system, first, T, pathways(system, first, T), out / f"{name}_pathway.png")
        lines += [f"### {name}", "", system.description, "", f"![hull]({hull_png(name)})",
                  f"![pathways]({name}_pathway.png)", ""]
        h0, hT = hull_at(system, 0.0), hull_at(system, T)
        for target in system.targets.values():
            fired = fire(system, random_recipes(system, recipes, rng, target=target.phase))
            rows.append({
                "system": name, "target": target.phase, "unobtainium": target.unobtainium,
                "theoretical": target.performance.theoretical,
                "e_above_hull_0K_meV": 1e3 * h0.e_above_hull[target.phase],
                "e_above_hull_T_meV": 1e3 * hT.e_above_hull[target.phase],
                "best_made": float(fired.performance.max()),
                "success_rate": float(np.mean(fired.target_fraction > 0.9)),
            })
    return rows, lines


def train_policy(args, out: Path) -> dict:
    """Train PPO on Campaign-v0 through ``synthgap train``'s own code; returns its summary."""
    from .train_cli import parse_train_args, train_run

    env_kwargs = {"system": args.system, "budget": args.budget, "split": "train"}
    config = out / "ppo.yaml"
    # 64 campaigns per call of the native vector env (batched labs, the twin's noise model),
    # rollouts of 2,048 experiments; seeded, so the run reproduces
    config.write_text(f"net_arch: [128, 128]\nn_envs: {TRAIN_CAMPAIGNS}\nvectorization: native\n"
                      f"n_steps: {2048 // TRAIN_CAMPAIGNS}\nbatch_size: 512\nlearning_rate: 0.0003\nn_epochs: 5\n"
                      "eval_episodes: 5\n")
    every = str(max(args.timesteps // 5, 1))  # five evaluations and checkpoints per run
    argv = ["--env", CAMPAIGN, "--algo", "ppo", "--timesteps", str(args.timesteps), "--seed", str(args.seed),
            "--config", str(config), "--env-kwargs", json.dumps(env_kwargs), "--eval-freq", every,
            "--checkpoint-freq", every, "--out", str(out / "train"),
            "--register-as", f"synthgap-demo-{args.system}-ppo"]
    if args.tracking_uri:
        argv += ["--tracking-uri", args.tracking_uri]
    if args.no_progress:
        argv.append("--no-progress")
    with contextlib.redirect_stdout(sys.stderr):  # the progress bar writes to stdout; ours is the summary
        return train_run(parse_train_args(argv))


def compare(args, model_uri: str) -> dict:
    """The registered policy (loaded hash-checked) against random search, same seeded campaigns."""
    from synthgap.agents.rl.evaluation import random_actor, run_episodes
    from synthgap.agents.rl.registry import load_policy

    env_kwargs = {"system": args.system, "budget": args.budget, "split": "test"}  # worlds never seen in training
    policy = load_policy(model_uri, tracking_uri=args.tracking_uri)
    seed = 10_000 + args.seed
    trained = run_episodes(policy.predict, CAMPAIGN, env_kwargs, args.campaigns, seed)
    rand = run_episodes(random_actor(CAMPAIGN, env_kwargs, seed), CAMPAIGN, env_kwargs, args.campaigns, seed)
    return {"ppo": trained, "random": rand}


def best_so_far(episodes) -> np.ndarray:
    """(campaigns, experiments) buildable performance / oracle of each campaign's
    recommendation (best measured so far), as :mod:`synthgap.agents.rl.evaluation` scores it."""
    return np.array([e.buildable_so_far() for e in episodes])


PLANNERS = (("ppo", "PPO policy", "#2a7"), ("random", "random search", "#888"))


def best_so_far_figure(results: dict, system: str):
    """Mean best buildable performance so far (fraction of each world's oracle) of each planner
    over its campaigns, with the 95 % bootstrap interval of that mean; the title gives both
    means at the final budget over the whole campaign set (a pyplot Figure, laid out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthgap.agents.statistics import bootstrap_mean

    fig, ax = plt.subplots(figsize=(7.5, 5.5), layout="constrained")
    finals, n, top = [], len(results["ppo"]), 1.0
    for name, who, color in PLANNERS:
        curves = best_so_far(results[name])
        x = np.arange(1, curves.shape[1] + 1)
        cis = [bootstrap_mean(curves[:, k]) for k in range(curves.shape[1])]
        mean, low, high = (np.array([getattr(c, a) for c in cis]) for a in ("mean", "low", "high"))
        ax.plot(x, mean, color=color, lw=2, marker="o" if len(x) <= 12 else None, ms=4,
                label=f"{who}: mean over the {len(curves)} campaigns")
        band = f"{who}: 95 % bootstrap interval of that mean"
        if len(x) == 1:  # one experiment: an error bar, a band would be invisible
            ax.errorbar(x, mean, yerr=[mean - low, high - mean], color=color, capsize=6, lw=0, elinewidth=2,
                        label=band)
        else:
            ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0, label=band)
        finals.append(f"{who} {cis[-1]}")
        top = max(top, float(high.max()))
    budget = len(x)
    ax.set_xlim(0.5, budget + 0.5)
    if budget <= 20:
        ax.set_xticks(np.arange(1, budget + 1))
    ax.set_ylim(-0.03, 1.05 * top)  # a world's oracle is a search's best: a campaign may pass it
    ax.set(xlabel="experiments run in the campaign",
           ylabel="best buildable performance so far\n(fraction of each world's oracle; 1 = best achievable)")
    ax.set_title(f"{system}, {n} seeded campaigns in held-out worlds: mean best buildable after {budget} "
                 f"experiment{'s' if budget > 1 else ''}\n{'; '.join(finals)} (mean [95 % bootstrap interval])",
                 fontsize=9.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8.5, frameon=False,
              title="the curve: buildable performance of each campaign's best measured recipe so far",
              title_fontsize=8.5)
    return fig


def plot_best_so_far(results: dict, path: Path, system: str) -> Path:
    """``best_so_far.png``: :func:`best_so_far_figure`, nothing clipped."""
    import matplotlib.pyplot as plt

    fig = best_so_far_figure(results, system)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def best_recipe(episodes):
    """The recipe with the highest buildable performance over all campaigns, and that value
    as a fraction of the oracle."""
    best, value = None, -np.inf
    for e in episodes:
        for i, v in zip(e.infos, e.buildable(), strict=True):
            if v > value:
                best, value = i["recipe"], float(v)
    return best, value


def run_demo(args) -> int:
    from synthgap.envs.chemistry import Recipe, load_system
    from synthgap.envs.chemistry.firing import fire_history

    from .chemistry_plots import plot_firing

    _check(args)
    load_system(args.system)  # a bad name fails now, before anything runs
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    rows, overview_lines = overview(out, rng, args.recipes)
    t_overview = time.perf_counter() - t0

    summary = train_policy(args, out)
    t_train = time.perf_counter() - t0 - t_overview
    results = compare(args, summary["model_uri"])
    ppo_best = best_so_far(results["ppo"])[:, -1]
    rand_best = best_so_far(results["random"])[:, -1]

    system = load_system(args.system)
    plot_best_so_far(results, out / "best_so_far.png", system.name)
    if system.name not in {r["system"] for r in rows}:  # a system of the user's: the overview drew no hull
        from .chemistry_plots import plot_hulls

        plot_hulls(system, 1273.0, out / hull_png(system.name))
    recipe_dict, recipe_value = best_recipe(results["ppo"])
    recipe = Recipe.from_dict(recipe_dict)
    plot_firing(system, recipe, fire_history(system, recipe), out / "chosen_recipe_firing.png")
    from .tracking import get_client, metric_curves

    client = get_client(args.tracking_uri)
    from synthgap.agents.rl.evaluation import plot_learning_curve

    plot_learning_curve(metric_curves(client, summary["run_id"]), out / "learning_curve.png",
                        f"PPO on Campaign-v0 ({args.system}, budget {args.budget})")

    from synthgap.agents.statistics import bootstrap_mean, paired_wilcoxon

    ppo_mean, rand_mean = bootstrap_mean(ppo_best), bootstrap_mean(rand_best)
    comparison = {
        "ppo_mean_best_buildable": ppo_mean.mean, "ppo_mean_best_buildable_low": ppo_mean.low,
        "ppo_mean_best_buildable_high": ppo_mean.high,
        "random_mean_best_buildable": rand_mean.mean, "random_mean_best_buildable_low": rand_mean.low,
        "random_mean_best_buildable_high": rand_mean.high,
        "paired_wilcoxon_p": paired_wilcoxon(ppo_best, rand_best),
        "ppo_median_best_buildable": float(np.median(ppo_best)),
        "random_median_best_buildable": float(np.median(rand_best)),
        "ppo_mean_reward": float(np.mean([e.total_reward for e in results["ppo"]])),
        "random_mean_reward": float(np.mean([e.total_reward for e in results["random"]])),
        "train_seconds": float(summary["train_seconds"]),
    }
    report = write_report(out, args, rows, overview_lines, summary, comparison, recipe, recipe_value, system.name)
    demo_run = log_demo_run(client, args, out, comparison, summary)
    elapsed = time.perf_counter() - t0
    payload = {"out": str(out), "report": str(report), "seconds": elapsed, "mlflow_run_id": demo_run,
               "train_run_id": summary["run_id"], "model_uri": summary["model_uri"], **comparison,
               "targets": rows}
    if args.json:
        print(json.dumps(payload))
    else:
        print(table(rows))
        print()
        print(f"PPO on Campaign-v0 ({args.system}, budget {args.budget}, {summary['num_timesteps']} steps in "
              f"{summary['train_seconds']:.0f} s) against random search over {args.campaigns} seeded campaigns in "
              f"unseen worlds, best buildable performance as a fraction of each world's oracle: mean [95 % "
              f"bootstrap interval] PPO {ppo_mean}, random {rand_mean}; paired Wilcoxon p = "
              f"{comparison['paired_wilcoxon_p']:.3g} ({_verdict(comparison)}); medians "
              f"{comparison['ppo_median_best_buildable']:.3f} and {comparison['random_median_best_buildable']:.3f}")
        print(f"report: {report}  ({elapsed:.0f} s; overview {t_overview:.0f} s, training {t_train:.0f} s)")
        from .tracking import store_uri

        print(f"model: {summary['model_uri']} (store {store_uri(args.tracking_uri)}); "
              "open the runs with: synthgap ui")
    return 0


def _verdict(c: dict) -> str:
    """In words: who is ahead, and whether the paired test can tell."""
    if c["paired_wilcoxon_p"] >= 0.05:
        return "the test cannot tell them apart"
    return "PPO is ahead" if c["ppo_mean_best_buildable"] > c["random_mean_best_buildable"] else "PPO loses"


def table(rows: list[dict]) -> str:
    head = ["| system | target | theoretical | 0 K hull (meV/atom) | hull at 1273 K | best made | recipes >90 % pure |",
            "|---|---|---|---|---|---|---|"]
    for r in rows:
        flag = " (unobtainium)" if r["unobtainium"] else ""
        head.append(f"| {r['system']} | {r['target']}{flag} | {r['theoretical']:g} | {r['e_above_hull_0K_meV']:.1f} | "
                    f"{r['e_above_hull_T_meV']:.1f} | {r['best_made']:.4g} | {100 * r['success_rate']:.1f} % |")
    return "\n".join(head)


def write_report(out, args, rows, overview_lines, summary, comparison, recipe, recipe_value, name=None) -> Path:
    """``report.md``; every figure it links is written once (a system's hull by the overview)."""
    name = name or args.system
    lines = [
        "# synthgap demo", "",
        "## The synthesis gap on the catalogue", "",
        "Energy above the hull in the 0 K view (what a predictor sees) and at 1273 K in air (what the furnace "
        f"sees), and the best sample a batched search of {args.recipes} random recipes per target made.", "",
        table(rows), "",
        f"## A trained policy against random search ({args.system})", "",
        f"PPO trained on `synthgap/Campaign-v0` (budget {args.budget} experiments per campaign, "
        f"{summary['num_timesteps']} experiments of training, {summary['train_seconds']:.0f} s), registered as "
        f"`{summary['model_uri']}` and loaded back hash-checked. Evaluated on {args.campaigns} seeded campaigns "
        "that training never saw, against random search on the same campaigns:", "",
        "Buildable performance is the expected performance over the lab's furnace offsets, as a fraction of "
        "the oracle (the best achievable over the campaign's candidate targets): 1.0 is the best achievable.", "",
        "| policy | mean best buildable (fraction of the oracle) [95 % bootstrap interval] | median | "
        "mean campaign reward |",
        "|---|---|---|---|",
        *(f"| {label} | {comparison[f'{key}_mean_best_buildable']:.3f} "
          f"[{comparison[f'{key}_mean_best_buildable_low']:.3f}, {comparison[f'{key}_mean_best_buildable_high']:.3f}] "
          f"| {comparison[f'{key}_median_best_buildable']:.3f} | {comparison[f'{key}_mean_reward']:.3f} |"
          for label, key in (("PPO", "ppo"), ("random search", "random"))),
        "", f"Paired Wilcoxon signed-rank test over the {args.campaigns} campaigns (paired by seed): "
        f"p = {comparison['paired_wilcoxon_p']:.3g}: {_verdict(comparison)}. Each campaign is a lab of its own "
        "(a hidden world drawn around the nominal model); its oracle is that world's.",
        "", "![learning curve](learning_curve.png)", "", "![best so far](best_so_far.png)", "",
        f"The policy's best recipe (buildable performance {recipe_value:.3f} of the oracle): {recipe.target} from "
        f"{' + '.join(recipe.precursors)}, {recipe.dwell_temperature:.0f} K for {recipe.dwell_time:.1f} h in "
        f"{recipe.atmosphere}, ramp {recipe.ramp_rate:.1f} K/min, milled {recipe.milling_time:.1f} h.", "",
        "![chosen recipe](chosen_recipe_firing.png)", "",
        *((f"{name}'s hull at 0 K and at 1273 K in air: [{hull_png(name)}]({hull_png(name)}), shown in its "
           "section below.", "") if name in {r["system"] for r in rows}
          else (f"{name}'s hull at 0 K and at 1273 K in air:", "", f"![hull]({hull_png(name)})", "")),
        "## The systems", "", *overview_lines,
        "Open the runs (training curves, evaluation plots, the registered policy) with `synthgap ui`.",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def log_demo_run(client, args, out: Path, comparison: dict, summary: dict) -> str:
    """One MLflow run holding the report, its figures and the comparison."""
    from .tracking import DEMO_EXPERIMENT, KIND_TAG, log_report_run

    params = {"system": args.system, "budget": args.budget, "timesteps": args.timesteps, "seed": args.seed,
              "campaigns": args.campaigns, "recipes": args.recipes, "model_uri": summary["model_uri"]}
    return log_report_run(client, DEMO_EXPERIMENT, f"demo-{args.system}-s{args.seed}", params=params,
                          metrics=comparison, tags={KIND_TAG: "demo", "synthgap.train_run": summary["run_id"]},
                          folder=out, tracking_uri=args.tracking_uri)
