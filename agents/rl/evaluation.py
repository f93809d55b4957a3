"""Run evaluation episodes of a policy and draw what they did.

Per env, :func:`summarize` gives the figures that matter: mean episode reward for any
env; for ``synthgap/Campaign-v0`` also the final best buildable performance of each
campaign as a fraction of the oracle of its candidate targets (the recommendation is the
recipe with the best measured performance, scored as :mod:`synthgap.agents.metrics` does
for the benchmark); for ``synthgap/FurnaceControl-v0`` the target fraction at unloading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthgap.envs.buildable import fraction_of_oracle

from ..metrics import best_so_far
from ..oracle import campaign_oracle
from .envs import is_multi_agent, make_env

CAMPAIGN = "synthgap/Campaign-v0"
FURNACE = "synthgap/FurnaceControl-v0"


@dataclass
class Episode:
    """One evaluation episode: rewards, infos and (for the furnace) its temperature trace."""

    seed: int
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    trace: list[tuple[float, float, float, float]] = field(default_factory=list)
    """FurnaceControl: (time s, setpoint K, thermocouple K, true K)."""
    oracle: float = float("nan")
    """Campaign: the oracle of the candidate targets, property unit (NaN for other envs)."""

    @property
    def total_reward(self) -> float:
        return float(np.sum(self.rewards))

    def buildable(self) -> np.ndarray:
        """Campaign: (k,) buildable performance of each experiment's recipe / oracle."""
        vals = [i["privileged"]["buildable"] for i in self.infos if "privileged" in i]
        if not vals or not np.isfinite(self.oracle):
            return np.full(len(vals), np.nan)
        return fraction_of_oracle(np.array(vals), self.oracle)

    def buildable_so_far(self) -> np.ndarray:
        """Campaign: (k,) buildable performance / oracle of the recommendation (best measured)
        after each experiment."""
        measured = [i["measured_performance"] for i in self.infos if "reward_parts" in i]
        return best_so_far(measured, self.buildable())

    @property
    def best_buildable(self) -> float:
        """Campaign: buildable performance / oracle of the campaign's final recommendation."""
        curve = self.buildable_so_far()
        return float(curve[-1]) if len(curve) else float("nan")


#: random recipes of a per-world oracle (the benchmark's is 200,000 for one fixed world)
WORLD_ORACLE_RANDOM = 20_000


def world_oracle(env: Any) -> float:
    """The oracle of a campaign env's candidates in the world of its current lab (property
    unit): the nominal system's (cached) when the lab's world is the nominal one, else the
    drawn world's (``WORLD_ORACLE_RANDOM`` random recipes, then the refinement). NaN for a
    lab with no simulator truth. Evaluation only: it reads the lab's privileged truth."""
    truth = env.lab.truth_system if env.lab is not None else None
    if truth is None:
        return float("nan")
    n_random = 200_000 if truth is env.system else WORLD_ORACLE_RANDOM
    return campaign_oracle(truth, env.candidates, n_random).value


def run_episodes(act: Callable[[np.ndarray], np.ndarray], env_id: str, env_kwargs: dict | None = None,
                 episodes: int = 10, seed: int = 0, options: dict | None = None) -> list[Episode]:
    """Run ``episodes`` episodes with seeds ``seed, seed+1, ...``; ``act(obs) -> action``;
    ``options`` go to every reset (e.g. ``{"task": "LiMn2O4"}`` in a task distribution).

    In the multi-agent shared lab every agent acts with ``act`` (the shared policy); an
    episode's rewards are the agents' mean reward per round and its infos the first
    agent's.
    """
    if is_multi_agent(env_id):
        return _run_shared_episodes(act, env_kwargs or {}, episodes, seed)
    env = make_env(env_id, env_kwargs)
    base = env.unwrapped
    out = []
    try:
        for k in range(episodes):
            obs, _ = env.reset(seed=seed + k, options=options)
            ep = Episode(seed=seed + k, oracle=world_oracle(base) if env_id == CAMPAIGN else float("nan"))
            done = False
            while not done:
                action = np.asarray(act(obs), dtype=env.action_space.dtype).reshape(env.action_space.shape)
                obs, reward, terminated, truncated, info = env.step(action)
                ep.rewards.append(float(reward))
                ep.infos.append(info)
                done = terminated or truncated
            ep.trace = list(getattr(env.unwrapped, "trace", []) or [])
            out.append(ep)
    finally:
        env.close()
    return out


def _run_shared_episodes(act, env_kwargs: dict, episodes: int, seed: int) -> list[Episode]:
    from synthgap.envs import shared_lab_v0

    env = shared_lab_v0.parallel_env(**env_kwargs)
    out = []
    for k in range(episodes):
        ep = Episode(seed=seed + k)
        obs, _ = env.reset(seed=seed + k)
        first = env.possible_agents[0]
        while env.agents:
            actions = {a: np.asarray(act(obs[a]), dtype=np.float32).reshape(env.action_space(a).shape)
                       for a in env.agents}
            obs, rewards, _, _, infos = env.step(actions)
            ep.rewards.append(float(np.mean(list(rewards.values()))))
            ep.infos.append(infos[first])
        out.append(ep)
    return out


def random_actor(env_id: str, env_kwargs: dict | None = None, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """A uniformly random policy over the env's action space (seeded)."""
    env = make_env(env_id, env_kwargs)
    space = env.action_space
    env.close()
    space.seed(seed)
    return lambda obs: space.sample()


def summarize(env_id: str, episodes: list[Episode]) -> dict[str, float]:
    """Mean/median figures of a set of episodes (keys are MLflow-safe metric names).

    Means come with their 95 % percentile bootstrap interval (``..._low``, ``..._high``;
    :func:`synthgap.agents.statistics.bootstrap_mean`, seeded): ``mean_reward`` always,
    ``mean_best_buildable`` (fraction of each world's oracle) on Campaign-v0.
    """
    from synthgap.agents.statistics import bootstrap_mean

    def with_interval(key: str, values) -> dict[str, float]:
        ci = bootstrap_mean(values)
        return {key: ci.mean, f"{key}_low": ci.low, f"{key}_high": ci.high}

    totals = np.array([e.total_reward for e in episodes])
    out = {**with_interval("mean_reward", totals), "std_reward": float(totals.std()),
           "median_reward": float(np.median(totals)),
           "mean_length": float(np.mean([len(e.rewards) for e in episodes])), "episodes": float(len(episodes))}
    if env_id == CAMPAIGN:
        best = np.array([e.best_buildable for e in episodes])
        out["median_best_buildable"] = float(np.median(best))
        out.update(with_interval("mean_best_buildable", best) if np.all(np.isfinite(best))
                   else {"mean_best_buildable": float(np.mean(best))})
    if env_id == FURNACE:
        tf = [e.infos[-1].get("target_fraction", np.nan) for e in episodes if e.infos]
        out["mean_target_fraction"] = float(np.nanmean(tf)) if tf else float("nan")
    return out


#: what SB3's metric names mean, for legends
CURVE_LABELS = {"rollout/ep_rew_mean": "training episodes (stochastic policy, running mean)",
                "eval/mean_reward": "evaluation episodes (deterministic policy)"}


def plot_learning_curve(curves: dict[str, list[tuple[int, float]]], path: str | Path, title: str = "") -> Path:
    """Plot metric histories ``{name: [(step, value), ...]}`` against environment steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in curves.items():
        if points:
            s, v = zip(*sorted(points), strict=True)
            ax.plot(s, v, marker="." if len(s) < 50 else None, label=CURVE_LABELS.get(name, name))
    ax.set_xlabel("environment steps (one experiment each in Campaign-v0)")
    ax.set_ylabel("episode reward (sum over the episode)")
    ax.set_title(title or "learning curve")
    ax.grid(alpha=0.3)
    if any(curves.values()):
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_episodes(env_id: str, episodes: list[Episode], path: str | Path) -> Path:
    """What evaluation episodes did: campaign progress and recipe, furnace trace and phases."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    if env_id == CAMPAIGN:
        for e in episodes:
            curve = e.buildable_so_far()
            a.plot(np.arange(1, len(curve) + 1), curve, alpha=0.6)
        a.set(xlabel="experiment", ylabel="buildable performance / oracle\n(best measured so far)",
              title="campaigns")
        recipes = [i["recipe"] for e in episodes for i in e.infos]
        perf = np.concatenate([e.buildable() for e in episodes])
        sc = b.scatter([r["dwell_temperature"] for r in recipes], [r["dwell_time"] for r in recipes], c=perf,
                       cmap="viridis", s=18)
        fig.colorbar(sc, ax=b, label="buildable performance / oracle")
        best = episodes[int(np.argmax([np.max(e.buildable()) for e in episodes]))]
        r = best.infos[int(np.argmax(best.buildable()))]["recipe"]
        b.set(xlabel="dwell temperature (K)", ylabel="dwell time (h)", yscale="log",
              title=f"chosen recipes; best: {r['target']} {r['dwell_temperature']:.0f} K {r['dwell_time']:.1f} h")
    elif env_id == FURNACE:
        e = episodes[0]
        if e.trace:
            t, sp, tc = (np.array(x) for x in zip(*e.trace, strict=True))
            a.plot(t / 3600, sp, label="setpoint")
            a.plot(t / 3600, tc, label="thermocouple")
            truth = e.infos[-1].get("privileged", {}) if e.infos else {}
            if truth.get("trace_K"):  # evaluation may plot the simulator's truth
                a.plot(np.array(truth["trace_time_s"]) / 3600, truth["trace_K"], label="sample (true, simulator)",
                       alpha=0.6)
            a.legend()
        a.set(xlabel="time (h)", ylabel="temperature (K)", title=f"episode seed {e.seed}")
        phases = e.infos[-1].get("phase_fractions", {}) if e.infos else {}
        b.bar(list(phases), list(phases.values()))
        b.set(ylabel="weight fraction (XRD, measured)", title="phases at unloading")
        b.tick_params(axis="x", rotation=45)
    else:
        a.bar(np.arange(len(episodes)), [e.total_reward for e in episodes])
        a.set(xlabel="episode", ylabel="total reward")
        b.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
