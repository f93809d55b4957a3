"""Evaluation episodes, their summary figures and plots; the SB3 logger output's bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from synthgap.agents.rl.callbacks import MemoryWriter
from synthgap.agents.rl.evaluation import (
    CAMPAIGN,
    FURNACE,
    plot_episodes,
    plot_learning_curve,
    random_actor,
    run_episodes,
    summarize,
)


def test_campaign_summary_and_plot(tmp_path):
    kwargs = {"budget": 3}
    eps = run_episodes(random_actor(CAMPAIGN, kwargs, 0), CAMPAIGN, kwargs, episodes=2, seed=5)
    assert [len(e.rewards) for e in eps] == [3, 3] and [e.seed for e in eps] == [5, 6]
    s = summarize(CAMPAIGN, eps)
    assert s["median_best_buildable"] == pytest.approx(np.median([e.best_buildable for e in eps]))
    assert 0.0 <= s["median_best_buildable"] <= 1.5
    png = plot_episodes(CAMPAIGN, eps, tmp_path / "campaign.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_same_seeds_same_episodes():
    a = run_episodes(random_actor(FURNACE, {}, 1), FURNACE, {}, episodes=2, seed=9)
    b = run_episodes(random_actor(FURNACE, {}, 1), FURNACE, {}, episodes=2, seed=9)
    assert [e.rewards for e in a] == [e.rewards for e in b]
    assert a[0].trace and len(a[0].trace[0]) == 3  # time s, setpoint K, thermocouple K: what the furnace logs
    truth = a[0].infos[-1]["privileged"]
    assert len(truth["trace_time_s"]) == len(truth["trace_K"]) > 0


def test_learning_curve_png(tmp_path):
    png = plot_learning_curve({"eval/mean_reward": [(64, 0.1), (128, 0.3)], "rollout/ep_rew_mean": []},
                              tmp_path / "curve.png")
    assert png.stat().st_size > 1000


def test_writer_keeps_numbers_and_respects_floors():
    w = MemoryWriter(floors={"a": 10})
    w.write({"a": 1.0, "b": np.float32(2.0), "s": "text", "n": float("nan"), "x": 3},
            {"x": ("buffered", "memory")}, step=10)
    w.write({"a": 4.0}, {}, step=11)
    assert w.sent == []  # nothing leaves before a checkpoint
    assert [(k, v, s) for k, v, s, _ in w.pending()] == [("b", 2.0, 10), ("a", 4.0, 11)]
    w.flush()
    assert [(k, s) for k, _, s, _ in w.sent] == [("b", 10), ("a", 11)]
    w.send_pending([["a", 9.0, 11, 0], ["a", 5.0, 12, 0]])  # step 11 is already in the store
    assert [(k, s) for k, _, s, _ in w.sent][-1] == ("a", 12) and len(w.sent) == 3
