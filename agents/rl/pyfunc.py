"""An SB3 policy as an MLflow ``pyfunc`` model: observations in, deterministic actions out.

Prefer :func:`synthgap.agents.rl.registry.load_policy`: it checks the whole model folder
against the SHA-256 recorded at registration before anything is unpickled. Loading with
``mlflow.pyfunc.load_model`` unpickles this wrapper first, then checks the SB3 zip against
the hash the wrapper holds before loading it.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc


class SB3PolicyModel(mlflow.pyfunc.PythonModel):
    """Wraps an SB3 zip (artifact ``policy``) made by ``algo`` with SHA-256 ``policy_sha256``."""

    # the input is a float32 tensor checked by the explicit signature; without this MLflow
    # warns at class definition, under a filter of its own that no caller can silence
    _skip_type_hint_validation = True

    def __init__(self, algo: str, policy_sha256: str):
        self.algo, self.policy_sha256 = algo, policy_sha256

    def load_context(self, context) -> None:
        from .checkpoint import sha256_file
        from .registry import TamperedModelError
        from .trainer import algo_class

        path = context.artifacts["policy"]
        if sha256_file(path) != self.policy_sha256:
            raise TamperedModelError(f"policy file {path} does not match its recorded SHA-256; refusing to load it")
        self.model = algo_class(self.algo).load(path, device="cpu")

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        import numpy as np

        if isinstance(model_input, dict):  # a named tensor spec hands inputs over by name
            model_input = model_input["observation"]
        obs = np.asarray(model_input, dtype=np.float32)
        action, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float32)
