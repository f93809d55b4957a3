"""An SB3 policy as an MLflow ``pyfunc`` model: observations in, deterministic actions out.

Logged as MLflow "models from code": the model folder holds :data:`CODE_FILE` (a few
lines naming :class:`SB3PolicyModel`), so no wrapper is pickled; a copy of this module and
the two it imports as the model's ``code_paths`` (:func:`write_serving_package`), so a
fresh environment with only the model's requirements can serve it; and two artifacts: the
SB3 zip (``policy``) and ``policy-signature.json`` (``policy_signature``: the algorithm,
the zip's SHA-256 and its signature made with the user's key, see
:func:`synthgap.agents.rl.registry.sign_policy_zip`). :meth:`SB3PolicyModel.load_context`
reads the zip once, checks the signature with the user's key and only then lets SB3 load
those bytes.

What it cannot check: ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` read
``MLmodel`` and run the code file from the store before this class runs, so they trust
the store (a model logged by an older synthgap is a pickle MLflow unpickles first, and is
then refused here for want of a signature). Load registered policies with
:func:`synthgap.agents.rl.registry.load_policy`, which checks the whole folder before
reading any of it. To serve a colleague's model, set ``SYNTHGAP_KEY_FILE`` to a copy of
their key, or ``SYNTHGAP_TRUST_POLICY_SHA256`` to the zip's SHA-256 they give you.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import mlflow.pyfunc

CODE_FILE = Path(__file__).with_name("pyfunc_entry.py")
#: the package logged with every model (``code_paths``), for an environment without synthgap
SERVING_PACKAGE = "synthgap_policy_model"
_SERVING_MODULES = ("pyfunc.py", "signing.py", "algorithms.py")  # this module's whole import closure
SIGNATURE_ARTIFACT = "policy_signature"
SIGNATURE_FILE = "policy-signature.json"
_MAX_SIGNATURE_BYTES = 4096  # the file is about 250 bytes; a bigger one is not ours
logger = logging.getLogger(__name__)


def write_serving_package(folder: str | Path) -> Path:
    """Write :data:`SERVING_PACKAGE` (this module, :mod:`.signing`, :mod:`.algorithms`) into ``folder``.

    Logged as the model's ``code_paths``, so ``mlflow models serve`` answers in an environment
    that holds only the model's requirements (SB3, torch, gymnasium, numpy, MLflow), as MLflow
    recommends for custom code. Those three modules import nothing else of synthgap (a test).
    Returns the package folder.
    """
    pkg = Path(folder) / SERVING_PACKAGE
    pkg.mkdir(parents=True, exist_ok=False)
    doc = '"""A synthgap policy as an MLflow pyfunc model (copied from synthgap.agents.rl)."""\n'
    (pkg / "__init__.py").write_text(doc, encoding="utf-8")
    here = Path(__file__).parent
    for name in _SERVING_MODULES:
        (pkg / name).write_bytes((here / name).read_bytes())
    return pkg


def write_signature_file(folder: str | Path, algo: str, policy_sha256: str, signature: str) -> Path:
    """Write :data:`SIGNATURE_FILE` into ``folder``; returns its path (to log as an artifact)."""
    path = Path(folder) / SIGNATURE_FILE
    path.write_text(json.dumps({"algo": algo, "policy_sha256": policy_sha256, "signature": signature},
                               sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_signature_file(path: str | Path | None) -> dict[str, str]:
    """``{"algo", "policy_sha256", "signature"}`` from :data:`SIGNATURE_FILE`; ``{}`` if there is none.

    Raises:
        TamperedModelError: too big, not JSON, or not a mapping of strings.
    """
    from .signing import TamperedModelError

    if path is None or not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        raw = f.read(_MAX_SIGNATURE_BYTES + 1)
    try:
        data = json.loads(raw) if len(raw) <= _MAX_SIGNATURE_BYTES else None
    except (ValueError, RecursionError):
        data = None
    if not (isinstance(data, dict) and all(isinstance(v, str) for v in data.values())):
        raise TamperedModelError(f"{SIGNATURE_FILE} is not a small JSON object of strings; refusing to load the policy")
    return data


class SB3PolicyModel(mlflow.pyfunc.PythonModel):
    """Wraps the SB3 zip (artifact ``policy``) signed in artifact ``policy_signature``."""

    # the input is a float32 tensor checked by the explicit signature; without this MLflow
    # warns at class definition, under a filter of its own that no caller can silence
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        """Check the SB3 zip's signature, then load it from the bytes that were checked.

        Raises:
            UnverifiedModelError: no signature (e.g. a pickled wrapper of an older synthgap).
            TamperedModelError, ForeignKeyError, KeyFileError: see ``check_policy_zip``.
        """
        from .algorithms import algo_class
        from .signing import TRUST_POLICY_ENV, TamperedModelError, check_policy_zip

        signed = read_signature_file(context.artifacts.get(SIGNATURE_ARTIFACT))
        with open(context.artifacts["policy"], "rb") as f:
            data = f.read()
        algo = signed.get("algo") or getattr(self, "algo", "")  # a pickled wrapper of an older synthgap holds it
        check_policy_zip(data, algo, signed.get("signature", ""), trust_sha256=os.environ.get(TRUST_POLICY_ENV, ""))
        try:
            cls = algo_class(algo)
        except KeyError:
            raise TamperedModelError(f"policy names an unknown algorithm {algo[:40]!r}; refusing to load it") from None
        logger.warning("policy loaded through MLflow's loader: the SB3 zip was verified, but MLmodel and the model's "
                       "code file were read from the store unchecked; synthgap's load_policy checks every file")
        self.model = cls.load(io.BytesIO(data), device="cpu")

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        """Deterministic actions, float32, for a batch of observations (or ``{"observation": batch}``)."""
        import numpy as np

        if isinstance(model_input, dict):  # a named tensor spec hands inputs over by name
            model_input = model_input["observation"]
        obs = np.asarray(model_input, dtype=np.float32)
        action, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float32)
