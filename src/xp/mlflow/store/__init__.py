"""``mlflow.store``: only ``mlflow.store.entities.PagedList``."""
