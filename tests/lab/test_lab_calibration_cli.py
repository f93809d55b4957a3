"""Calibration recovers furnace offsets; the CLI runs and writes plots."""

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from synthgap.envs.lab import LabParams, SimLab, random_lab_recipes
from synthgap.envs.lab.calibration import calibrate_records
from synthgap.experiments.lab_cli import add_lab_parsers


def test_calibration_recovers_offsets_within_5K(tmp_path):
    lab = SimLab("BaTiO3", 4, seed=11, config=LabParams(offset_sd_K=15.0))
    for r in random_lab_recipes(lab.system, 200, np.random.default_rng(0), lab.max_temperature_K):
        lab.submit(r)
    recs = lab.run()
    assert len(recs) == 200
    lab.write(tmp_path)
    cal = calibrate_records(tmp_path)
    truth = pd.read_csv(tmp_path / "firings_truth.csv")
    assert sorted(cal) == [0, 1, 2, 3]
    for f, c in cal.items():
        true = truth[(truth.furnace == f) & (truth.kind == "sample")].offset_K.mean()
        assert abs(c.offset_K - true) < 5.0, (f, c, true)
        assert 0 < c.offset_se_K < 5 and 0.3 < c.drift_scale_K < 5


def _parser():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(required=True)
    bench = sub.add_parser("bench").add_subparsers(required=True)
    add_lab_parsers(sub, bench)
    return p


def test_cli_run_and_calibrate(tmp_path, capsys):
    p = _parser()
    a = p.parse_args(["lab", "run", "--samples", "30", "--furnaces", "2", "--seed", "1",
                      "--out", str(tmp_path), "--json"])
    assert a.func(a) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples_done"] + out["samples_failed"] == 30 and out["lab_hours"] > 0
    assert set(out["utilisation"]) >= {"furnace", "xrd", "robot"}
    for png in ("gantt.png", "furnace_traces.png", "queues.png"):
        assert (tmp_path / png).stat().st_size > 1000
    a = p.parse_args(["calibrate", str(tmp_path), "--json"])
    assert a.func(a) == 0
    assert set(json.loads(capsys.readouterr().out)["furnaces"]) == {"0", "1"}


def test_cli_bad_input(tmp_path):
    p = _parser()
    a = p.parse_args(["lab", "run", "--furnaces", "0", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="n_furnaces"):
        a.func(a)
    a = p.parse_args(["calibrate", str(tmp_path / "nope")])
    with pytest.raises(ValueError, match="does not exist"):
        a.func(a)
    (tmp_path / "samples.csv").write_text("sample_id\n")
    a = p.parse_args(["calibrate", str(tmp_path / "samples.csv")])
    with pytest.raises(ValueError, match="is a file: give the records folder"):
        a.func(a)
