"""MLflow's model over xp runs: entities, experiments, the search language, the backend
behind ``xp.mlflow`` and the plugin, and ``xp import mlflow`` / ``xp export mlflow``."""
