"""``synthgap lab coordination``: does sharing furnace loads pay in the shared lab?

Trains the shared-parameter PPO policy and one independent PPO learner per chemist (the
same number of lab rounds each), then runs those and the two scripted policies
(:mod:`synthgap.agents.coordination`) on the same held-out seeds, and reports lab
throughput, queue waits and each chemist's buildable performance as a fraction of its
world's oracle: means with 95 % bootstrap intervals and paired Wilcoxon tests against
never sharing. Writes ``coordination.json``, ``coordination.md`` and
``coordination.png`` to ``--out`` and logs them to MLflow (experiment
``synthgap-coordination``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from synthgap.envs.userfiles import int_arg

EXPERIMENT = "synthgap-coordination"
EVAL_SEED_OFFSET = 1_000_000  # evaluation seeds: never a training reset's
POLICIES = ("never_share", "always_share", "independent_ppo", "shared_ppo")
PPO_KWARGS = {"n_steps": 128, "batch_size": 64, "n_epochs": 5, "learning_rate": 3e-4,
              "policy_kwargs": {"net_arch": [64, 64]}}


def add_coordination_parser(lab_sub) -> None:
    p = lab_sub.add_parser("coordination", help="scripted and learned furnace sharing in the shared lab")
    p.add_argument("--system", default="BaTiO3")
    p.add_argument("--agents", type=int_arg(1, 16), default=None, help="chemists, 1-16 (default: the env's)")
    p.add_argument("--furnaces", type=int_arg(1, 16), default=None, help="furnaces, 1-16 (default: the env's)")
    p.add_argument("--budget", type=int_arg(1, 200), default=None,
                   help="experiments per chemist, 1-200 (default: the env's)")
    p.add_argument("--seeds", type=int_arg(2, 1000), default=20,
                   help="held-out programmes evaluated, 2-1000 (default 20)")
    p.add_argument("--timesteps", type=int_arg(1, 10_000_000), default=20_000,
                   help="lab rounds each PPO policy trains for (default 20,000)")
    p.add_argument("--seed", type=int_arg(0), default=0, help=">= 0")
    p.add_argument("--oracle-samples", type=int_arg(100, 1_000_000), default=50_000,
                   help="random recipes each world's oracle screens (default 50,000)")
    p.add_argument("--out", default="synthgap-runs/coordination")
    p.add_argument("--tracking-uri", default=None)
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_coordination)


def _quiet(model):
    """No logger folder (SB3 would otherwise make /tmp/SB3-*)."""
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def _train_shared(env_kwargs: dict, rounds: int, seed: int):
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from synthgap.agents.shared_policy import ParallelVecEnv
    from synthgap.envs import shared_lab_v0

    torch.set_num_threads(1)
    venv = VecMonitor(ParallelVecEnv(lambda: shared_lab_v0.parallel_env(**env_kwargs), seed=seed))
    model = _quiet(PPO("MlpPolicy", venv, seed=seed, verbose=0, device="cpu", **PPO_KWARGS))
    model.learn(total_timesteps=rounds * venv.num_envs)  # SB3 counts agent-steps: `rounds` lab rounds
    venv.close()
    return model


def run_study(env_kwargs: dict, seeds: int, rounds: int, seed: int, oracle_samples: int,
              log=print) -> dict:
    """Train, evaluate, summarise (see the module docstring); JSON-able."""
    from synthgap.agents.coordination import evaluate_policy, scripted_policy, train_independent
    from synthgap.agents.oracle import campaign_oracle

    def oracle(truth, target: str) -> float:
        return campaign_oracle(truth, [target], n_random=oracle_samples).value

    timings = {}
    t0 = time.perf_counter()
    log(f"training the shared-parameter PPO policy for {rounds:,} lab rounds ...")
    shared = _train_shared(env_kwargs, rounds, seed)
    timings["shared_ppo_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    log(f"training one PPO learner per chemist for {rounds:,} lab rounds each ...")
    independent = train_independent(env_kwargs, rounds, seed, PPO_KWARGS, configure=_quiet)
    timings["independent_ppo_s"] = time.perf_counter() - t0

    def learned(models):
        def make(env, _seed):
            index = {a: i for i, a in enumerate(env.possible_agents)}
            return lambda agent, obs: models[index[agent] % len(models)].predict(obs, deterministic=True)[0]
        return make

    makers = {"never_share": lambda env, s: scripted_policy(env, "never_share", s),
              "always_share": lambda env, s: scripted_policy(env, "always_share", s),
              "independent_ppo": learned(independent), "shared_ppo": learned([shared])}
    eval_seeds = [EVAL_SEED_OFFSET + seed + k for k in range(seeds)]
    episodes = {}
    for name in POLICIES:
        log(f"evaluating {name} on {seeds} held-out programmes ...")
        episodes[name] = evaluate_policy(makers[name], env_kwargs, eval_seeds, oracle)
    return {"env_kwargs": env_kwargs, "rounds": rounds, "seed": seed, "eval_seeds": eval_seeds,
            "timings_s": timings, "summary": summarise(episodes),
            "episodes": {k: [vars(e) for e in v] for k, v in episodes.items()}}


METRICS = (("throughput_per_day", "lab throughput (samples / lab-day)"),
           ("queue_wait_h", "queue wait per sample (h)"),
           ("buildable", "best buildable / oracle (mean over chemists)"),
           ("lab_hours", "lab hours of the programme (h)"),
           ("shared_fraction", "samples fired in another's load"))


def _values(ep, key: str) -> float:
    return float(np.mean(list(ep.best_buildable.values()))) if key == "buildable" else float(getattr(ep, key))


def summarise(episodes: dict) -> list[dict]:
    """Per policy: each metric's mean with its bootstrap interval, and the paired Wilcoxon
    p-value against never sharing (same seeds); per chemist, its mean best buildable."""
    from synthgap.agents.statistics import bootstrap_mean, paired_wilcoxon

    rows = []
    base = episodes["never_share"]
    for name, eps in episodes.items():
        row: dict = {"policy": name, "seeds": len(eps)}
        for key, _ in METRICS:
            v = [_values(e, key) for e in eps]
            ci = bootstrap_mean(v)
            row[key], row[f"{key}_low"], row[f"{key}_high"] = ci.mean, ci.low, ci.high
            row[f"{key}_p_vs_never"] = (paired_wilcoxon(v, [_values(e, key) for e in base])
                                        if name != "never_share" else float("nan"))
        for a in eps[0].best_buildable:
            row[f"buildable[{a}]"] = float(np.mean([e.best_buildable[a] for e in eps]))
        rows.append(row)
    return rows


def markdown(result: dict) -> str:
    kw = result["env_kwargs"]
    lines = [f"# Coordination in the shared lab\n\n{len(result['eval_seeds'])} held-out programmes; "
             f"env {json.dumps(kw)}; PPO policies trained for {result['rounds']:,} lab rounds each. "
             "Means with 95 % bootstrap intervals over programmes; p: paired Wilcoxon against never "
             "sharing (same seeds).\n",
             "| policy | " + " | ".join(h for _, h in METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for r in result["summary"]:
        cells = []
        for key, _ in METRICS:
            p = r[f"{key}_p_vs_never"]
            cells.append(f"{r[key]:.3g} [{r[f'{key}_low']:.3g}, {r[f'{key}_high']:.3g}]"
                         + ("" if np.isnan(p) else f", p = {p:.2g}"))
        lines.append(f"| {r['policy']} | " + " | ".join(cells) + " |")
    per_agent = [k for k in result["summary"][0] if k.startswith("buildable[")]
    lines += ["", "Mean best buildable / oracle per chemist:", "",
              "| policy | " + " | ".join(k[10:-1] for k in per_agent) + " |", "|---|" + "---|" * len(per_agent)]
    for r in result["summary"]:
        lines.append(f"| {r['policy']} | " + " | ".join(f"{r[k]:.3f}" for k in per_agent) + " |")
    return "\n".join(lines) + "\n"


def figure(result: dict, path: Path) -> Path:
    from matplotlib.figure import Figure

    shown = METRICS[:3]
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    axes = fig.subplots(1, len(shown))
    rng = np.random.default_rng(0)  # jitter of the dots only
    names = [r["policy"] for r in result["summary"]]
    for ax, (key, label) in zip(axes, shown, strict=True):
        for k, name in enumerate(names):
            eps = result["episodes"][name]
            v = [float(np.mean(list(e["best_buildable"].values()))) if key == "buildable" else e[key] for e in eps]
            r = result["summary"][k]
            ax.scatter(k + rng.uniform(-0.15, 0.15, len(v)), v, s=10, color="0.65", zorder=1,
                       label="one programme (seed)" if k == 0 else None)
            ax.errorbar([k], [r[key]], yerr=[[r[key] - r[f"{key}_low"]], [r[f"{key}_high"] - r[key]]], fmt="o",
                        capsize=4, color="tab:blue", zorder=3,
                        label="mean, 95 % bootstrap interval" if k == 0 else None)
        ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], rotation=20, ha="right")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False, fontsize=9)
    kw = result["env_kwargs"]
    furnaces = kw.get("n_furnaces")
    furnace_text = f"{furnaces} furnace{'s' if furnaces != 1 else ''}"
    fig.suptitle(f"Sharing furnace loads: {kw.get('n_agents')} chemists, {furnace_text}, "
                 f"{kw.get('budget')} experiments each, {len(result['eval_seeds'])} held-out programmes")
    fig.savefig(path, dpi=110)
    return path


def cmd_coordination(args: argparse.Namespace) -> int:
    import os
    import sys

    from synthgap.envs import shared_lab_v0
    from synthgap.envs.chemistry import CatalogueError, load_system

    out = Path(args.out)
    try:
        load_system(args.system)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out}: a file is there; give a folder")
    except (CatalogueError, ValueError) as exc:
        print(f"synthgap lab coordination: {exc}", file=sys.stderr)
        return 2
    env = shared_lab_v0.parallel_env(system=args.system)  # its defaults fill what is not given
    kw = {"system": args.system, "n_agents": args.agents or len(env.possible_agents),
          "n_furnaces": args.furnaces or env.n_furnaces, "budget": args.budget or env.budget}
    env.close()
    out.mkdir(parents=True, exist_ok=True)
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    result = run_study(kw, args.seeds, args.timesteps, args.seed, args.oracle_samples, log)
    (out / "coordination.json").write_text(json.dumps(result, indent=1, default=float))
    (out / "coordination.md").write_text(markdown(result))
    figure(result, out / "coordination.png")
    result["files"] = {n: str(out / n) for n in ("coordination.json", "coordination.md", "coordination.png")}
    if not args.no_mlflow:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from .tracking import get_client, log_report_run

        client = get_client(args.tracking_uri)
        metrics = {f"{r['policy']}.{k}": float(r[k]) for r in result["summary"] for k, _ in METRICS}
        result["mlflow_run_id"] = log_report_run(
            client, EXPERIMENT, f"coordination-{args.system}-s{args.seed}",
            params={**kw, "rounds": args.timesteps, "seeds": args.seeds, "seed": args.seed},
            metrics=metrics, tags={"synthgap.kind": "coordination"}, folder=out, tracking_uri=args.tracking_uri,
            command="lab coordination")
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "episodes"}, default=float))
    else:
        print(markdown(result))
        print(f"written to {out}")
        if "mlflow_run_id" in result:
            from .tracking import store_uri

            store = store_uri(args.tracking_uri)
            print(f"logged to MLflow run {result['mlflow_run_id']} (store {store})")
    return 0
