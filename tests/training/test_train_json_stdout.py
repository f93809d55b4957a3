"""``--json`` means one JSON object on stdout, even with the progress bar on."""

from __future__ import annotations

import json

from synthgap.experiments.cli import main


def test_train_json_stdout_is_one_object_with_progress_bar(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("net_arch: [8]\nn_steps: 32\nbatch_size: 32\nn_epochs: 1\neval_episodes: 1\n")
    code = main(["train", "--env", "synthgap/FurnaceControl-v0", "--timesteps", "64", "--config", str(cfg),
                 "--eval-freq", "0", "--checkpoint-freq", "0", "--tracking-uri", f"sqlite:///{tmp_path}/m.db",
                 "--out", str(tmp_path / "out"), "--env-kwargs", '{"max_intervals": 4}', "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)["num_timesteps"] >= 64
