"""The main job, small: report, plots, MLflow runs, registered policy, from one command."""

from __future__ import annotations

import json

import pytest

from synthgap.experiments.cli import main


def test_demo_writes_report_and_tracks_everything(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    # progress bar on, as the README runs it
    code = main(["demo", "--timesteps", "100", "--budget", "2", "--campaigns", "2", "--recipes", "200",
                 "--out", str(tmp_path / "demo"), "--tracking-uri", uri, "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    out = tmp_path / "demo"
    report = (out / "report.md").read_text()
    for png in ("learning_curve.png", "best_so_far.png", "chosen_recipe_firing.png", "BaTiO3_hull.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG" and png in report
    assert "Ba3Ti2O7 (unobtainium)" in report
    from synthgap.experiments.tracking import get_client

    client = get_client(uri)
    demo = client.get_run(result["mlflow_run_id"])
    assert demo.data.metrics["ppo_median_best_buildable"] == pytest.approx(result["ppo_median_best_buildable"])
    for who in ("ppo", "random"):  # a mean with its bootstrap interval, and the paired test
        low, mean, high = (result[f"{who}_mean_best_buildable{s}"] for s in ("_low", "", "_high"))
        assert low <= mean <= high and demo.data.metrics[f"{who}_mean_best_buildable"] == pytest.approx(mean)
    assert 0.0 <= result["paired_wilcoxon_p"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(demo.info.run_id, "report")}
    assert "report/report.md" in artifacts and "report/best_so_far.png" in artifacts
    train = client.get_run(result["train_run_id"])
    assert train.data.params["env_id"] == "synthgap/Campaign-v0" and train.info.status == "FINISHED"
    assert demo.data.tags["mlflow.source.name"] == "synthgap demo" and train.data.tags["mlflow.source.name"] == \
        "synthgap train"
    assert result["model_uri"].startswith("models:/synthgap-demo-BaTiO3-ppo/")


def test_demo_refuses_bad_input(capsys):
    assert main(["demo", "--budget", "0"]) == 2
    assert "--budget must be >= 1" in capsys.readouterr().err
    assert main(["demo", "--system", "NoSuchSystem"]) == 2
