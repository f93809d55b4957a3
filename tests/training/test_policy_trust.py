"""The trust anchor of registered policies: a signature made with the user's key, outside the store.

An attacker here can write the artifact store and the registry's tags, but not the key
file. Each test registers its own version of a tiny untrained PPO policy.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings(
    # SQLAlchemy 2.1 deprecation inside MLflow's SQL store, not ours
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
)

ENV = "synthgap/FurnaceControl-v0"
ENV_KWARGS = {"max_intervals": 6}


def _ppo(seed: int):
    from stable_baselines3 import PPO

    from synthgap.agents.rl.envs import make_env

    env = make_env(ENV, ENV_KWARGS)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=32, seed=seed, device="cpu", policy_kwargs={"net_arch": [8]})
    env.close()
    return model


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite store, key A (made on the first registration), the policy and another one to swap in."""
    from synthgap.experiments.tracking import experiment_id, get_client

    tmp = tmp_path_factory.mktemp("trust")
    _ppo(0).save(tmp / "policy.zip")
    _ppo(1).save(tmp / "other.zip")
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = get_client(uri)
    return SimpleNamespace(tmp=tmp, uri=uri, client=client, exp=experiment_id(client, "synthgap-train", uri),
                           key_a=tmp / "keys" / "a.key", policy=tmp / "policy.zip", other=tmp / "other.zip")


@pytest.fixture
def key_a(store, monkeypatch):
    monkeypatch.setenv("SYNTHGAP_KEY_FILE", str(store.key_a))
    return store.key_a


def register(store, name: str) -> tuple[str, Path]:
    """Register the policy as a new version of ``name`` (signed with the current key); ``(uri, store folder)``."""
    from synthgap.experiments.tracking import log_policy_model

    run = store.client.create_run(store.exp)
    config = SimpleNamespace(env_id=ENV, env_kwargs=ENV_KWARGS, algo="ppo")
    _, version = log_policy_model(store.client, run.info.run_id, store.policy, config, name)
    store.client.set_terminated(run.info.run_id)
    folder = Path(store.client.get_model_version_download_uri(name, version).removeprefix("file://"))
    return f"models:/{name}/{version}", folder


def _write_key(path: Path) -> Path:
    """A key file as a colleague's machine would make it: 32 random bytes, mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    return path


@pytest.fixture
def no_sb3_load(monkeypatch):
    """Fail the test if SB3 unpickles anything."""
    from stable_baselines3 import PPO

    def refuse(*args, **kwargs):
        raise AssertionError("PPO.load called on an unverified file")

    monkeypatch.setattr(PPO, "load", refuse)


def _retag_hash(store, uri: str, folder: Path) -> None:
    """What an attacker without the key can do: make the hash tag agree with the rewritten files."""
    from synthgap.agents.rl.registry import HASH_TAG, tree_sha256

    name, version = uri.removeprefix("models:/").split("/")
    store.client.set_model_version_tag(name, version, HASH_TAG, tree_sha256(folder))


# --------------------------------------------------------------------------- round trip
def test_signed_round_trip_loads_and_creates_a_private_key(store, key_a):
    from stable_baselines3 import PPO

    from synthgap.agents.rl.registry import HASH_TAG, SIGNATURE_TAG, key_id, load_policy, read_key, tree_manifest

    uri, folder = register(store, "trust-roundtrip")
    assert stat.S_IMODE(key_a.stat().st_mode) == 0o600 and key_a.stat().st_size == 32
    mv = store.client.get_model_version("trust-roundtrip", "1")
    assert mv.tags[SIGNATURE_TAG].startswith(f"hmac-sha256:{key_id(read_key(key_a))}:")
    policy = load_policy(uri, store.uri)
    assert (policy.env_id, policy.env_kwargs, policy.algo, policy.version) == (ENV, ENV_KWARGS, "ppo", "1")
    assert policy.sha256 == mv.tags[HASH_TAG]
    local = PPO.load(store.policy, device="cpu")
    obs = np.random.default_rng(0).uniform(-1, 1, (8, 6)).astype(np.float32)
    np.testing.assert_array_equal(policy.predict(obs), local.predict(obs, deterministic=True)[0])
    # every file of the stored folder is in the manifest, and nothing else (no file MLflow adds)
    stored = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert "registered_model_meta" not in stored and "python_model.pkl" not in stored
    assert set(tree_manifest(folder)) == stored >= {"MLmodel", "pyfunc_entry.py", "artifacts/policy.zip",
                                                    "artifacts/policy-signature.json"}


# --------------------------------------------------------------------------- (a) tag + files
def test_rewritten_zip_and_hash_tag_are_refused(store, key_a, no_sb3_load):
    from synthgap.agents.rl.registry import TamperedModelError, load_policy

    uri, folder = register(store, "trust-rewrite")
    (folder / "artifacts" / "policy.zip").write_bytes(store.other.read_bytes())
    _retag_hash(store, uri, folder)
    with pytest.raises(TamperedModelError, match="signature does not match"):
        load_policy(uri, store.uri)


def test_a_signature_forged_with_another_key_is_refused(store, key_a, no_sb3_load, tmp_path):
    from synthgap.agents.rl import registry

    uri, folder = register(store, "trust-forge")
    (folder / "artifacts" / "policy.zip").write_bytes(store.other.read_bytes())
    _retag_hash(store, uri, folder)
    mv = store.client.get_model_version("trust-forge", "1")
    attacker = registry.create_key(tmp_path / "attacker.key")
    fields = registry.version_fields(mv, registry.tree_sha256(folder))  # what the key would have signed
    forged = registry.sign(attacker, registry._VERSION_DOMAIN, fields)
    store.client.set_model_version_tag("trust-forge", "1", registry.SIGNATURE_TAG, forged)
    with pytest.raises(registry.ForeignKeyError, match="store was altered"):
        registry.load_policy(uri, store.uri)


# --------------------------------------------------------------------------- (b) registered_model_meta
MLFLOW_META = "model_name: trust-meta\nmodel_version: '1'\n"  # what MLflow writes for models:/trust-meta/1


@pytest.mark.parametrize("content", [
    "model_name: trust-meta\nmodel_version: '2'\n",  # another version's
    MLFLOW_META + "payload: !!binary AAAA\n",  # MLflow's, plus something
    "\x80\x04 not yaml at all",
])
def test_a_registered_model_meta_that_mlflow_did_not_write_is_refused(store, key_a, no_sb3_load, content):
    from synthgap.agents.rl.registry import TamperedModelError, load_policy

    uri, folder = register(store, "trust-meta")
    try:
        (folder / "registered_model_meta").write_text(content)
        with pytest.raises(TamperedModelError, match="registered_model_meta is not what MLflow writes"):
            load_policy(uri, store.uri)
        _retag_hash(store, uri, folder)  # a consistent hash tag does not help
        with pytest.raises(TamperedModelError, match="registered_model_meta is not what MLflow writes"):
            load_policy(uri, store.uri)
    finally:
        store.client.delete_registered_model("trust-meta")


@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")  # mlflow import
def test_mlflow_loader_writes_registered_model_meta_into_the_store_and_it_is_set_aside(store, key_a):
    import mlflow.pyfunc

    from synthgap.agents.rl.registry import load_policy

    uri, folder = register(store, "trust-meta-mlflow")
    mlflow.pyfunc.load_model(uri)
    assert (folder / "registered_model_meta").read_text() == MLFLOW_META.replace("trust-meta", "trust-meta-mlflow")
    assert load_policy(uri, store.uri).version == "1"


# --------------------------------------------------------------------------- (c) another key
def test_a_model_signed_with_another_key_is_refused_naming_the_key_file(store, key_a, monkeypatch, tmp_path, capsys):
    from synthgap.agents.rl.registry import HASH_TAG, load_policy
    from synthgap.experiments.cli import main

    uri, _ = register(store, "trust-keys")
    key_b = _write_key(tmp_path / "b.key")
    monkeypatch.setenv("SYNTHGAP_KEY_FILE", str(key_b))
    with pytest.raises(ValueError, match="not with the key in") as err:
        load_policy(uri, store.uri)
    assert type(err.value).__name__ == "ForeignKeyError"
    assert str(key_b) in str(err.value) and "--trust-digest" in str(err.value)
    capsys.readouterr()
    assert main(["evaluate", uri, "--episodes", "1", "--tracking-uri", store.uri]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(key_b) in lines[0]
    # no key file at all: the message names where it looked
    missing = tmp_path / "none.key"
    monkeypatch.setenv("SYNTHGAP_KEY_FILE", str(missing))
    with pytest.raises(ValueError, match="no signing key at") as err:
        load_policy(uri, store.uri)
    assert type(err.value).__name__ == "ForeignKeyError" and str(missing) in str(err.value)
    # the colleague's way in: the tree digest they give you, or their key
    digest = store.client.get_model_version("trust-keys", "1").tags[HASH_TAG]
    assert load_policy(uri, store.uri, trust_digest=digest).sha256 == digest
    monkeypatch.setenv("SYNTHGAP_KEY_FILE", str(key_a))
    assert load_policy(uri, store.uri).sha256 == digest


def test_trust_digest_must_match_and_be_a_sha256(store, key_a, no_sb3_load):
    from synthgap.agents.rl.registry import SIGNATURE_TAG, TamperedModelError, UnverifiedModelError, load_policy

    uri, _ = register(store, "trust-digest")
    with pytest.raises(TamperedModelError, match="not the ones you trust"):
        load_policy(uri, store.uri, trust_digest="0" * 64)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        load_policy(uri, store.uri, trust_digest="abc")
    mv = store.client.get_model_version("trust-digest", "1")
    store.client.create_registered_model("trust-unsigned")
    unsigned = {k: v for k, v in mv.tags.items() if k != SIGNATURE_TAG}
    store.client.create_model_version("trust-unsigned", mv.source, run_id=mv.run_id, tags=unsigned)
    with pytest.raises(UnverifiedModelError, match="--trust-digest"):
        load_policy("models:/trust-unsigned/1", store.uri)


def test_the_signature_binds_name_and_version(store, key_a, no_sb3_load):
    """A genuine signature copied onto another version of the same files is refused."""
    from synthgap.agents.rl.registry import SIGNATURE_TAG, TamperedModelError, load_policy

    _, _ = register(store, "trust-bind")
    mv = store.client.get_model_version("trust-bind", "1")
    store.client.create_registered_model("trust-bind-copy")
    store.client.create_model_version("trust-bind-copy", mv.source, run_id=mv.run_id, tags=mv.tags)
    assert store.client.get_model_version("trust-bind-copy", "1").tags[SIGNATURE_TAG] == mv.tags[SIGNATURE_TAG]
    with pytest.raises(TamperedModelError, match="signature does not match"):
        load_policy("models:/trust-bind-copy/1", store.uri)


# --------------------------------------------------------------------------- (e) MLflow's loader
def _swap_zip_and_recorded_hash(folder: Path, new_zip: bytes) -> None:
    """Swap the SB3 zip and make the wrapper's recorded hash agree (no key needed).

    The hash sits in ``policy-signature.json``, or (models logged before signing) in the
    pickled wrapper, which is re-pickled with the new hash: our own class, no foreign code.
    """
    import cloudpickle

    (folder / "artifacts" / "policy.zip").write_bytes(new_zip)
    sha = hashlib.sha256(new_zip).hexdigest()
    signed = folder / "artifacts" / "policy-signature.json"
    if signed.exists():
        signed.write_text(json.dumps(json.loads(signed.read_text()) | {"policy_sha256": sha}))
    else:
        pkl = folder / "python_model.pkl"
        wrapper = cloudpickle.loads(pkl.read_bytes())
        wrapper.policy_sha256 = sha
        pkl.write_bytes(cloudpickle.dumps(wrapper))


@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")  # mlflow import
def test_pyfunc_wrapper_refuses_a_swapped_policy_zip(store, key_a, no_sb3_load):
    import mlflow.pyfunc

    from synthgap.agents.rl.registry import TamperedModelError

    uri, folder = register(store, "trust-pyfunc")
    _swap_zip_and_recorded_hash(folder, store.other.read_bytes())
    with pytest.raises(TamperedModelError, match="signature does not match"):
        mlflow.pyfunc.load_model(uri)


@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")  # mlflow import
def test_pyfunc_wrapper_loads_a_signed_zip_and_asks_for_trust_otherwise(store, key_a, monkeypatch, tmp_path):
    import mlflow.pyfunc
    from stable_baselines3 import PPO

    from synthgap.agents.rl.registry import ForeignKeyError, create_key

    uri, _ = register(store, "trust-pyfunc-ok")
    model = mlflow.pyfunc.load_model(uri)
    obs = np.random.default_rng(1).uniform(-1, 1, (4, 6)).astype(np.float32)
    expected = PPO.load(store.policy, device="cpu").predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(model.predict(obs), expected)
    key_b = tmp_path / "b.key"
    create_key(key_b)
    monkeypatch.setenv("SYNTHGAP_KEY_FILE", str(key_b))
    with pytest.raises(ForeignKeyError, match="SYNTHGAP_TRUST_POLICY_SHA256") as err:
        mlflow.pyfunc.load_model(uri)
    assert str(key_b) in str(err.value)
    monkeypatch.setenv("SYNTHGAP_TRUST_POLICY_SHA256", hashlib.sha256(store.policy.read_bytes()).hexdigest())
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(uri).predict(obs), expected)
    monkeypatch.setenv("SYNTHGAP_TRUST_POLICY_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="refusing to load"):
        mlflow.pyfunc.load_model(uri)


def test_a_pickled_wrapper_without_signature_is_refused(store, key_a, no_sb3_load, tmp_path):
    """A wrapper re-pickled with a matching hash (the old format) gives no trust."""
    import mlflow.pyfunc

    from synthgap.agents.rl.pyfunc import SB3PolicyModel
    from synthgap.agents.rl.registry import UnverifiedModelError

    wrapper = SB3PolicyModel()
    wrapper.algo, wrapper.policy_sha256 = "ppo", hashlib.sha256(store.other.read_bytes()).hexdigest()
    mlflow.pyfunc.save_model(tmp_path / "legacy", python_model=wrapper, artifacts={"policy": str(store.other)},
                             pip_requirements=["stable-baselines3"])
    with pytest.raises(UnverifiedModelError, match="no signature"):
        mlflow.pyfunc.load_model(str(tmp_path / "legacy"))


# --------------------------------------------------------------------------- the key file
def test_key_file_must_be_private_and_32_bytes(tmp_path, monkeypatch):
    from synthgap.agents.rl.registry import KeyFileError, create_key, key_file_path, read_key, signing_key

    monkeypatch.delenv("SYNTHGAP_KEY_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert key_file_path() == tmp_path / "config" / "synthgap" / "policy-signing.key"
    with pytest.raises(FileNotFoundError):
        signing_key()  # loading never creates a key
    key, path = signing_key(create=True)
    assert path == key_file_path() and len(key) == 32 and signing_key()[0] == key
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and create_key(path) == key
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key(path)
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 31)
    os.chmod(short, 0o600)
    with pytest.raises(KeyFileError, match="31 bytes, expected 32"):
        read_key(short)
