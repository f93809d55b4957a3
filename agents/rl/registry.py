"""Load a registered policy safely: verify its SHA-256, then unpickle.

At registration the model folder's tree hash (every file's SHA-256, by relative path) is
stored as the model-version tag ``synthgap.sha256``, with the env id, env kwargs and
algorithm. :func:`load_policy` downloads the folder, recomputes the hash and refuses a
mismatch (:class:`TamperedModelError`) or a version without a hash
(:class:`UnverifiedModelError`) before any file is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import sha256_file

HASH_TAG = "synthgap.sha256"
ENV_ID_TAG = "synthgap.env_id"
ENV_KWARGS_TAG = "synthgap.env_kwargs"
ALGO_TAG = "synthgap.algo"
RUN_TAG = "synthgap.train_run_id"
POLICY_ARTIFACT = "artifacts/policy.zip"  # inside the pyfunc model folder
# MLflow writes this into a local model folder when it loads models:/ URIs (name and
# version, YAML, never unpickled): not part of what was registered
UNHASHED = frozenset({"registered_model_meta"})
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ModelURIError(ValueError):
    """A model URI that is not ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``, or names nothing."""


class TamperedModelError(ValueError):
    """The model's files do not match the SHA-256 recorded at registration."""


class UnverifiedModelError(ValueError):
    """The model version has no recorded SHA-256 (not registered by synthgap)."""


def tree_sha256(folder: str | Path) -> str:
    """SHA-256 over every file of ``folder`` (but :data:`UNHASHED`): sorted relative paths and file hashes."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = (p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in UNHASHED)
    for path in sorted(files):
        h.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return h.hexdigest()


@dataclass
class Policy:
    """A verified policy: ``predict(obs) -> action`` (deterministic), and where it comes from."""

    model: Any
    env_id: str
    env_kwargs: dict[str, Any]
    algo: str
    name: str
    version: str
    sha256: str

    def predict(self, obs) -> np.ndarray:
        """Action(s) for one observation or a batch (same leading shape as ``obs``)."""
        action, _ = self.model.predict(np.asarray(obs, dtype=np.float32), deterministic=True)
        return np.asarray(action)


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, alias, version)`` of a ``models:/`` URI."""
    m = _URI.match(uri)
    if not m:
        raise ModelURIError(f"model URI must be models:/NAME@ALIAS or models:/NAME/VERSION, got {uri!r}")
    return m["name"], m["alias"], m["version"]


def resolve_version(client, uri: str):
    """The ``ModelVersion`` a ``models:/`` URI names.

    Raises:
        ModelURIError: malformed URI, unknown model, alias or version.
    """
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_model_uri(uri)
    try:
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, version)
    except MlflowException as exc:
        raise ModelURIError(f"{uri}: not found in the registry ({str(exc).splitlines()[0]})") from None


def download_verified(client, mv, dst: str | Path) -> Path:
    """Download a model version's folder to ``dst`` and check it against its hash tag."""
    import mlflow.artifacts

    expected = (mv.tags or {}).get(HASH_TAG)
    if not expected:
        raise UnverifiedModelError(f"model {mv.name} version {mv.version} has no {HASH_TAG} tag; "
                                   "refusing to load an unverified model")
    src = client.get_model_version_download_uri(mv.name, mv.version)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=src, dst_path=str(dst)))
    actual = tree_sha256(local)
    if actual != expected:
        raise TamperedModelError(f"model {mv.name} version {mv.version}: files hash to {actual[:12]}..., "
                                 f"registered {expected[:12]}...; the artifact was modified, refusing to load it")
    return local


def load_policy(uri: str, tracking_uri: str | None = None) -> Policy:
    """Load a registered policy after verifying its files.

    Args:
        uri: ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
        tracking_uri: store to read (default: ``MLFLOW_TRACKING_URI`` or the embedded default).

    Raises:
        ModelURIError, UnverifiedModelError, TamperedModelError (all ``ValueError``).
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from synthgap.agents.mlflow_store import get_client

    from .trainer import algo_class

    client = get_client(tracking_uri)
    mv = resolve_version(client, uri)
    tags = mv.tags or {}
    with tempfile.TemporaryDirectory(prefix="synthgap-model-") as tmp:
        local = download_verified(client, mv, tmp)
        algo = tags.get(ALGO_TAG, "")
        model = algo_class(algo).load(local / POLICY_ARTIFACT, device="cpu")
    return Policy(model=model, env_id=tags.get(ENV_ID_TAG, ""), env_kwargs=json.loads(tags.get(ENV_KWARGS_TAG, "{}")),
                  algo=algo, name=mv.name, version=str(mv.version), sha256=tags[HASH_TAG])
