"""The Lab contract: one behaviour, every backend.

Each test runs once per backend (the ``lab_factory`` fixture, tests/lab/conftest.py) of the one lab front-end
(:class:`~synthgap.envs.lab.frontend.Lab`) through the ``lab_factory`` fixture: the SimPy
twin (:class:`~synthgap.envs.lab.simlab.SimLab`, id ``twin``), the direct backend
(:class:`~synthgap.envs.lab.direct.DirectBackend`, id ``direct``) and the hardware lab
(:class:`~synthgap.hardware.lab.HardwareLab`, id ``hardware``) on the pty emulators
(``lab_emulator`` in tests/conftest.py). Where a backend differs the test is a strict xfail
on it, with the reason naming the difference (:func:`diverges`): when the backend is fixed
the xfail turns into a failure, and the mark comes off.

Nothing here reads a wall clock: times are the lab's own (``lab.now``, record times).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from synthgap.envs.chemistry import Recipe, RecipeError
from synthgap.envs.lab.frontend import Lab
from synthgap.envs.lab.protocol import LabInputError
from synthgap.envs.lab.records import SAMPLE_STATUSES, Programme, SampleRecord, Segment

#: the contract's recipe: short (about 4 lab hours of firing), well inside every limit. The
#: 2 h dwell is 0.14 s wall on the emulators (50,000x): several thermocouple polls fall in it
#: even on a loaded machine, where a 0.5 h dwell once got too few and its mean read 20 K low.
R = Recipe("BaTiO3", ("BaCO3", "TiO2"), excess=0.0, milling_time=1.0, ramp_rate=20.0,
           dwell_temperature=1473.0, dwell_time=2.0, cooling_rate=20.0)
#: the same programme as R, another composition and milling: may share R's furnace load.
R_LOAD_MATE = replace(R, excess=0.1, milling_time=2.0)
WEIGHING_REL = 0.05  # a weighed dose is within 5 % of the commanded mass (dispense sd 1 %)
TC_DWELL_ABS_K = 15.0  # logged dwell mean vs the dwell setpoint, K (offsets, drift, overshoot)
TC_SUMMARY_KEYS = {"tc_max_K", "tc_dwell_mean_K", "tc_dwell_std_K"}
#: stations of the chain whose instrument ids a finished record names
STATION_IDS = ("balance", "mill", "press", "furnace", "xrd", "property")
#: the telemetry row every backend gives a finished sample, beyond per-precursor and per-phase columns
ROW_KEYS = {"sample_id", "tag", "status", "target", "precursors", "atmosphere", "cmd.excess",
            "cmd.milling_time", "cmd.ramp_rate", "cmd.dwell_temperature", "cmd.dwell_time",
            "cmd.cooling_rate", "mill_time_h", "humidity", "furnace", "firing_id", "programme",
            *TC_SUMMARY_KEYS, *(f"instrument.{s}" for s in STATION_IDS), "performance", "started_s",
            "finished_s"}


def diverges(request, backend: Any, name: str, reason: str) -> None:
    """Mark this test a strict xfail when it runs on backend ``name``: a known difference."""
    if backend.name == name:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def row_key_set(lab: Lab, recipe: Recipe) -> set[str]:
    """Every column of a finished sample's telemetry row (contract)."""
    return (ROW_KEYS | {f"weighed_g.{p}" for p in recipe.precursors}
            | {f"xrd.{p}" for p in lab.system.solids})


def assert_measured(lab: Lab, fractions: dict[str, float], performance: float) -> None:
    assert set(fractions) == set(lab.system.solids)
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in fractions.values())
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert isinstance(performance, float) and math.isfinite(performance)


def assert_agent_visible(lab: Lab, rec: SampleRecord, recipe: Recipe) -> None:
    """The fields an agent reads from a finished sample, filled and typed alike."""
    assert isinstance(rec, SampleRecord) and rec.recipe == recipe
    assert rec.status in SAMPLE_STATUSES and rec.status == "done"
    commanded = lab.commanded_masses(recipe)
    assert set(rec.weighed_g) == {p for p, _ in commanded}
    for p, m in commanded:
        assert isinstance(rec.weighed_g[p], float) and rec.weighed_g[p] == pytest.approx(m, rel=WEIGHING_REL)
    assert isinstance(rec.mill_time_h, float) and rec.mill_time_h == recipe.milling_time
    assert isinstance(rec.furnace, int) and rec.furnace >= 0
    assert isinstance(rec.firing_id, str) and rec.firing_id
    assert rec.programme == Programme.from_recipe(recipe)
    assert set(rec.tc_summary) == TC_SUMMARY_KEYS
    assert rec.tc_summary["tc_dwell_mean_K"] == pytest.approx(recipe.dwell_temperature, abs=TC_DWELL_ABS_K)
    assert_measured(lab, rec.xrd_phase_fractions, rec.performance)
    assert isinstance(rec.started_s, float) and isinstance(rec.finished_s, float)
    assert rec.started_s < rec.finished_s


# ---------------------------------------------------------------------- validation

def _short_programme() -> Programme:
    return Programme((Segment("ramp", 298.15, 398.15, 600.0), Segment("cool", 398.15, 298.15, 600.0)))




@dataclass(frozen=True)
class Refusal:
    """A request every lab refuses before doing anything.

    Attributes:
        call: ``call(lab, sample_id)``; ``sample_id`` is a fresh sample from ``new_sample(R)``.
        error: the exception type.
        message: the whole message, ``{sid}`` standing for the sample id (a regex when ``pattern``).
        diverges: backend -> how it differs today (a strict xfail there).
    """

    call: Callable[[Lab, str], Any]
    error: type[ValueError]
    message: str
    pattern: bool = False
    diverges: dict[str, str] = field(default_factory=dict)


REFUSALS = {
    "run_recipe-not-a-recipe": Refusal(lambda lab, s: lab.run_recipe(R.to_dict()), LabInputError,
                                       "expected a Recipe, got dict"),
    "run_recipe-unknown-precursor": Refusal(
        lambda lab, s: lab.run_recipe(Recipe("BaTiO3", ("BaCO3", "XO2"))), RecipeError,
        "unknown precursor 'XO2' in BaTiO3 (precursors: BaCO3, TiO2, BaO)"),
    "run_recipe-too-hot": Refusal(lambda lab, s: lab.run_recipe(replace(R, dwell_temperature=1800.0)),
                                  RecipeError, "dwell_temperature must be within [573, 1773] K, got 1800.0"),
    "submit-milling-too-long": Refusal(lambda lab, s: lab.submit(replace(R, milling_time=13.0)), RecipeError,
                                       "milling_time must be within [0, 12] h, got 13.0"),
    "new_sample-unknown-atmosphere": Refusal(lambda lab, s: lab.new_sample(replace(R, atmosphere="Ar")),
                                             RecipeError, r"atmosphere 'Ar' .*", pattern=True),
    "submit_load-empty": Refusal(lambda lab, s: lab.submit_load([]), LabInputError,
                                 "a load needs >= 1 recipe and one tag each, got 0 and 0"),
    "submit_load-one-tag-for-two": Refusal(lambda lab, s: lab.submit_load([R, R_LOAD_MATE], tags=["a"]),
                                           LabInputError, "a load needs >= 1 recipe and one tag each, got 2 and 1"),
    "submit_load-bad-member": Refusal(
        lambda lab, s: lab.submit_load([R, replace(R, dwell_temperature=1800.0)]), RecipeError,
        "dwell_temperature must be within [573, 1773] K, got 1800.0"),
    "submit_load-two-programmes": Refusal(
        lambda lab, s: lab.submit_load([R, replace(R, dwell_time=3.0)]), LabInputError,
        "recipes of one load must share the firing programme and atmosphere; BaTiO3 differs from BaTiO3"),
    "dispense-negative": Refusal(lambda lab, s: lab.dispense(s, "BaCO3", -1.0), LabInputError,
                                 "mass_g must be a finite mass > 0 g, got -1.0"),
    "dispense-nan": Refusal(lambda lab, s: lab.dispense(s, "BaCO3", math.nan), LabInputError,
                            "mass_g must be a finite mass > 0 g, got nan"),
    "dispense-unknown-precursor": Refusal(lambda lab, s: lab.dispense(s, "Unobtainium", 1.0), LabInputError,
                                          "unknown precursor 'Unobtainium' in BaTiO3 (precursors: BaCO3, TiO2, BaO)"),
    "mill-negative": Refusal(lambda lab, s: lab.mill(s, -1.0), LabInputError,
                             "milling hours must be within [0, 12] h, got -1.0"),
    "mill-too-long": Refusal(lambda lab, s: lab.mill(s, 13.0), LabInputError,
                             "milling hours must be within [0, 12] h, got 13.0"),
    "fire-no-samples": Refusal(lambda lab, s: lab.fire([], Programme.from_recipe(R)), LabInputError,
                               "fire needs at least one sample id"),
    "fire-unknown-sample": Refusal(
        lambda lab, s: lab.fire(["S99999"], Programme.from_recipe(R)), LabInputError,
        "unknown sample id 'S99999'"),
    "fire-same-sample-twice": Refusal(
        lambda lab, s: lab.fire([s, s], _short_programme()), LabInputError,
        "duplicate sample ids in the load: ['{sid}', '{sid}']"),
    "fire-empty-programme": Refusal(lambda lab, s: lab.fire([s], Programme(())), LabInputError,
                                    "programme must be a Programme with at least one segment"),
    "fire-above-furnace-limit": Refusal(
        lambda lab, s: lab.fire([s], Programme((Segment("dwell", 1900.0, 1900.0, 60.0),))), LabInputError,
        "programme setpoint 1900 K is above this lab's limit 1773.15 K"),
    "fire-too-fast": Refusal(lambda lab, s: lab.fire([s], Programme((Segment("ramp", 300.0, 1300.0, 60.0),))),
                             LabInputError, "segment rate 1000 K/min is above this lab's limit 50 K/min"),
    "fire-zero-duration": Refusal(lambda lab, s: lab.fire([s], Programme((Segment("dwell", 1000.0, 1000.0, 0.0),))),
                                  LabInputError, "segment duration must be > 0 s, got 0.0"),
    "fire-unknown-atmosphere": Refusal(
        lambda lab, s: lab.fire([s], Programme((Segment("dwell", 1000.0, 1000.0, 60.0),), "Ar")), LabInputError,
        "atmosphere 'Ar' unknown; choose from CO2, N2, O2, air"),
    "characterise-unfired": Refusal(
        lambda lab, s: lab.characterise(s), LabInputError, "sample '{sid}' has not been fired successfully"),
    "run-until-past": Refusal(
        lambda lab, s: lab.run(until=-1.0), LabInputError, r"until must be a lab time >= now \(.* s\), got -1\.0",
        pattern=True),
    "telemetry-unknown-sample": Refusal(lambda lab, s: lab.telemetry("S99999"), LabInputError,
                                        "unknown sample id 'S99999'"),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_invalid_request_refused_alike_before_anything_is_done(lab_factory, request, case: Refusal):
    for name, reason in case.diverges.items():
        diverges(request, lab_factory, name, reason)
    lab = lab_factory()
    sid = lab.new_sample(R)
    before = lab_factory.activity(lab)
    message = case.message.replace("{sid}", sid)
    with pytest.raises(case.error) as caught:
        case.call(lab, sid)
    assert type(caught.value) is case.error and isinstance(caught.value, ValueError)
    assert re.fullmatch(message if case.pattern else re.escape(message), str(caught.value)), str(caught.value)
    assert lab_factory.activity(lab) == before  # nothing was simulated, commanded or written
    assert lab.run() == []  # and nothing was queued
    assert lab_factory.activity(lab) == before


# ---------------------------------------------------------------------- records and clock

def test_run_recipe_fills_the_agent_visible_record(lab_factory):
    lab = lab_factory()
    rec = lab.run_recipe(R)
    assert_agent_visible(lab, rec, R)
    row = lab.telemetry(rec.sample_id)
    assert row == rec.to_row()
    assert ROW_KEYS <= set(row) and not any("truth" in k for k in row)


def test_telemetry_has_the_same_keys_on_every_backend(lab_factory):
    lab = lab_factory()
    rec = lab.run_recipe(R)
    expected = (row_key_set(lab, R) | {f"lot.{p}" for p in R.precursors} | {"instrument.robot"}
                | {f"wait_s.{s}" for s in (*STATION_IDS, "robot")})
    assert set(lab.telemetry(rec.sample_id)) == expected


def test_clock_is_monotone_and_covers_the_programme(lab_factory):
    lab = lab_factory()
    programme_s = Programme.from_recipe(R).duration_s
    times = [lab.now]
    lab.submit(R)
    times.append(lab.now)
    (queued,) = lab.run()
    times.append(lab.now)
    rec = lab.run_recipe(R)
    times.append(lab.now)
    assert all(isinstance(t, float) and math.isfinite(t) for t in times)
    assert times == sorted(times)
    assert times[2] - times[0] >= programme_s and times[3] - times[2] >= programme_s
    assert times[0] <= queued.started_s < queued.finished_s <= times[2]
    assert times[2] <= rec.started_s < rec.finished_s <= times[3]
    assert rec.finished_s - rec.started_s >= programme_s


def test_shared_load_fires_once_in_one_furnace(lab_factory, request):
    lab = lab_factory()
    ids = lab.submit_load([R, R_LOAD_MATE], tags=["host", "guest"])
    recs = lab.run()
    assert sorted(r.sample_id for r in recs) == sorted(ids) and len(set(ids)) == 2
    by_id = {r.sample_id: r for r in recs}
    assert [by_id[i].tag for i in ids] == ["host", "guest"]
    assert_agent_visible(lab, by_id[ids[0]], R)
    assert_agent_visible(lab, by_id[ids[1]], R_LOAD_MATE)
    assert [r.finished_s for r in recs] == sorted(r.finished_s for r in recs)  # finishing order
    assert len({r.furnace for r in recs}) == 1
    assert len({r.firing_id for r in recs}) == 1


def test_step_by_step_makes_a_record_like_run_recipe(lab_factory, request):
    lab = lab_factory()
    t0 = lab.now
    sid = lab.new_sample(R)
    for p, m in lab.commanded_masses(R):
        assert lab.dispense(sid, p, m) == pytest.approx(m, rel=WEIGHING_REL)
    lab.mill(sid, R.milling_time)
    lab.press(sid)
    programme = Programme.from_recipe(R)
    log = lab.fire([sid], programme)
    assert log.status == "ok" and log.sample_ids == (sid,) and log.programme == programme
    assert t0 <= log.started_s < log.finished_s <= lab.now
    assert log.finished_s - log.started_s >= programme.duration_s - 1e-6  # s: the clock's rounding
    assert log.time_s.size == log.thermocouple_K.size > 5
    ch = lab.characterise(sid)
    assert_measured(lab, ch.phase_fractions, ch.performance)
    row = lab.telemetry(sid)
    assert {k for k in row if not k.startswith(("lot.", "wait_s.", "instrument."))} == \
        {k for k in row_key_set(lab, R) if not k.startswith("instrument.")}
    assert row["firing_id"] == log.firing_id and row["furnace"] == log.furnace
    assert row["programme"] == programme.to_json() and row["mill_time_h"] == R.milling_time
    assert {k: row[f"xrd.{k}"] for k in lab.system.solids} == ch.phase_fractions
    assert row["performance"] == ch.performance
    assert row["status"] == "done" and t0 <= row["started_s"] < row["finished_s"] <= lab.now


def test_seed_reproduces_the_records(lab_factory):
    if not lab_factory.simulated:
        pytest.skip(f"{lab_factory.name}: not simulated; its noise is the instruments' (here the emulators' own "
                    "generators), not a seed the lab takes")

    def campaign(seed: int) -> str:
        lab = lab_factory(seed)
        rows = [lab.run_recipe(R).to_row()]
        lab.submit_load([R, R_LOAD_MATE])
        rows += [r.to_row() for r in lab.run()]
        return json.dumps(rows, sort_keys=True)

    assert campaign(5) == campaign(5)
    assert campaign(5) != campaign(6)
