"""Load a registered policy safely: check its signature and every file, then unpickle.

Threat: whoever can write the MLflow store (artifact files *and* registry tags) must not
be able to make :func:`load_policy` run a policy of their choosing. A digest kept as a tag
beside the files cannot stop that (rewrite both), so the trust anchor lives outside the
store: a secret key the user controls.

Choice: an HMAC-SHA256 signature keyed by a 32-byte key file the user keeps (where it lives,
how it is guarded, and why a key rather than a digest: :mod:`.signing`). The signature
travels with the version (tag ``synthgap.signature``) yet cannot be forged without the key.

What is signed, at registration:

- the model version: ``name``, ``version``, the training ``run_id``, the env id, env
  kwargs and algorithm, and the tree hash of the model folder (:func:`tree_sha256`: every
  file, by relative path, none excluded); tag ``synthgap.signature``;
- the SB3 zip alone (its SHA-256 and algorithm), in the model's ``policy-signature.json``,
  so the wrapper can check the zip whichever way MLflow loads it (:mod:`.pyfunc`).

What :func:`load_policy` checks, in this order, before anything is unpickled: the version
carries a signature (else :class:`UnverifiedModelError`); the folder is downloaded from
the version's storage location (not a ``models:/`` URI, for which MLflow adds a file of
its own) and holds no symlink; a ``registered_model_meta`` file (which
``mlflow.pyfunc.load_model("models:/NAME/VERSION")`` writes into a local store's folder)
is set aside only if its bytes are exactly what MLflow writes for this version, else it
is refused; every other file goes into the tree hash; the signature verifies with the
user's key (:class:`ForeignKeyError` if it was made with another key,
:class:`TamperedModelError` if it does not match). Only then is ``MLmodel`` parsed and the
SB3 zip loaded, from the bytes that were hashed. ``trust_digest`` (``--trust-digest``)
replaces the signature check by "the files hash to exactly this": the explicit way to
load a colleague's model or one registered before signing.

Not covered: MLflow's own loader (``mlflow.pyfunc.load_model``, ``mlflow models serve``)
reads ``MLmodel`` and runs the model's code file from the store before any synthgap code
runs, so it trusts the store; the wrapper then checks the SB3 zip (see :mod:`.pyfunc`).
Anyone who can read the key file can sign.

This module says what is signed and checks it; keys, MACs and tree hashes are :mod:`.signing`'s.
"""


from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .signing import (
    _PREFIX,
    KEY_BYTES,
    KEY_FILE_ENV,
    KEY_ID_CHARS,
    TRUST_POLICY_ENV,
    ForeignKeyError,
    KeyFileError,
    TamperedModelError,
    UnverifiedModelError,
    check_digest,
    check_policy_zip,
    check_signature,
    create_key,
    key_file_path,
    key_id,
    manifest_sha256,
    policy_fields,
    read_key,
    sign,
    sign_policy_zip,
    signing_key,
    tree_manifest,
    tree_sha256,
)

__all__ = [
    "HASH_TAG", "SIGNATURE_TAG", "ENV_ID_TAG", "ENV_KWARGS_TAG", "ALGO_TAG", "RUN_TAG", "POLICY_ARTIFACT",
    "MLFLOW_META_FILE", "TRUST_POLICY_ENV", "KEY_FILE_ENV", "KEY_BYTES", "KEY_ID_CHARS",
    "ModelURIError", "TamperedModelError", "ForeignKeyError", "UnverifiedModelError", "KeyFileError",
    "key_file_path", "read_key", "create_key", "signing_key", "key_id", "sign", "check_signature", "check_digest",
    "tree_manifest", "manifest_sha256", "tree_sha256", "version_fields", "policy_fields", "sign_policy_zip",
    "check_policy_zip", "download_verified", "sign_model_version", "Policy", "parse_model_uri",
    "resolve_version", "load_policy",
]

HASH_TAG = "synthgap.sha256"
SIGNATURE_TAG = "synthgap.signature"
ENV_ID_TAG = "synthgap.env_id"
ENV_KWARGS_TAG = "synthgap.env_kwargs"
ALGO_TAG = "synthgap.algo"
RUN_TAG = "synthgap.train_run_id"
POLICY_ARTIFACT = "policy"  # name of the SB3 zip among the pyfunc model's artifacts
# MLflow writes this into the model folder it loads from a models:/NAME/VERSION URI (into
# the store itself when the store is a local folder); it is accepted only as MLflow writes it
MLFLOW_META_FILE = "registered_model_meta"
_VERSION_DOMAIN = b"synthgap model version v1\n"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ModelURIError(ValueError):
    """A model URI that is not ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``, or names nothing."""


# ------------------------------------------------------------------------------ what is signed
def version_fields(mv, digest: str) -> dict[str, str]:
    """What a model version's signature covers: its identity, its env and algorithm, its tree hash."""
    tags = mv.tags or {}
    return {"name": str(mv.name), "version": str(mv.version), "run_id": str(mv.run_id or ""),
            "env_id": tags.get(ENV_ID_TAG, ""), "env_kwargs": tags.get(ENV_KWARGS_TAG, ""),
            "algo": tags.get(ALGO_TAG, ""), "tree_sha256": digest}


def _mlflow_meta(name: str | None, version: str | None) -> bytes:
    """The bytes MLflow writes as :data:`MLFLOW_META_FILE` for a version (``None``: a logged-model URI)."""
    from mlflow.utils.yaml_utils import write_yaml

    with tempfile.TemporaryDirectory(prefix="synthgap-meta-") as tmp:
        write_yaml(tmp, MLFLOW_META_FILE, {"model_name": name, "model_version": version}, overwrite=True,
                   ensure_yaml_extension=False)
        return (Path(tmp) / MLFLOW_META_FILE).read_bytes()


def _set_aside_mlflow_meta(local: Path, mv) -> None:
    """Remove MLflow's :data:`MLFLOW_META_FILE` from the downloaded copy if it is exactly MLflow's.

    Raises:
        TamperedModelError: the file is anything else (content, or a folder or link).
    """
    meta = local / MLFLOW_META_FILE
    if not (meta.exists() or meta.is_symlink()):
        return
    allowed = {_mlflow_meta(str(mv.name), str(mv.version)), _mlflow_meta(None, None)}
    if meta.is_symlink() or not meta.is_file() or meta.stat().st_size > max(map(len, allowed)) \
            or meta.read_bytes() not in allowed:
        raise TamperedModelError(f"model {mv.name} version {mv.version}: {MLFLOW_META_FILE} is not what MLflow "
                                 "writes for this version; refusing to load it")
    meta.unlink()


def _download(client, mv, dst: str | Path) -> Path:
    """The version's folder, downloaded from its storage location (MLflow adds no file of its own).

    MLflow's :data:`MLFLOW_META_FILE`, if a ``models:/`` load left one in the store, is set
    aside when it is exactly MLflow's and refused otherwise.
    """
    import mlflow.artifacts

    src = client.get_model_version_download_uri(mv.name, mv.version)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=src, dst_path=str(dst)))
    _set_aside_mlflow_meta(local, mv)
    return local


def download_verified(client, mv, dst: str | Path, trust_digest: str | None = None,
                      key_file: str | Path | None = None) -> tuple[Path, dict[str, str]]:
    """Download a model version's folder to ``dst``; ``(folder, manifest)`` once it is verified.

    Verified: the signature over the version's identity and tree hash checks with the
    user's key, or, with ``trust_digest``, the tree hash is exactly that.

    Raises:
        UnverifiedModelError, TamperedModelError, ForeignKeyError, KeyFileError (all ``ValueError``).
    """
    what = f"model {mv.name} version {mv.version}"
    signature = (mv.tags or {}).get(SIGNATURE_TAG, "")
    if trust_digest is not None:
        check_digest(trust_digest)
    elif not signature:
        raise UnverifiedModelError(f"{what} has no {SIGNATURE_TAG} tag (registered before signing, or not by "
                                   "synthgap); refusing to load an unverified model; if you trust its files, pass "
                                   "--trust-digest with the tree SHA-256 its author gives you")
    local = _download(client, mv, dst)
    manifest = tree_manifest(local)
    actual = manifest_sha256(manifest)
    if trust_digest is not None:
        if actual != trust_digest:
            raise TamperedModelError(f"{what}: files hash to {actual[:12]}..., --trust-digest is "
                                     f"{trust_digest[:12]}...; the files are not the ones you trust, refusing to "
                                     "load them")
        return local, manifest
    how = "pass --trust-digest with the tree SHA-256 they give you"
    check_signature(signature, _VERSION_DOMAIN, version_fields(mv, actual), what, how, key_file)
    return local, manifest


def sign_model_version(client, name: str, version: str, policy_sha256: str,
                       key_file: str | Path | None = None) -> str:
    """Sign a just-registered version: set its tree hash and signature tags; returns the tree hash.

    The folder is read back from the store and its SB3 zip must be the one just logged
    (``policy_sha256``), so a swap between upload and signing is not signed.

    Raises:
        TamperedModelError: the stored zip is not the logged one.
    """
    key, _ = signing_key(key_file, create=True)
    mv = client.get_model_version(name, version)
    with tempfile.TemporaryDirectory(prefix="synthgap-register-") as tmp:
        local = _download(client, mv, tmp)
        manifest = tree_manifest(local)
        rel, meta = _policy_member(local)
        if manifest.get(rel) != policy_sha256:
            raise TamperedModelError(f"model {name} version {version}: the stored policy zip is not the one "
                                     "logged; refusing to sign it")
        _check_metadata(mv, meta)
    digest = manifest_sha256(manifest)
    client.set_model_version_tag(name, version, HASH_TAG, digest)
    client.set_model_version_tag(name, version, SIGNATURE_TAG, sign(key, _VERSION_DOMAIN, version_fields(mv, digest)))
    return digest


# ------------------------------------------------------------------------------ loading
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
        raise ModelURIError(f"model URI must be models:/NAME@ALIAS or models:/NAME/VERSION, got {uri[:_PREFIX]!r}")
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
        store = getattr(client, "tracking_uri", None) or "the default store"
        raise ModelURIError(f"{uri[:_PREFIX]}: not found in the registry of {store} ({str(exc).splitlines()[0]}); "
                            "give the store that holds it with --tracking-uri") from None


def _mlmodel(local: Path) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TamperedModelError("MLmodel is not a mapping; refusing to load the model")
    return data


def _policy_member(local: Path) -> tuple[str, dict[str, Any]]:
    """``(relative path of the SB3 zip, MLmodel metadata)``; the path must stay inside ``local``."""
    data = _mlmodel(local)
    try:
        rel = data["flavors"]["python_function"]["artifacts"][POLICY_ARTIFACT]["path"]
    except (KeyError, TypeError):
        raise TamperedModelError("MLmodel names no policy artifact; refusing to load the model") from None
    path = (local / str(rel)).resolve()
    if not path.is_relative_to(local.resolve()):
        raise TamperedModelError(f"MLmodel points the policy outside the model folder ({str(rel)[:_PREFIX]!r})")
    return path.relative_to(local.resolve()).as_posix(), data.get("metadata") or {}


def _check_metadata(mv, meta: dict[str, Any]) -> None:
    """The version's env and algorithm tags (signed) must say what its ``MLmodel`` metadata (hashed) says."""
    tags = mv.tags or {}
    for key in (ENV_ID_TAG, ENV_KWARGS_TAG, ALGO_TAG):
        if str(meta.get(key, "")) != tags.get(key, ""):
            raise TamperedModelError(f"model {mv.name} version {mv.version}: tag {key} differs from the model's "
                                     "MLmodel metadata; refusing to load it")


def load_policy(uri: str, tracking_uri: str | None = None, trust_digest: str | None = None,
                key_file: str | Path | None = None) -> Policy:
    """Load a registered policy after verifying its signature and files (see the module docstring).

    Args:
        uri: ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
        tracking_uri: store to read (default: ``MLFLOW_TRACKING_URI`` or the embedded default).
        trust_digest: load if the folder's tree SHA-256 is exactly this, signed or not
            (a colleague's model, or one registered before signing).
        key_file: signing key (default :func:`key_file_path`).

    Raises:
        ModelURIError, UnverifiedModelError, TamperedModelError, ForeignKeyError, KeyFileError
        (all ``ValueError``).
    """
    if trust_digest is not None:
        check_digest(trust_digest)  # bad input is refused before the store is opened
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from synthgap.agents.mlflow_store import get_client

    from .algorithms import algo_class

    client = get_client(tracking_uri)
    mv = resolve_version(client, uri)
    with tempfile.TemporaryDirectory(prefix="synthgap-model-") as tmp:
        local, manifest = download_verified(client, mv, tmp, trust_digest, key_file)
        rel, meta = _policy_member(local)
        if trust_digest is None:
            _check_metadata(mv, meta)
        data = (local / rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest.get(rel):
            raise TamperedModelError(f"{rel} changed after it was checked; refusing to load it")
    algo = str(meta.get(ALGO_TAG, ""))
    try:
        cls = algo_class(algo)
        env_kwargs = json.loads(str(meta.get(ENV_KWARGS_TAG, "{}")))
    except (KeyError, ValueError):
        raise TamperedModelError(f"model {mv.name} version {mv.version}: metadata names algorithm "
                                 f"{algo[:_PREFIX]!r} or env kwargs that cannot be read") from None
    model = cls.load(io.BytesIO(data), device="cpu")
    return Policy(model=model, env_id=str(meta.get(ENV_ID_TAG, "")), env_kwargs=env_kwargs, algo=algo,
                  name=mv.name, version=str(mv.version), sha256=manifest_sha256(manifest))
