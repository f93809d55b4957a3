"""A logged policy serves where synthgap is not installed: the model's requirements and its code_paths.

The fast tests register a tiny untrained PPO policy and load it in a Python that cannot
import synthgap; the slow one builds a clean venv from the model's ``requirements.txt``
alone and asks ``mlflow models serve --env-manager local`` for a prediction over HTTP.
"""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",  # MLflow's SQL store
    "ignore:.*Any type hint is inferred as AnyType:UserWarning",  # raised while mlflow.pyfunc imports
)

ENV = "synthgap/FurnaceControl-v0"
ENV_KWARGS = {"max_intervals": 6}
# a Python that cannot import synthgap: what a fresh environment of the model's requirements is
_NO_SYNTHGAP = """
import sys
class _Hide:  # every import finder, blind to synthgap (installed or editable)
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name == "synthgap" or name.startswith("synthgap."):
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None
    def __getattr__(self, attr):  # find_distributions, invalidate_caches, ...
        return getattr(self.finder, attr)
sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
try:
    import synthgap
    raise SystemExit("synthgap still importable")
except ModuleNotFoundError:
    pass
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A registered policy (signed with a key of its own) and the observations to ask it about."""
    from stable_baselines3 import PPO

    from synthgap.agents.rl.envs import make_env
    from synthgap.experiments.tracking import experiment_id, get_client, log_policy_model

    tmp = tmp_path_factory.mktemp("serving")
    key = tmp / "keys" / "serving.key"
    old = os.environ.get("SYNTHGAP_KEY_FILE")
    os.environ["SYNTHGAP_KEY_FILE"] = str(key)
    try:
        env = make_env(ENV, ENV_KWARGS)
        PPO("MlpPolicy", env, n_steps=32, batch_size=32, seed=3, device="cpu",
            policy_kwargs={"net_arch": [8]}).save(tmp / "policy.zip")
        env.close()
        uri = f"sqlite:///{tmp}/mlflow.db"
        client = get_client(uri)
        run = client.create_run(experiment_id(client, "synthgap-train", uri))
        config = SimpleNamespace(env_id=ENV, env_kwargs=ENV_KWARGS, algo="ppo")
        name, version = log_policy_model(client, run.info.run_id, tmp / "policy.zip", config, "serving-ppo")
        client.set_terminated(run.info.run_id)
    finally:
        if old is None:
            os.environ.pop("SYNTHGAP_KEY_FILE", None)
        else:
            os.environ["SYNTHGAP_KEY_FILE"] = old
    folder = Path(client.get_model_version_download_uri(name, version).removeprefix("file://"))
    obs = np.random.default_rng(5).uniform(-1, 1, (3, *env.observation_space.shape)).astype(np.float32)
    expected = PPO.load(tmp / "policy.zip", device="cpu").predict(obs, deterministic=True)[0]
    return SimpleNamespace(tmp=tmp, key=key, folder=folder, obs=obs, expected=expected, uri=uri,
                           model_uri=f"models:/{name}/{version}")


def test_the_serving_package_imports_nothing_of_synthgap_beyond_itself():
    """pyfunc, signing and algorithms import only the standard library, MLflow, numpy, SB3 and each other."""
    from synthgap.agents.rl import pyfunc

    allowed = {"mlflow", "numpy", "stable_baselines3", "__future__"} | set(sys.stdlib_module_names)
    here = Path(pyfunc.__file__).parent
    for name in pyfunc._SERVING_MODULES:
        tree = ast.parse((here / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: must be one of the shipped modules
                    assert f"{node.module}.py" in pyfunc._SERVING_MODULES, (name, node.module)
                    continue
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{name} imports {roots - allowed}: not shipped with the model"


def test_a_logged_policy_names_its_requirements_and_carries_its_code(served):
    reqs = (served.folder / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in reqs} >= {"stable-baselines3", "torch", "gymnasium", "mlflow", "numpy"}
    assert all("==" in r for r in reqs), reqs  # pinned: the versions that trained it
    assert not any(r.startswith("synthgap") for r in reqs)  # not on any index: its code travels instead
    code = served.folder / "code" / "synthgap_policy_model"
    assert sorted(p.name for p in code.glob("*.py")) == ["__init__.py", "algorithms.py", "pyfunc.py", "signing.py"]


def _predict_without_synthgap(served, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    script = _NO_SYNTHGAP + f"""
import json, numpy as np, mlflow.pyfunc
model = mlflow.pyfunc.load_model({str(served.folder)!r})
obs = np.asarray(json.loads({json.dumps(served.obs.tolist())!r}), dtype=np.float32)
print(json.dumps(np.asarray(model.predict(obs)).tolist()))
"""
    env = {**os.environ, "SYNTHGAP_KEY_FILE": str(served.key), "MLFLOW_DISABLE_TELEMETRY": "true", **extra_env}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                          cwd=served.tmp)


def test_a_logged_policy_predicts_in_a_python_without_synthgap(served):
    proc = _predict_without_synthgap(served, {})
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.array(json.loads(proc.stdout.splitlines()[-1])), served.expected, rtol=0, atol=1e-6)


def test_without_synthgap_the_shipped_copy_still_refuses_a_foreign_key(served, tmp_path):
    """The copy checks the SB3 zip's signature as synthgap does (here: a key the model was not signed with)."""
    from synthgap.agents.rl.registry import create_key

    other = tmp_path / "other.key"
    create_key(other)
    proc = _predict_without_synthgap(served, {"SYNTHGAP_KEY_FILE": str(other)})
    assert proc.returncode != 0
    assert "ForeignKeyError" in proc.stderr and "SYNTHGAP_TRUST_POLICY_SHA256" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_in_a_clean_venv_of_the_models_requirements(served, tmp_path):
    """``pip install -r requirements.txt`` in a venv without synthgap, then serve and POST /invocations."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "torch==" + next(
        r.split("==")[1] for r in (served.folder / "requirements.txt").read_text().split() if r.startswith("torch=="))],
        check=True, timeout=1800)  # the CPU build first, as the README says
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(served.folder / "requirements.txt")],
                   check=True, timeout=1800)
    assert subprocess.run([str(py), "-c", "import synthgap"], capture_output=True).returncode != 0
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": served.uri, "SYNTHGAP_KEY_FILE": str(served.key),
           "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    log = tmp_path / "serve.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen([str(venv / "bin" / "mlflow"), "models", "serve", "-m", served.model_uri,
                                   "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                                  env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)
    try:
        body = json.dumps({"inputs": served.obs.tolist()}).encode()
        deadline, answer = time.monotonic() + 300, None
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    answer = json.loads(resp.read())
            except urllib.error.HTTPError as exc:  # the server answered, with an error: that is the failure
                with exc:
                    pytest.fail(f"POST /invocations: HTTP {exc.code}: {exc.read()[-2000:]!r}")
            except OSError:  # not listening yet
                time.sleep(1.0)
        assert answer is not None, log.read_text(errors="replace")[-3000:]
        np.testing.assert_allclose(np.array(answer["predictions"]), served.expected, rtol=0, atol=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=60)
