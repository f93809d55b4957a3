"""MLflow "models from code" entry of a policy model (copied into each model folder).

MLflow runs this file on ``mlflow.pyfunc.load_model`` and ``mlflow models serve``; it only
names :class:`SB3PolicyModel`, whose ``load_context`` checks the SB3 zip's signature
before SB3 loads it: the installed synthgap's where there is one (its errors are the ones
callers catch), else the copy logged with the model (``code_paths``), so an environment
with only the model's requirements serves it.
"""

import importlib.util

import mlflow.models

if importlib.util.find_spec("synthgap") is not None:
    from synthgap.agents.rl.pyfunc import SB3PolicyModel
else:
    from synthgap_policy_model.pyfunc import SB3PolicyModel

mlflow.models.set_model(SB3PolicyModel())
