"""Load a registered policy safely: check its signature and every file, then unpickle.

Threat: whoever can write the MLflow store (artifact files *and* registry tags) must not
be able to make :func:`load_policy` run a policy of their choosing. A digest kept as a tag
beside the files cannot stop that (rewrite both), so the trust anchor lives outside the
store: a secret key the user controls.

Choice: an HMAC-SHA256 signature (stdlib ``hmac``) keyed by a 32-byte key file,
``$SYNTHGAP_KEY_FILE``, else ``$XDG_CONFIG_HOME/synthgap/policy-signing.key``, else
``~/.config/synthgap/policy-signing.key``. It is created with mode 0600 on the first
registration and refused if other users may read or write it, or it is not 32 bytes.
Why a key rather than a digest file recorded outside the store: one secret covers every
model version in every store and on every machine it is copied to, nothing grows per
version, and the signature travels with the version (tag ``synthgap.signature``) yet
cannot be forged without the key. A public-key signature would let colleagues verify
without being able to sign, but needs a crypto package; HMAC is in the standard library.

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
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
KEY_FILE_ENV = "SYNTHGAP_KEY_FILE"
TRUST_POLICY_ENV = "SYNTHGAP_TRUST_POLICY_SHA256"  # MLflow's loader only: trust this one SB3 zip, signed or not
KEY_BYTES = 32  # HMAC-SHA256 key length
KEY_ID_CHARS = 16  # hex characters of the key fingerprint written beside each signature
_SIGNATURE = re.compile(r"^hmac-sha256:(?P<key_id>[0-9a-f]{16}):(?P<mac>[0-9a-f]{64})$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_VERSION_DOMAIN = b"synthgap model version v1\n"
_POLICY_DOMAIN = b"synthgap policy zip v1\n"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
_PREFIX = 40  # characters of a bad value quoted in a message

logger = logging.getLogger(__name__)


class ModelURIError(ValueError):
    """A model URI that is not ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``, or names nothing."""


class TamperedModelError(ValueError):
    """The model's files or signature do not match what was signed at registration."""


class ForeignKeyError(TamperedModelError):
    """The signature was made with a key other than the user's (or the user has no key)."""


class UnverifiedModelError(ValueError):
    """The model version carries no signature (registered before signing, or not by synthgap)."""


class KeyFileError(ValueError):
    """The signing key file is unusable: wrong size, not a file, or open to other users."""


# ------------------------------------------------------------------------------ the key
def key_file_path(path: str | Path | None = None) -> Path:
    """The signing key file: ``path``, else ``$SYNTHGAP_KEY_FILE``, else the user's config dir."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV]).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if os.path.isabs(config) else Path("~/.config").expanduser()
    return base / "synthgap" / "policy-signing.key"


def read_key(path: Path) -> bytes:
    """The key in ``path`` (exactly :data:`KEY_BYTES` bytes, owned by this user, mode 0600 or stricter).

    Raises:
        FileNotFoundError: no such file.
        KeyFileError: anything else wrong with it.
    """
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"signing key {path} is not a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(f"signing key {path} has mode {st.st_mode & 0o777:o}: other users could read or "
                               f"change it; run chmod 600 {path}")
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            raise KeyFileError(f"signing key {path} belongs to another user (uid {st.st_uid})")
        key = f.read(KEY_BYTES + 1)
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"signing key {path} holds {len(key)} bytes, expected {KEY_BYTES}; "
                           f"set {KEY_FILE_ENV} to the right file")
    return key


def create_key(path: Path) -> bytes:
    """The key in ``path``, made (:data:`KEY_BYTES` random bytes, mode 0600) if there is none.

    The file appears complete or not at all (written aside, then hard-linked into place),
    and a key another process made first is kept.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".key-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_key(path)
    finally:
        os.unlink(tmp)
    logger.warning("created policy signing key %s (mode 0600): models you register are signed with it and load "
                   "only where it is; keep it private", path)
    return read_key(path)


def signing_key(path: str | Path | None = None, create: bool = False) -> tuple[bytes, Path]:
    """``(key, key file)``; ``create`` makes the file if missing (at registration only).

    Raises:
        FileNotFoundError: no key file and not ``create``.
        KeyFileError: the file is unusable.
    """
    file = key_file_path(path)
    try:
        return read_key(file), file
    except FileNotFoundError:
        if not create:
            raise
    return create_key(file), file


def key_id(key: bytes) -> str:
    """Public fingerprint of a key (:data:`KEY_ID_CHARS` hex characters), written beside signatures."""
    return hashlib.sha256(b"synthgap key id\n" + key).hexdigest()[:KEY_ID_CHARS]


def _canonical(domain: bytes, fields: dict[str, str]) -> bytes:
    return domain + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(key: bytes, domain: bytes, fields: dict[str, str]) -> str:
    """``hmac-sha256:<key id>:<hex MAC>`` over ``domain`` and the canonical JSON of ``fields``."""
    mac = hmac.new(key, _canonical(domain, fields), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{key_id(key)}:{mac}"


def check_signature(signature: str, domain: bytes, fields: dict[str, str], what: str, how_to_trust: str,
                    key_file: str | Path | None = None) -> None:
    """Refuse unless ``signature`` is :func:`sign` of ``fields`` with the user's key.

    Args:
        what: the thing checked, for messages (``model NAME version 3``).
        how_to_trust: the explicit way to load it anyway, for messages.

    Raises:
        TamperedModelError: malformed signature, or a MAC that does not match.
        ForeignKeyError: signed with another key, or the user has no key file.
        KeyFileError: the key file is unusable.
    """
    m = _SIGNATURE.match(signature)
    if not m:
        raise TamperedModelError(f"{what}: malformed signature {signature[:_PREFIX]!r}; refusing to load it")
    try:
        key, file = signing_key(key_file)
    except FileNotFoundError:
        raise ForeignKeyError(f"{what} is signed with key {m['key_id']}, and there is no signing key at "
                              f"{key_file_path(key_file)}; to trust a colleague's model, set {KEY_FILE_ENV} to "
                              f"a copy of their key file, or {how_to_trust}") from None
    if m["key_id"] != key_id(key):
        raise ForeignKeyError(f"{what} is signed with key {m['key_id']}, not with the key in {file} "
                              f"({key_id(key)}); to trust a colleague's model, set {KEY_FILE_ENV} to a copy of "
                              f"their key file, or {how_to_trust}; otherwise the store was altered")
    expected = sign(key, domain, fields).rsplit(":", 1)[1]
    if not hmac.compare_digest(expected, m["mac"]):
        raise TamperedModelError(f"{what}: signature does not match its files and metadata (key {file}); "
                                 "the model was modified, refusing to load it")


def check_digest(digest: str, flag: str = "--trust-digest") -> str:
    """``digest`` if it is 64 lowercase hex characters (a SHA-256), else :class:`ValueError`."""
    if not (isinstance(digest, str) and _DIGEST.match(digest)):
        raise ValueError(f"{flag} must be a SHA-256 of 64 lowercase hex digits, got {str(digest)[:_PREFIX]!r}")
    return digest


# ------------------------------------------------------------------------------ the files
def tree_manifest(folder: str | Path) -> dict[str, str]:
    """``{relative path: SHA-256}`` of every file under ``folder``.

    Raises:
        TamperedModelError: a symlink (what it points to could change after the check).
    """
    from .checkpoint import sha256_file

    folder = Path(folder)
    manifest = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            raise TamperedModelError(f"model folder holds a symlink {rel[:_PREFIX]!r}; refusing to load it")
        if path.is_file():
            manifest[rel] = sha256_file(path)
    return manifest


def manifest_sha256(manifest: dict[str, str]) -> str:
    """SHA-256 over sorted ``relative path NUL file hash LF`` lines."""
    h = hashlib.sha256()
    for rel in sorted(manifest):
        h.update(f"{rel}\0{manifest[rel]}\n".encode())
    return h.hexdigest()


def tree_sha256(folder: str | Path) -> str:
    """SHA-256 over every file of ``folder`` (none excluded): sorted relative paths and file hashes."""
    return manifest_sha256(tree_manifest(folder))


def version_fields(mv, digest: str) -> dict[str, str]:
    """What a model version's signature covers: its identity, its env and algorithm, its tree hash."""
    tags = mv.tags or {}
    return {"name": str(mv.name), "version": str(mv.version), "run_id": str(mv.run_id or ""),
            "env_id": tags.get(ENV_ID_TAG, ""), "env_kwargs": tags.get(ENV_KWARGS_TAG, ""),
            "algo": tags.get(ALGO_TAG, ""), "tree_sha256": digest}


def policy_fields(policy_sha256: str, algo: str) -> dict[str, str]:
    """What the SB3 zip's own signature covers."""
    return {"policy_sha256": policy_sha256, "algo": algo}


def sign_policy_zip(policy_sha256: str, algo: str, key_file: str | Path | None = None) -> str:
    """Signature of an SB3 zip (by its SHA-256), made with the user's key (created if missing)."""
    key, _ = signing_key(key_file, create=True)
    return sign(key, _POLICY_DOMAIN, policy_fields(policy_sha256, algo))


def check_policy_zip(data: bytes, algo: str, signature: str, key_file: str | Path | None = None,
                     trust_sha256: str = "") -> str:
    """SHA-256 of ``data`` (an SB3 zip) once its signature, or ``trust_sha256``, vouches for it.

    Raises:
        UnverifiedModelError: no signature and no ``trust_sha256``.
        TamperedModelError, ForeignKeyError, KeyFileError: see :func:`check_signature`.
    """
    actual = hashlib.sha256(data).hexdigest()
    how = f"set {TRUST_POLICY_ENV} to the SHA-256 of the policy zip they give you"
    if trust_sha256:
        if actual != check_digest(trust_sha256, TRUST_POLICY_ENV):
            raise TamperedModelError(f"policy zip hashes to {actual[:12]}..., {TRUST_POLICY_ENV} is "
                                     f"{trust_sha256[:12]}...; refusing to load it")
        return actual
    if not signature:
        raise UnverifiedModelError(f"policy zip carries no signature (registered before signing?); {how}, "
                                   "or load it with synthgap.agents.rl.registry.load_policy(uri, trust_digest=...)")
    check_signature(signature, _POLICY_DOMAIN, policy_fields(actual, algo), "policy zip", how, key_file)
    return actual


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
        raise ModelURIError(f"{uri[:_PREFIX]}: not found in the registry ({str(exc).splitlines()[0]})") from None


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

    from .trainer import algo_class

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
