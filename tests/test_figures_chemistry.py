"""Hull and pathway figures: labels that do not collide, marks that agree with the hull
table, no metal end-member, legends only for what is drawn, the unobtainium pathway."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.text import Text

from synthgap.envs.chemistry import hull_at, load_system
from synthgap.envs.chemistry.pathway import pathways
from synthgap.envs.lab.plots import renderer_of
from synthgap.experiments.chemistry_plots import (
    ON_HULL,
    _lower_hull,
    hull_figure,
    join_points,
    pathway_figure,
)

SYSTEMS = ("BaTiO3", "CaSiO3", "LiMn2O4", "MgAl2O4")
T = 1273.0


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def _label_boxes(ax, renderer):
    """(text, pixel box of the text itself: an Annotation's own extent includes its leader)."""
    return [(a.get_text(), Text.get_window_extent(a, renderer)) for a in ax.texts]


def _assert_no_overlap(boxes, tol_px=0.5):
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        assert not (w > tol_px and h > tol_px), f"labels {ta!r} and {tb!r} overlap ({w:.1f} x {h:.1f} px)"


@pytest.fixture(scope="module", params=SYSTEMS)
def hull(request):
    system = load_system(request.param)
    fig = hull_figure(system, T)
    yield system, fig, renderer_of(fig)
    _close(fig)


def test_hull_labels_overlap_neither_each_other_nor_leave_the_axes(hull):
    _, fig, renderer = hull
    for ax in fig.axes:
        boxes = _label_boxes(ax, renderer)
        assert boxes, "a hull panel without labels"
        _assert_no_overlap(boxes)
        frame = ax.get_window_extent(renderer)
        for text, box in boxes:
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text


def test_hull_marks_are_blue_exactly_where_the_hull_table_says_zero(hull):
    system, fig, _ = hull
    for ax, temp in zip(fig.axes, (0.0, T), strict=True):
        stable = set(hull_at(system, temp).stable)
        _, pts = join_points(system, temp)
        seen = 0
        for coll in ax.collections:
            (x, y), colour = coll.get_offsets()[0], to_hex(coll.get_facecolor()[0])
            name = next(n for n, p in pts.items() if np.allclose(p, (x, y)))
            assert (colour == to_hex(ON_HULL)) == (name in stable), (temp, name, colour)
            seen += 1
        assert seen == len(pts)


def test_no_element_end_member_and_no_vertical_hull_segment(hull):
    system, fig, _ = hull
    metals = [e for e in system.elements if e not in ("O", "C", "H")]
    for ax in fig.axes:
        assert not any(a.get_text().split(" ")[0].rstrip("*") in metals for a in ax.texts)
        xs = ax.lines[0].get_xdata()
        assert np.all(np.diff(xs) > 0), f"a vertical segment in the hull line: x = {xs}"


def test_the_unobtainium_entry_is_in_the_legend_only_where_there_is_one(hull):
    system, fig, _ = hull
    entries = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    has = any(t.unobtainium for t in system.targets.values())
    assert ("unobtainium candidate" in entries) == has


def test_the_lower_hull_keeps_only_the_lowest_point_at_one_composition():
    assert _lower_hull([(0.0, -1.0), (1.0, -3.0), (1.0, -2.0), (1.0, 0.0), (0.5, -1.0)]) == [(0.0, -1.0),
                                                                                            (1.0, -3.0)]


def test_the_unobtainium_pathway_is_drawn_with_its_note_and_no_warning():
    system = load_system("BaTiO3")
    fig = pathway_figure(system, "Ba3Ti2O7", T, pathways(system, "Ba3Ti2O7", T))  # warnings are errors
    try:
        ax = fig.axes[0]
        assert ax.lines and fig.legends and fig.legends[0].get_texts()
        assert "Ba3Ti2O7" in ax.get_title() and "never forms" in ax.get_title()
        fig.tight_layout()  # as the figure is saved
        title = ax.title.get_window_extent(renderer_of(fig))
        page = fig.bbox
        assert page.x0 <= title.x0 and title.x1 <= page.x1, "the note runs off the figure"
    finally:
        _close(fig)


@pytest.mark.parametrize("name", SYSTEMS)
def test_pathway_labels_are_unique_apart_and_name_the_by_products(name):
    system = load_system(name)
    target = next(iter(system.targets))
    fig = pathway_figure(system, target, T, pathways(system, target, T))
    try:
        ax = fig.axes[0]
        boxes = _label_boxes(ax, renderer_of(fig))
        _assert_no_overlap(boxes)
        states = [t for t, _ in boxes if not t.startswith("Ea ")]
        ends = [t for t in states if t.split(" + ")[0].split()[-1] == target]
        assert len(ends) == len(set(ends)), f"end labels repeat: {ends}"
        if name == "LiMn2O4":  # Li4Mn5O12 -> 2 LiMn2O4 + Li2MnO3 + 0.5 O2 (Takada et al. 1996)
            assert any("Li2MnO3" in t for t in ends), ends
    finally:
        _close(fig)
