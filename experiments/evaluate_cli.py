"""``synthgap evaluate``: a registered policy on its env, buildable performance first, logged as a run.

For Campaign-v0 it reports each campaign's best buildable performance as a fraction of
that world's oracle (mean with a 95 % bootstrap interval; with ``--baseline random``,
random search on the same seeds and the paired Wilcoxon p-value), then the reward.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["EvaluateCLIError", "evaluate_handler"]


class EvaluateCLIError(ValueError):
    """Bad ``synthgap evaluate`` arguments (the CLI root maps it to exit status 2)."""


def evaluate_handler(args) -> int:
    """Evaluate a registered policy on its env and log the evaluation as a run."""
    import tempfile
    import time

    from mlflow.entities import Metric

    from synthgap.agents.rl.envs import evaluation_kwargs
    from synthgap.agents.rl.evaluation import SCORE_OF_ORACLE, plot_episodes, random_actor, run_episodes, summarize
    from synthgap.agents.rl.registry import load_policy

    from . import tracking

    if args.episodes < 1:
        raise EvaluateCLIError(f"--episodes must be >= 1, got {args.episodes}")
    policy = load_policy(args.model_uri, args.tracking_uri, trust_digest=args.trust_digest)
    kwargs = evaluation_kwargs(policy.env_kwargs)  # held-out worlds for a policy trained on split "train"
    t0 = time.perf_counter()
    episodes = run_episodes(policy.predict, policy.env_id, kwargs, args.episodes, args.seed)
    result = {"model_uri": args.model_uri, "name": policy.name, "version": policy.version, "sha256": policy.sha256,
              "env_id": policy.env_id, "env_kwargs": policy.env_kwargs, "evaluation_env_kwargs": kwargs,
              "episodes": args.episodes, "seed": args.seed,
              "policy": summarize(policy.env_id, episodes), "seconds": time.perf_counter() - t0}
    rand = None
    if args.baseline == "random":
        rand = run_episodes(random_actor(policy.env_id, kwargs, args.seed), policy.env_id,
                            kwargs, args.episodes, args.seed)
        result["random"] = summarize(policy.env_id, rand)
    score_key, words = SCORE_OF_ORACLE.get(policy.env_id, ("", ""))
    if score_key:
        result.update(_oracle_comparison(score_key, policy.env_id, episodes, rand))
    client = tracking.get_client(args.tracking_uri)
    run_id = tracking.adopted_run(client)
    if run_id is None:
        exp = tracking.experiment_id(client, tracking.EVAL_EXPERIMENT, args.tracking_uri)
        run_id = tracking.create_run(client, exp, f"eval-{policy.name}-v{policy.version}", "evaluate").info.run_id
    for key, value in {tracking.KIND_TAG: "evaluate", "synthgap.model_uri": args.model_uri,
                       "synthgap.model_name": policy.name, "synthgap.model_version": policy.version}.items():
        client.set_tag(run_id, key, value)
    result["run_id"] = run_id
    params = {"model_uri": args.model_uri, "model_version": policy.version, "env_id": policy.env_id,
              "env_kwargs": json.dumps(policy.env_kwargs), "episodes": args.episodes, "seed": args.seed,
              "baseline": args.baseline}
    given = client.get_run(run_id).data.params  # an adopted run holds the MLproject's parameters
    tracking.log_params(client, run_id, {k: v for k, v in params.items() if k not in given})
    stamp = int(time.time() * 1000)
    metrics = [Metric(f"{who}/{k}", v, stamp, 0) for who in ("policy", "random") if who in result
               for k, v in result[who].items()]
    metrics += [Metric("episode_reward", e.total_reward, stamp, i) for i, e in enumerate(episodes)]
    for who, d in result.get(score_key, {}).items():  # "" for an env without one: never a key
        metrics += ([Metric(f"{score_key}/{who}_{k}", d[k], stamp, 0) for k in ("mean", "low", "high")]
                    if isinstance(d, dict) else [Metric(f"{score_key}/{who}", d, stamp, 0)])
    client.log_batch(run_id, metrics=metrics)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        client.log_artifact(run_id, str(plot_episodes(policy.env_id, episodes, out / "evaluation.png")), "plots")
    tracking.log_json(client, run_id, result, "evaluation.json")
    client.set_terminated(run_id, "FINISHED")
    if args.json:
        json.dump(result, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        worlds = {"test": "held-out worlds (split test)", "train": "training worlds (split train)"}.get(
            kwargs.get("split"), "worlds of any seed")
        line = f"{policy.name} v{policy.version} on {policy.env_id}, {args.episodes} episodes in {worlds}"
        parts = []
        if score_key in result:  # what was built first, what was paid second
            b = result[score_key]

            def ci(d: dict) -> str:
                return f"{d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"

            built = f"{words}, mean [95 % bootstrap] fraction of each world's oracle: policy {ci(b['policy'])}"
            if "random" in b:
                built += f", random {ci(b['random'])}, paired Wilcoxon p = {b['paired_wilcoxon_p']:.3g}"
            parts.append(built)
        s = result["policy"]
        paid = f"mean reward {s['mean_reward']:.4g} [{s['mean_reward_low']:.4g}, {s['mean_reward_high']:.4g}]"
        if "random" in result:
            paid += f", random {result['random']['mean_reward']:.4g}"
        parts.append(paid)
        line += ": " + "; ".join(parts)
        print(line + f"; run {run_id} (store {tracking.store_uri(args.tracking_uri)})")
    return 0


def _oracle_comparison(key: str, env_id: str, episodes, rand) -> dict:
    """Each episode's one number as a fraction of its world's oracle (Campaign-v0: the best
    buildable performance; FurnaceControl-v0: the true performance at unloading), policy (and
    random, paired by seed): means with bootstrap intervals and the paired Wilcoxon p-value,
    under ``key`` ({} when an episode has no oracle, e.g. on the hardware)."""
    import math

    from synthgap.agents.statistics import bootstrap_mean, paired_wilcoxon

    mine = [e.score_of_oracle(env_id) for e in episodes]
    if not mine or not all(math.isfinite(v) for v in mine):
        return {}
    def interval(values: list[float]) -> dict:
        ci = bootstrap_mean(values)
        return {"mean": ci.mean, "low": ci.low, "high": ci.high, "level": ci.level, "n": ci.n}

    out: dict = {"policy": interval(mine)}
    theirs = [e.score_of_oracle(env_id) for e in rand] if rand is not None else []
    if theirs and all(math.isfinite(v) for v in theirs):
        out["random"] = interval(theirs)
        out["paired_wilcoxon_p"] = paired_wilcoxon(mine, theirs) if len(mine) >= 2 else math.nan
    return {key: out}
