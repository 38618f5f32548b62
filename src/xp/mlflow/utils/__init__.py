"""``mlflow.utils``: only the tag names scripts use."""
