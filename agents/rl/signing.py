"""Signing keys, HMAC-SHA256 signatures and tree hashes: the trust anchor of the policy registry.

The anchor lives outside the MLflow store (whoever can write the store can rewrite a digest
kept beside the files): a secret key the user controls. An HMAC-SHA256 signature (stdlib
``hmac``) keyed by a 32-byte key file, ``$SYNTHGAP_KEY_FILE``, else
``$XDG_CONFIG_HOME/synthgap/policy-signing.key``, else ``~/.config/synthgap/policy-signing.key``.
It is created with mode 0600 on the first registration and refused if other users may read
or write it, or it is not 32 bytes. Why a key rather than a digest file recorded outside the
store: one secret covers every model version in every store and on every machine it is
copied to, nothing grows per version, and the signature travels with the version yet cannot
be forged without the key. A public-key signature would let colleagues verify without being
able to sign, but needs a crypto package; HMAC is in the standard library. Anyone who can
read the key file can sign.

A signature is ``hmac-sha256:<key id>:<hex MAC>`` over a domain string and the canonical
JSON of the signed fields; a tree hash is a SHA-256 over every file of a folder (sorted
relative paths and file hashes, none excluded, no symlink allowed). What a model version's
signature covers, and when it is checked, is :mod:`.registry`'s; the SB3 zip's own signature
(:func:`sign_policy_zip`, :func:`check_policy_zip`) is here, because it is checked when the
model is served.

Standard library only: this module is shipped inside every logged policy model, where
synthgap need not be installed (see :mod:`.pyfunc`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import tempfile
from pathlib import Path

KEY_FILE_ENV = "SYNTHGAP_KEY_FILE"
KEY_BYTES = 32  # HMAC-SHA256 key length
KEY_ID_CHARS = 16  # hex characters of the key fingerprint written beside each signature
_SIGNATURE = re.compile(r"^hmac-sha256:(?P<key_id>[0-9a-f]{16}):(?P<mac>[0-9a-f]{64})$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_PREFIX = 40  # characters of a bad value quoted in a message
TRUST_POLICY_ENV = "SYNTHGAP_TRUST_POLICY_SHA256"  # MLflow's loader only: trust this one SB3 zip, signed or not
_POLICY_DOMAIN = b"synthgap policy zip v1\n"

logger = logging.getLogger(__name__)


class TamperedModelError(ValueError):
    """The model's files or signature do not match what was signed at registration."""


class ForeignKeyError(TamperedModelError):
    """The signature was made with a key other than the user's (or the user has no key)."""


class KeyFileError(ValueError):
    """The signing key file is unusable: wrong size, not a file, or open to other users."""


class UnverifiedModelError(ValueError):
    """The model version carries no signature (registered before signing, or not by synthgap)."""


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


# ------------------------------------------------------------------------------ the SB3 zip
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


# ------------------------------------------------------------------------------ the files
def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_manifest(folder: str | Path) -> dict[str, str]:
    """``{relative path: SHA-256}`` of every file under ``folder``.

    Raises:
        TamperedModelError: a symlink (what it points to could change after the check).
    """
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
