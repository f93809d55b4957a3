"""Lab twin: exact timelines, breakdowns, shared loads, drift, determinism, bad input."""

import numpy as np
import pytest

from synthgap.envs.chemistry import Recipe, RecipeError
from synthgap.envs.lab import LabInputError, LabParams, Programme, Segment, SimLab
from synthgap.envs.lab.records import read_table

R = Recipe("BaTiO3", ("BaCO3", "TiO2"), milling_time=1.0, ramp_rate=10.0,
           dwell_temperature=1298.15, dwell_time=1.0, cooling_rate=10.0)
# deterministic durations: ramp 6000 s + dwell 3600 s + cool 6000 s + load 300 s
FIRE_S = 6000.0 + 3600.0 + 6000.0 + 300.0
DET = dict(stochastic=False, reference_every=0, mtbf_h=float("inf"), log_events=True)


def lab_(n=1, **kw):
    return SimLab("BaTiO3", n_furnaces=n, seed=0, config=LabParams(**{**DET, **kw}))


def test_single_sample_timeline():
    lab = lab_()
    rec = lab.run_recipe(R)
    # robot 30, 2 dispenses 60 each, mill 300 + 3600, press 120, robot 30, fire, robot, xrd, prop
    t_fire = 30 + 120 + 3900 + 120 + 30
    assert ("F00001 furnace-0 start", t_fire) in lab.log
    assert ("F00001 furnace-0 end", t_fire + FIRE_S) in lab.log
    assert rec.finished_s == pytest.approx(t_fire + FIRE_S + 30 + 1800 + 600)
    assert rec.status == "done" and rec.furnace == 0 and rec.waits_s["furnace"] == 0


def test_queueing_at_one_furnace():
    lab = lab_()
    a, b = lab.submit(R, "a"), lab.submit(R, "b")
    recs = lab.run()
    assert [r.sample_id for r in recs] == [a, b]
    starts = [(e, t) for e, t in lab.log if "furnace-0 start" in e]
    ends = [(e, t) for e, t in lab.log if "furnace-0 end" in e]
    # FIFO balance: a 30-90, b 90-150, a 150-210, b 210-270; a fires at 4260, b queues at 4320
    assert ("S00002 balance-0 start", 90.0) in lab.log
    assert ("S00001 balance-0 start", 150.0) in lab.log
    assert starts[0] == ("F00001 furnace-0 start", 4260.0)
    assert ends[0] == ("F00001 furnace-0 end", 4260.0 + FIRE_S)
    assert starts[1] == ("F00002 furnace-0 start", 4260.0 + FIRE_S)
    # b: mill 270-4170, press waits for a's (4110-4230): 4230-4350, robot 4350-4380
    assert recs[1].waits_s["furnace"] == pytest.approx(4260.0 + FIRE_S - 4380.0)
    assert recs[0].waits_s["balance"] == 60.0 and recs[1].waits_s["balance"] == 90.0


def test_two_furnaces_run_in_parallel():
    lab = lab_(2)
    lab.submit(R)
    lab.submit(R)
    recs = lab.run()
    assert {r.furnace for r in recs} == {0, 1}


def test_breakdown_fails_the_load_then_repair():
    lab = lab_(mtbf_h=2.0, repair_h=1.0)  # first failure at 7200 s, mid-firing
    a = lab.submit(R)
    (rec,) = lab.run()
    assert rec.sample_id == a and rec.status == "failed" and rec.finished_s == 7200.0
    assert ("F00001 furnace-0 failed", 7200.0) in lab.log
    assert ("furnace-0 breakdown", 7200.0) in lab.log
    assert lab.run(until=11000.0) == []
    assert ("furnace-0 repaired", 10800.0) in lab.log
    assert lab.firings[0].status == "failed" and lab.firings[0].time_s[-1] <= 7200.0 - 4200.0
    assert np.isnan(rec.performance) and rec.xrd_phase_fractions == {}


def test_shared_furnace_load():
    lab = lab_()
    ids = [lab.new_sample(R, t) for t in ("x", "y")]
    for s in ids:
        for p, m in lab.commanded_masses(R):
            assert lab.dispense(s, p, m) == pytest.approx(m, rel=0.05)
        lab.mill(s, 1.0)
        lab.press(s)
    t0 = lab.now
    log = lab.fire(ids, Programme.from_recipe(R))
    assert log.sample_ids == tuple(ids) and log.status == "ok"
    assert (log.started_s, log.finished_s) == (t0, t0 + FIRE_S)
    assert [e for e, t in lab.log if "F00001" in e] == [
        "F00001 queued", "F00001 furnace-0 start", "F00001 furnace-0 end"]
    c = lab.characterise(ids[0])
    assert sum(c.phase_fractions.values()) == pytest.approx(1.0)
    assert lab.telemetry(ids[1])["firing_id"] == "F00001"


def test_reference_runs_before_samples():
    lab = lab_(reference_every=3)
    for _ in range(4):
        lab.submit(R)
    lab.run()
    kinds = [f.kind for f in lab.firings]
    assert kinds == ["reference", "sample", "sample", "sample", "reference", "sample"]
    assert len(lab.firings[0].references) == 3


def test_drift_changes_outcomes():
    recipe = Recipe("BaTiO3", ("BaCO3", "TiO2"), milling_time=2.0, ramp_rate=10.0,
                    dwell_temperature=1450.0, dwell_time=2.0, cooling_rate=10.0)
    out = {}
    for offset in (0.0, 60.0):
        lab = SimLab("BaTiO3", 1, seed=3, config=LabParams(
            furnace_offsets_K=(offset,), offset_walk_K_per_sqrt_day=0.0, reference_every=0,
            mtbf_h=float("inf")))
        for _ in range(12):
            lab.submit(recipe)
        recs = lab.run()
        out[offset] = np.array([r.xrd_phase_fractions["BaTiO3"] for r in recs])
        assert all(abs(lab.truth[r.sample_id].dwell_mean_K - (1450.0 - offset)) < 10 for r in recs)
    gap = out[0.0].mean() - out[60.0].mean()
    spread = out[0.0].std() + out[60.0].std()
    assert gap > 0.1 and gap > 3 * spread


def _campaign(seed, n=40):
    lab = SimLab("BaTiO3", 2, seed=seed, config=LabParams(reference_every=5))
    from synthgap.envs.lab import random_lab_recipes

    for r in random_lab_recipes(lab.system, n, np.random.default_rng(seed), lab.max_temperature_K):
        lab.submit(r)
    lab.run()
    return lab


def test_seed_determinism(tmp_path):
    files = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        _campaign(seed).write(tmp_path / name)
        files[name] = {p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())}
    assert files["a"] == files["b"]
    assert files["a"]["samples.csv"] != files["c"]["samples.csv"]
    assert "samples.parquet" in files["a"]
    df = read_table(tmp_path / "a", "samples")
    assert len(df) == 40 and "xrd.BaTiO3" in df and "truth" not in " ".join(df.columns)
    import pandas as pd

    pq = pd.read_parquet(tmp_path / "a" / "samples.parquet")
    pd.testing.assert_frame_equal(df, pq, check_dtype=False)


@pytest.mark.parametrize("call, match", [
    (lambda lab: lab.submit(Recipe("BaTiO3", ("BaCO3", "XO2"))), "unknown precursor"),
    (lambda lab: lab.submit(Recipe("BaTiO3", ("BaCO3", "TiO2"), dwell_temperature=1800.0)),
     "dwell_temperature"),
    (lambda lab: lab.dispense(lab.new_sample(R), "BaCO3", -1.0), "mass_g"),
    (lambda lab: lab.dispense(lab.new_sample(R), "Unobtainium", 1.0), "unknown precursor"),
    (lambda lab: lab.fire([lab.new_sample(R)], Programme((Segment("dwell", 1900, 1900, 60),))),
     "programme setpoint 1900 K is above this lab's limit 1773.15 K"),
    (lambda lab: lab.fire(["S99999"], Programme.from_recipe(R)), "unknown sample id"),
])
def test_bad_input_rejected_before_simulating(call, match):
    lab = lab_()
    with pytest.raises(ValueError, match=match):
        call(lab)
    assert lab.now == 0.0 and lab.firings == [] and lab.usage == []


def test_zero_furnaces_rejected():
    with pytest.raises(LabInputError, match="n_furnaces"):
        SimLab("BaTiO3", n_furnaces=0)
    assert issubclass(RecipeError, ValueError)
