"""The demo's and evaluation's figures: one hull per system and a report that links only files
it wrote, a best-so-far figure whose labels lie inside it and whose title is the campaign
set's mean, an evaluation figure without a colour bar for a single colour, and ``pathway``
saying when a target never forms."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from synthgap.agents.rl.evaluation import CAMPAIGN, FURNACE, Episode, episodes_figure
from synthgap.envs.chemistry import bundled_system_names
from synthgap.envs.lab.plots import renderer_of
from synthgap.experiments.cli import main

pytestmark = pytest.mark.filterwarnings(
    # SQLAlchemy 2.1 deprecation inside MLflow's SQL store, not ours
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
)


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def _episode(seed: int, buildable: list[float], temps=None, target: str = "BaTiO3") -> Episode:
    """A Campaign-v0 episode of len(buildable) experiments (measured = buildable), oracle 1."""
    temps = temps or [900.0 + 50 * k for k in range(len(buildable))]
    infos = [{"recipe": {"target": target, "precursors": ["BaCO3", "TiO2"], "dwell_temperature": t,
                         "dwell_time": 2.0 + k},
              "measured_performance": v, "reward_parts": {}, "privileged": {"buildable": v}}
             for k, (v, t) in enumerate(zip(buildable, temps, strict=True))]
    return Episode(seed=seed, rewards=[0.0] * len(buildable), infos=infos, oracle=1.0)


def _inside(box, frame, tol=1.0) -> bool:
    return box.x0 >= frame.x0 - tol and box.y0 >= frame.y0 - tol and box.x1 <= frame.x1 + tol \
        and box.y1 <= frame.y1 + tol


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "demo"
    code = main(["demo", "--timesteps", "64", "--budget", "2", "--campaigns", "2", "--recipes", "100",
                 "--out", str(out), "--tracking-uri", f"sqlite:///{tmp}/mlflow.db", "--no-progress", "--json"])
    assert code == 0
    return out


def test_the_demo_writes_one_hull_per_system_and_links_only_files_it_wrote(demo, capsys):
    capsys.readouterr()
    hulls = sorted(p.name for p in demo.glob("*hull*.png"))
    assert hulls == sorted(f"{name}_hull.png" for name in bundled_system_names())  # no second copy
    report = (demo / "report.md").read_text()
    shown = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    links = re.findall(r"\[[^]]*\]\(([^)]+)\)", report)  # shown, or linked
    assert links and all((demo / link).is_file() for link in links), links
    assert len(shown) == len(set(shown)), "a figure shown twice in the report"
    assert "BaTiO3_hull.png" in shown and "best_so_far.png" in shown
    # every figure the demo wrote is in the report
    assert {p.name for p in demo.glob("*.png")} <= set(links)


def test_best_so_far_labels_inside_the_figure_and_title_is_the_mean_at_the_final_budget():
    from synthgap.agents.statistics import bootstrap_mean
    from synthgap.experiments.demo import best_so_far_figure

    rng = np.random.default_rng(0)
    results = {who: [_episode(s, list(np.maximum.accumulate(rng.uniform(0, 1, 6)))) for s in range(8)]
               for who in ("ppo", "random")}
    fig = best_so_far_figure(results, "BaTiO3")
    try:
        renderer = renderer_of(fig)
        frame = fig.bbox
        (ax,) = fig.axes
        legend = ax.get_legend()
        for artist in (ax.yaxis.label, ax.xaxis.label, ax.title, legend):
            box = artist.get_window_extent(renderer)
            assert _inside(box, frame), f"{artist} leaves the figure: {box} not in {frame}"
        assert "fraction of each world's oracle" in ax.get_ylabel()
        texts = [t.get_text() for t in legend.get_texts()]
        assert any("95 % bootstrap interval" in t for t in texts)
        final = bootstrap_mean([e.buildable_so_far()[-1] for e in results["ppo"]])
        assert str(final) in ax.get_title() and "after 6 experiments" in ax.get_title()
    finally:
        _close(fig)


@pytest.mark.parametrize("values, colour_bar", [([0.0], False), ([0.2, 0.2, 0.2], False), ([0.1, 0.5, 0.3], True)])
def test_evaluation_figure_has_a_colour_bar_only_for_more_than_one_value(values, colour_bar):
    episodes = [_episode(7, values)]
    fig = episodes_figure(CAMPAIGN, episodes)
    try:
        renderer = renderer_of(fig)
        assert len(fig.axes) == (3 if colour_bar else 2)
        left, right = fig.axes[:2]
        notes = [t.get_text() for t in right.texts]
        assert bool(notes) is not colour_bar  # one value: said in words instead
        best = int(np.argmax(values))
        assert f"{900 + 50 * best:.0f} K for {2 + best:.1f} h" in right.get_title()
        assert "fraction of each world's oracle" in left.get_ylabel()
        for ax in (left, right):
            assert _inside(ax.get_legend().get_window_extent(renderer), fig.bbox)
    finally:
        _close(fig)


def test_evaluation_figure_explains_its_band_with_several_campaigns():
    episodes = [_episode(s, [0.1 * s, 0.2 * s, 0.2 * s]) for s in range(1, 5)]
    fig = episodes_figure(CAMPAIGN, episodes)
    try:
        left = fig.axes[0]
        texts = [t.get_text() for t in left.get_legend().get_texts()]
        assert "mean over 4 campaigns" in texts and "95 % bootstrap interval of the mean" in texts
        assert "over 4 campaigns" in left.get_title()
    finally:
        _close(fig)


def test_furnace_figure_has_units_and_a_legend_for_every_line():
    e = Episode(seed=3, rewards=[0.0], trace=[(0.0, 300.0, 301.0), (3600.0, 900.0, 890.0)],
                infos=[{"phase_fractions": {"BaCO3": 0.4, "BaTiO3": 0.6}, "target_fraction": 0.6,
                        "privileged": {"trace_time_s": [0.0, 3600.0], "trace_K": [299.0, 880.0]}}])
    fig = episodes_figure(FURNACE, [e])
    try:
        a, b = fig.axes
        assert len(a.get_legend().get_texts()) == len(a.lines) == 3
        assert "(K)" in a.get_ylabel() and "(h)" in a.get_xlabel() and "0-1" in b.get_ylabel()
        assert "target BaTiO3" in [t.get_text() for t in b.get_legend().get_texts()]
    finally:
        _close(fig)


def test_pathway_to_an_unobtainium_target_says_it_never_forms(capsys, tmp_path):
    assert main(["pathway", "BaTiO3", "--target", "Ba3Ti2O7", "--out", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "Ba3Ti2O7 (an unobtainium candidate) never forms from BaCO3 + TiO2" in out
    assert main(["pathway", "BaTiO3", "--target", "Ba3Ti2O7", "--out", str(tmp_path / "p.png"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["forms"] is False and data["paths"] == [] and data["target"] == "Ba3Ti2O7"
    assert main(["pathway", "BaTiO3", "--out", str(tmp_path / "q.png"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["forms"] is True and data["paths"]
