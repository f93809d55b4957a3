"""MLflow "models from code" entry of a policy model (copied into each model folder).

MLflow runs this file on ``mlflow.pyfunc.load_model``; it only names the installed
:class:`synthgap.agents.rl.pyfunc.SB3PolicyModel`, whose ``load_context`` checks the SB3
zip's signature before SB3 loads it.
"""

import mlflow.models

from synthgap.agents.rl.pyfunc import SB3PolicyModel

mlflow.models.set_model(SB3PolicyModel())
