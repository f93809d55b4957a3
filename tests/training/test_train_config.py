"""Input validation of ``synthgap train`` and friends: bad input ends with status 2 and one line."""

from __future__ import annotations

import shlex

import pytest

from synthgap.agents.rl.config import ConfigError, TrainConfig, config_from_mapping, load_config
from synthgap.experiments.cli import main

pytestmark = pytest.mark.filterwarnings(
    # SQLAlchemy 2.1 deprecation inside MLflow's SQL store, not ours
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
)


def test_defaults_validate_and_log_as_strings():
    params = TrainConfig().as_params()
    assert params["algo"] == "ppo" and params["net_arch"] == "[64, 64]" and params["env_kwargs"] == "{}"
    assert set(params) == set(TrainConfig.__dataclass_fields__)


def test_every_field_has_a_docstring():
    import ast
    import inspect

    import synthgap.agents.rl.config as mod

    body = next(n for n in ast.parse(inspect.getsource(mod)).body
                if isinstance(n, ast.ClassDef) and n.name == "TrainConfig").body
    documented = {a.target.id for a, d in zip(body, body[1:], strict=False)
                  if isinstance(a, ast.AnnAssign) and isinstance(d, ast.Expr) and isinstance(d.value, ast.Constant)}
    assert documented == set(TrainConfig.__dataclass_fields__)


@pytest.mark.parametrize(("data", "field"), [
    ({"n_steps": "many"}, "n_steps"),
    ({"learning_rate": 3}, "learning_rate"),
    ({"net_arch": [8, -1]}, "net_arch"),
    ({"algo": "dqn"}, "algo"),
    ({"env_kwargs": [1]}, "env_kwargs"),
    ({"total_timesteps": 0}, "total_timesteps"),
    ({"n_stepz": 3}, "n_stepz"),
    ({"vectorization": "ray"}, "vectorization"),
    ({"n_envs": 65}, "n_envs"),
])
def test_bad_config_names_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        config_from_mapping(data)


def test_yaml_file_round_trip_and_errors(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("algo: sac\nnet_arch: [8]\nlearning_rate: 0.001\n")
    c = load_config(good)
    assert (c.algo, c.net_arch, c.learning_rate) == ("sac", [8], 1e-3)
    bad = tmp_path / "bad.yaml"
    bad.write_text("gamma: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("argv", "needle"), [
    (["--env-kwargs", "{budget: 3}"], "--env-kwargs"),
    (["--env-kwargs", "[1]"], "--env-kwargs"),
    (["--env", "synthgap/Nope-v0"], "unknown env id"),
    (["--env", "CartPole-v1", "--algo", "sac"], "Box action space"),
    (["--env-kwargs", '{"interval": 1}'], "interval"),
    (["--timesteps", "0"], "total_timesteps"),
    (["--resume", "abc", "--algo", "sac"], "--algo"),
    (["--n-envs", "100"], "vectorization: native"),
    (["--vectorization", "native"], "no native vector env"),
])
def test_train_user_errors_exit_2_with_one_line(argv, needle, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    status = main(["train", *argv, "--tracking-uri", uri, "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("synthgap: error:") and needle in err[0]


def test_ppo_batch_size_must_divide_rollout(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("n_steps: 30\nbatch_size: 64\n")
    assert main(["train", "--config", str(cfg), "--tracking-uri", f"sqlite:///{tmp_path}/m.db",
                 "--out", str(tmp_path)]) == 2
    assert "batch_size" in capsys.readouterr().err


def test_ui_command_line(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["ui", "--dry-run", "--port", "5077", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "MLflow UI: http://127.0.0.1:5077"
    assert out[1].startswith(f"store {uri}; telemetry off (MLFLOW_DISABLE_TELEMETRY=true")
    cmd = shlex.split(out[2])
    assert cmd[1:4] == ["-m", "mlflow", "server"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5077"
    assert cmd[cmd.index("--backend-store-uri") + 1] == uri
    assert cmd[cmd.index("--default-artifact-root") + 1] == (tmp_path / "artifacts").as_uri()


def test_the_served_ui_is_told_to_send_no_telemetry(tmp_path):
    """The server ``synthgap ui`` starts answers the UI's telemetry query with "disabled"."""
    import json
    import os
    import socket
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from synthgap.experiments.tracking import ui_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}  # what the synthgap CLI sets before exec
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(ui_command(port, f"sqlite:///{tmp_path}/mlflow.db"), env=env, cwd=tmp_path,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        answer, deadline = None, time.monotonic() + 120
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/ajax-api/3.0/mlflow/ui-telemetry"
                with urllib.request.urlopen(url, timeout=10) as resp:
                    answer = json.loads(resp.read())
            except urllib.error.HTTPError as exc:  # the server answered, with an error
                with exc:
                    pytest.fail(f"GET ui-telemetry: HTTP {exc.code}")
            except OSError:  # not listening yet
                time.sleep(0.5)
        assert answer is not None, (tmp_path / "server.log").read_text(errors="replace")[-2000:]
        assert answer["disable_ui_telemetry"] is True and answer["ui_rollout_percentage"] == 0
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_ui_default_store_is_relative_to_cwd(tmp_path, monkeypatch):
    from synthgap.experiments.tracking import ui_command

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cmd = ui_command(5000)
    assert cmd[cmd.index("--backend-store-uri") + 1] == "sqlite:///synthgap-runs/mlflow.db"
    assert cmd[cmd.index("--default-artifact-root") + 1] == (tmp_path / "synthgap-runs/artifacts").as_uri()


def test_native_vectorization_trains_on_the_batched_vector_env(tmp_path):
    """``vectorization: native``: the env's own vector env, n_envs campaigns per call, through SB3."""
    from synthgap.agents.rl.envs import make_vec_env
    from synthgap.agents.rl.trainer import train

    venv = make_vec_env("synthgap/Campaign-v0", 128, 0, {"budget": 3}, "native")
    assert venv.num_envs == 128 and type(venv.unwrapped.venv).__name__ == "CampaignVectorEnv"
    venv.close()
    config = TrainConfig(env_id="synthgap/Campaign-v0", env_kwargs={"budget": 3}, n_envs=128, vectorization="native",
                         n_steps=6, batch_size=128, n_epochs=1, total_timesteps=1536, eval_freq=0, checkpoint_freq=0)
    result = train(config, tmp_path)
    assert result.num_timesteps == 1536 and result.model_path.exists()
    assert len(result.model.ep_info_buffer) == 100  # 512 campaigns of 3 experiments finished; SB3 keeps 100
