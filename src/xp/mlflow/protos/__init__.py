"""``mlflow.protos``: only the error codes scripts and tests compare with."""
