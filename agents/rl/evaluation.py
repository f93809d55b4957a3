"""Run evaluation episodes of a policy and draw what they did.

Per env, :func:`summarize` gives the figures that matter: mean episode reward for any
env; for ``synthgap/Campaign-v0`` also the final best buildable performance of each
campaign as a fraction of the oracle of its candidate targets (the recommendation is the
recipe with the best measured performance, scored as :mod:`synthgap.agents.metrics` does
for the benchmark); for ``synthgap/FurnaceControl-v0`` the sample's true performance at
unloading as a fraction of its world's oracle (the best single-dwell programme for the load
in the lab's true world, :meth:`~synthgap.envs.furnace_control.FurnaceControlEnv.programme_ceiling`)
and its target fraction.
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
#: per env, the key and the words of :meth:`Episode.score_of_oracle` in reports
SCORE_OF_ORACLE = {CAMPAIGN: ("best_buildable", "best buildable performance"),
                   FURNACE: ("performance_of_oracle", "true performance at unloading")}


@dataclass
class Episode:
    """One evaluation episode: rewards, infos and (for the furnace) its temperature trace."""

    seed: int
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    trace: list[tuple[float, float, float, float]] = field(default_factory=list)
    """FurnaceControl: (time s, setpoint K, thermocouple K, true K)."""
    oracle: float = float("nan")
    """Campaign: the oracle of the candidate targets; FurnaceControl: the best single-dwell
    programme for the load; both in the lab's true world, property unit (NaN for other envs
    and for a lab with no simulator truth)."""

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
    def performance_of_oracle(self) -> float:
        """FurnaceControl: the unloaded sample's true performance / the oracle (NaN without either)."""
        truth = self.infos[-1].get("privileged", {}).get("performance", float("nan")) if self.infos else float("nan")
        if not (np.isfinite(self.oracle) and self.oracle > 0 and np.isfinite(truth)):
            return float("nan")
        return float(fraction_of_oracle(truth, self.oracle))

    def score_of_oracle(self, env_id: str) -> float:
        """The episode's one number, a fraction of its world's oracle: Campaign-v0's
        :attr:`best_buildable`, FurnaceControl-v0's :attr:`performance_of_oracle` (NaN for other envs)."""
        if env_id == CAMPAIGN:
            return self.best_buildable
        return self.performance_of_oracle if env_id == FURNACE else float("nan")

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


def furnace_world_oracle(env: Any) -> float:
    """The oracle of a FurnaceControl load in the world of its current lab (property unit):
    its best single-dwell programme there; NaN for a lab with no simulator truth. Evaluation
    only: it reads the lab's privileged truth."""
    truth = env.lab.truth_system if env.lab is not None else None
    if truth is None:
        return float("nan")
    try:
        return env.programme_ceiling(truth).value
    except ValueError:  # the load's budget leaves no dwell: no oracle to divide by
        return float("nan")


def _episode_oracle(env_id: str, env: Any) -> float:
    if env_id == CAMPAIGN:
        return world_oracle(env)
    return furnace_world_oracle(env) if env_id == FURNACE else float("nan")


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
            ep = Episode(seed=seed + k, oracle=_episode_oracle(env_id, base))
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
    ``mean_best_buildable`` (fraction of each world's oracle) on Campaign-v0,
    ``mean_performance_of_oracle`` (the unloaded sample's true performance, fraction of its
    world's oracle) on FurnaceControl-v0.
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
        of_oracle = np.array([e.performance_of_oracle for e in episodes])
        out.update(with_interval("mean_performance_of_oracle", of_oracle) if len(of_oracle)
                   and np.all(np.isfinite(of_oracle)) else {"mean_performance_of_oracle": float("nan")})
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
    """What evaluation episodes did, readable at any number of episodes and experiments.

    Campaign-v0: left, each campaign's best buildable performance so far (fraction of its
    world's oracle) with the mean over campaigns and its 95 % bootstrap interval; right, every
    recipe tried (dwell temperature against dwell time), coloured by its buildable performance
    only when the values differ, the best one starred and described. FurnaceControl-v0: the
    first episode's temperatures (setpoint, thermocouple, the simulator's truth) and the phases
    at unloading.
    """
    import matplotlib.pyplot as plt

    fig = episodes_figure(env_id, episodes)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def episodes_figure(env_id: str, episodes: list[Episode]):
    """The figure :func:`plot_episodes` writes (a pyplot Figure, constrained layout)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    if env_id == CAMPAIGN:
        _plot_campaign_progress(a, episodes)
        _plot_campaign_recipes(fig, b, episodes)
    elif env_id == FURNACE:
        _plot_furnace(a, b, episodes)
    else:
        a.bar(np.arange(len(episodes)), [e.total_reward for e in episodes], color="#47a",
              label="one bar per evaluation episode")
        a.set(xlabel="evaluation episode", ylabel="total reward (sum over the episode)",
              title=f"{env_id}: {len(episodes)} evaluation episodes")
        a.legend(fontsize=8)
        b.axis("off")
    return fig


def _plot_campaign_progress(ax, episodes: list[Episode]) -> None:
    """Best-so-far per campaign (thin grey), their mean (bold) and its 95 % bootstrap interval."""
    from synthgap.agents.statistics import bootstrap_mean

    curves = [e.buildable_so_far() for e in episodes]
    k = max((len(c) for c in curves), default=0)
    few = k <= 3
    for i, c in enumerate(curves):
        ax.plot(np.arange(1, len(c) + 1), c, color="#999", lw=0.8, alpha=0.7, marker="o" if few else None, ms=3,
                label=f"one campaign ({len(curves)} in all)" if i == 0 else None)
    full = np.array([c for c in curves if len(c) == k and np.all(np.isfinite(c))]).reshape(-1, k)
    if len(full):
        x = np.arange(1, k + 1)
        ax.plot(x, full.mean(axis=0), color="#2a7", lw=2.2, marker="o" if few else None,
                label=f"mean over {len(full)} campaign{'s' if len(full) > 1 else ''}")
        if len(full) > 1:
            cis = [bootstrap_mean(full[:, j]) for j in range(k)]
            lo, hi = [c.low for c in cis], [c.high for c in cis]
            if k == 1:
                ax.errorbar(x, full.mean(axis=0), yerr=[[full.mean() - lo[0]], [hi[0] - full.mean()]],
                            color="#2a7", capsize=6, lw=0, elinewidth=2,
                            label="95 % bootstrap interval of the mean")
            else:
                ax.fill_between(x, lo, hi, color="#2a7", alpha=0.25, lw=0,
                                label="95 % bootstrap interval of the mean")
            final = cis[-1]
            head = (f"mean final best {final.mean:.3f} [{final.low:.3f}, {final.high:.3f}] over {len(full)} "
                    "campaigns\n(95 % bootstrap interval of the mean, at the last experiment)")
        else:
            head = f"one campaign: final {full[0, -1]:.3f}, no interval"
    else:
        head = "no oracle: buildable performance unknown"
    ax.axhline(1.0, color="k", ls=":", lw=1, label="the oracle (best achievable)")
    top = max([1.0] + [float(np.nanmax(c)) for c in curves if len(c) and np.any(np.isfinite(c))])
    ax.set_ylim(-0.03, 1.08 * top)
    ax.set_xlim(0.5, k + 0.5)
    if k <= 12:
        ax.set_xticks(np.arange(1, k + 1))
    ax.set(xlabel="experiment in the campaign", ylabel="best buildable performance so far\n"
           "(fraction of each world's oracle)", title=f"campaigns: {head}")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)


def _plot_campaign_recipes(fig, ax, episodes: list[Episode]) -> None:
    """Every recipe tried; colour bar only if the buildable values differ; the best one starred."""
    from matplotlib.colors import Normalize
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    recipes = [i["recipe"] for e in episodes for i in e.infos if "recipe" in i]
    if not recipes:
        ax.text(0.5, 0.5, "no recipes", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        return
    perf = np.concatenate([e.buildable() for e in episodes])
    if perf.shape != (len(recipes),):
        perf = np.full(len(recipes), np.nan)
    temp = np.array([r["dwell_temperature"] for r in recipes])
    time_h = np.array([r["dwell_time"] for r in recipes])
    finite = np.isfinite(perf)
    distinct = np.unique(np.round(perf[finite], 4))
    order = np.argsort(np.where(finite, perf, -np.inf), kind="stable")  # the best drawn last, on top
    targets = np.array([r["target"] for r in recipes])
    coloured = len(distinct) > 1
    norm = Normalize(float(np.min(perf[finite])), float(np.max(perf[finite]))) if coloured else None
    for target, m in zip(dict.fromkeys(targets), "osD^v<>", strict=False):
        sel = order[targets[order] == target]
        style = {"c": perf[sel], "cmap": "viridis", "norm": norm} if coloured else {"color": "#47a"}
        sc = ax.scatter(temp[sel], time_h[sel], marker=m, s=30, edgecolors="k", linewidths=0.3,
                        label=f"recipe for {target} ({len(sel)})", **style)
    notes = []
    if coloured:
        fig.colorbar(sc, ax=ax, label="buildable performance\n(fraction of the world's oracle)")
    else:
        same = f"{distinct[0]:.3f} of the oracle" if len(distinct) else "unknown (no oracle)"
        who = f"all {len(recipes)} recipes" if len(recipes) > 1 else "the only recipe"
        notes.append(f"{who}: buildable performance {same} (one value: no colour scale)")
    spots = len({(round(float(t)), round(float(h), 2)) for t, h in zip(temp, time_h, strict=True)})
    if spots < len(recipes):
        notes.append(f"{len(recipes)} recipes at {spots} distinct points (marks overlap)")
    if notes:
        ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=8, va="bottom",
                bbox={"boxstyle": "round", "fc": "w", "ec": "#bbb"})
    title = "recipes tried (all campaigns)"
    if finite.any():
        j = int(np.argmax(np.where(finite, perf, -np.inf)))  # of equals, the first tried
        r = recipes[j]
        ax.scatter([temp[j]], [time_h[j]], marker="*", s=260, facecolors="none", edgecolors="#d22", linewidths=1.6,
                   label="highest buildable performance", zorder=5)
        title = (f"best: {r['target']} from {' + '.join(r['precursors'])}, {r['dwell_temperature']:.0f} K for "
                 f"{r['dwell_time']:.1f} h:\nbuildable performance {perf[j]:.3f} of the oracle"
                 + (" (builds nothing)" if perf[j] < 5e-4 else ""))
    # a policy may fire nearly the same recipe every time: keep the axes readable
    mid = (temp.min() + temp.max()) / 2
    ax.set_xlim(min(temp.min(), mid - 25) - 0.05 * np.ptp(temp), max(temp.max(), mid + 25) + 0.05 * np.ptp(temp))
    log = time_h.min() > 0 and time_h.max() / time_h.min() > 10
    if log:
        ax.set_yscale("log")
        ax.margins(y=0.08)
    else:
        lo, hi = time_h.min(), time_h.max()
        pad = max(0.08 * (hi - lo), 0.25)
        ax.set_ylim(max(lo - pad, 0.0), hi + pad)
    plain = ScalarFormatter(useOffset=False)
    plain.set_scientific(False)
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # plain numbers, no 10^0 offsets
    ax.set(xlabel="dwell temperature (K)", ylabel="dwell time (h" + (", log scale)" if log else ")"), title=title)
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    for handle in legend.legend_handles[:-1] if finite.any() else legend.legend_handles:
        handle.set_array(None)
        handle.set_facecolor("#bbb")  # a marker's shape names the target; its colour is the colour bar's


def _plot_furnace(a, b, episodes: list[Episode]) -> None:
    """The first episode's temperatures (K against h) and its phases at unloading."""
    e = episodes[0]
    if e.trace:
        t, sp, tc = (np.array(x) for x in list(zip(*e.trace, strict=True))[:3])
        a.plot(t / 3600, sp, color="#47a", lw=1.6, label="setpoint (the policy's command)")
        a.plot(t / 3600, tc, color="#e80", lw=1.2, label="thermocouple (what the policy reads)")
        truth = e.infos[-1].get("privileged", {}) if e.infos else {}
        if truth.get("trace_K"):  # evaluation may plot the simulator's truth
            a.plot(np.array(truth["trace_time_s"]) / 3600, truth["trace_K"], color="#2a7", ls="--", lw=1.2,
                   label="sample, true (simulator only; the policy never sees it)")
        a.legend(fontsize=8)
    more = f" (first of {len(episodes)})" if len(episodes) > 1 else ""
    a.set(xlabel="time (h)", ylabel="temperature (K)", title=f"furnace, episode seed {e.seed}{more}")
    a.grid(alpha=0.3)
    info = e.infos[-1] if e.infos else {}
    phases = info.get("phase_fractions", {})
    tf = info.get("target_fraction")
    targets = [p for p, v in phases.items() if tf is not None and v == tf and v > 0]
    colours = ["#d22" if len(targets) == 1 and p == targets[0] else "#47a" for p in phases]
    b.bar(list(phases), list(phases.values()), color=colours)
    if len(targets) == 1:
        from matplotlib.patches import Patch

        b.legend(handles=[Patch(color="#d22", label=f"target {targets[0]}"), Patch(color="#47a", label="other phases")],
                 fontsize=8)
    b.set(ylabel="weight fraction (XRD, measured, 0-1)",
          title="phases at unloading" + (f": target fraction {tf:.3f}" if tf is not None else ""))
    b.tick_params(axis="x", rotation=45)
    b.grid(alpha=0.3, axis="y")
