"""log_params with the values scripts pass (numbers, None, lists, booleans) and key spellings
MLflow allows (slashes, colons, dots, dashes, spaces); params read back as strings."""

import mlflow
from mlflow.exceptions import MlflowException

with mlflow.start_run() as run:
    mlflow.log_params(
        {
            "model/depth": 3,
            "opt:name": "adam",
            "n": None,
            "lr": 1e-3,
            "layers": [64, 32],
            "use-bias": True,
            "batch size": 32,
            "a.b": 0.5,
        }
    )
    mlflow.log_param("alpha", 0.5)
    mlflow.log_param("alpha", 0.5)  # the same value again is allowed
    try:
        mlflow.log_param("alpha", 0.7)  # a param never changes within a run
    except MlflowException as e:
        assert e.error_code == "INVALID_PARAMETER_VALUE", e.error_code
    else:
        raise AssertionError("changing a param must fail")
params = mlflow.get_run(run.info.run_id).data.params
assert params == {
    "model/depth": "3",
    "opt:name": "adam",
    "n": "None",
    "lr": "0.001",
    "layers": "[64, 32]",
    "use-bias": "True",
    "batch size": "32",
    "a.b": "0.5",
    "alpha": "0.5",
}, params
print("OK")
