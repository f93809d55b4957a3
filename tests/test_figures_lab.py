"""Lab run figures: a legend entry for every mark of the Gantt chart, legends off the data,
the drift band visible (a panel of deviation from the setpoint, in K)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from synthgap.envs.lab.plots import furnace_traces_figure, gantt_figure, renderer_of
from synthgap.experiments.lab_cli import _campaign


@pytest.fixture(scope="module")
def lab():
    lab, _ = _campaign("BaTiO3", 8, 2, 0)
    return lab


def _apart(a, b) -> bool:
    return a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0


def test_the_gantt_legend_names_every_station_type_and_repairs_beside_the_chart(lab):
    fig = gantt_figure(lab.usage)
    try:
        renderer = renderer_of(fig)
        (ax,) = fig.axes
        entries = {t.get_text().split(":")[0] for t in ax.get_legend().get_texts()}
        shown = {"furnace repair" if job == "repair" else s for s, _, job, a, _ in lab.usage if a / 3600 <= 72}
        assert entries == shown
        assert _apart(ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer))
        assert "h" in ax.get_xlabel()
    finally:
        plt.close(fig)


def test_the_furnace_traces_show_the_drift_band_on_a_deviation_scale_with_the_legend_off_the_data(lab):
    truth = {d["firing_id"]: (d["offset_K"], d["drift_std_K"]) for d in lab.firing_truth}
    fig = furnace_traces_figure(lab.firings, truth)
    try:
        renderer = renderer_of(fig)
        (legend,) = fig.legends
        for ax in fig.axes:
            assert ax.get_ylabel().endswith(", K")
            assert _apart(legend.get_window_extent(renderer), ax.get_window_extent(renderer))
        deviation = [ax for ax in fig.axes if ax.get_ylabel() == "T - setpoint, K"]
        assert len(deviation) == len(fig.axes) // 2
        for ax in deviation:
            if not ax.collections:
                continue
            band = ax.collections[0].get_window_extent(renderer)
            assert band.height >= 8, f"the drift band is {band.height:.1f} px tall: invisible"
    finally:
        plt.close(fig)
