"""Benchmark figures: figure 2.1 on a 0-1 axis with legends off the points and titles in the
figure; units on figure 2.2; regret as small multiples, one panel per planner."""

from __future__ import annotations

import pytest

from synthgap.agents.benchmark import BenchmarkConfig, run_benchmark
from synthgap.agents.figures import _by_system, drift_figure, gap_figure, regret_figure
from synthgap.agents.figures_objectives import pareto_figure
from synthgap.envs.lab.plots import renderer_of

PLANNERS = ("random", "sobol", "nsga2", "thermo_only", "synthesis_aware")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    config = BenchmarkConfig(systems=("BaTiO3",), planners=PLANNERS, seeds=2, budget=4,
                             out=str(tmp_path_factory.mktemp("bench") / "out"), workers=1,
                             oracle_samples=1000, progress=False)
    result = run_benchmark(config)
    return result, _by_system(result)


def _inside(inner, outer) -> bool:
    return outer.x0 - 0.5 <= inner.x0 and inner.x1 <= outer.x1 + 0.5 and outer.y0 - 0.5 <= inner.y0 \
        and inner.y1 <= outer.y1 + 0.5


def test_figure_2_1_is_on_a_0_1_axis_with_its_legend_off_every_point_and_nothing_cut(bench):
    result, systems = bench
    fig = gap_figure(result, systems)
    renderer = renderer_of(fig)
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        assert -0.02 <= lo <= 0 and 1 <= hi <= 1.02
        legend = ax.get_legend()
        assert legend is not None
        box = legend.get_window_extent(renderer)
        for coll in ax.collections:
            for x, y in coll.get_offset_transform().transform(coll.get_offsets()):
                assert not (box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1), "the legend hides a point"
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts):
            assert _inside(text.get_window_extent(renderer), fig.bbox), text.get_text()
        assert _inside(box, fig.bbox)
    assert _inside(fig._suptitle.get_window_extent(renderer), fig.bbox)


def test_figure_2_2_gives_the_property_and_its_unit(bench):
    result, systems = bench
    fig = drift_figure(result, systems)
    renderer = renderer_of(fig)
    (ax,) = fig.axes
    assert "relative permittivity, dimensionless" in ax.get_ylabel()
    assert ax.get_xlabel().endswith(", K")
    assert not ax.get_legend().get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


@pytest.mark.parametrize("hours", [False, True])
def test_regret_is_one_panel_per_planner_on_shared_axes_with_random_in_each(bench, hours):
    result, systems = bench
    (key, recs), = systems.items()
    fig = regret_figure(result, key, recs, hours=hours)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == list(PLANNERS)
    assert len({ax.get_ylim() for ax in axes}) == 1 and len({ax.get_xlim() for ax in axes}) == 1
    for ax in axes[1:]:  # random search's median in grey under every other planner's
        assert any(line.get_color() == "0.55" for line in ax.lines)
    entries = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "interquartile" in entries and "2 seeds" in entries


def test_the_pareto_figure_of_one_system_keeps_its_title_and_legend_in_the_figure(bench):
    result, systems = bench
    fig = pareto_figure(result, systems)
    renderer = renderer_of(fig)
    (legend,) = fig.legends
    assert _inside(legend.get_window_extent(renderer), fig.bbox)
    assert _inside(fig._suptitle.get_window_extent(renderer), fig.bbox)
    assert "fraction of the oracle" in fig.axes[0].get_ylabel()
