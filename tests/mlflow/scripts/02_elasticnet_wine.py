"""Adapted from examples/sklearn_elasticnet_wine/train.py. The UCI wine CSV download is replaced by
a small synthetic frame with the same column layout (11 features + 'quality')."""

import sys
import warnings
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

import mlflow
import mlflow.sklearn

COLUMNS = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
]


def load_data(n=300, seed=40):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(COLUMNS)))
    quality = np.clip(
        np.round(
            5.6 + X @ rng.normal(scale=0.3, size=len(COLUMNS)) + rng.normal(scale=0.5, size=n)
        ),
        3,
        9,
    )
    df = pd.DataFrame(X, columns=COLUMNS)
    df["quality"] = quality.astype(int)
    return df


def eval_metrics(actual, pred):
    rmse = np.sqrt(mean_squared_error(actual, pred))
    mae = mean_absolute_error(actual, pred)
    r2 = r2_score(actual, pred)
    return rmse, mae, r2


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    np.random.seed(40)
    data = load_data()
    train, test = train_test_split(data)
    train_x = train.drop(["quality"], axis=1)
    test_x = test.drop(["quality"], axis=1)
    train_y = train[["quality"]]
    test_y = test[["quality"]]

    alpha = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    l1_ratio = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5

    with mlflow.start_run():
        lr = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
        lr.fit(train_x, train_y)
        predicted_qualities = lr.predict(test_x)
        (rmse, mae, r2) = eval_metrics(test_y, predicted_qualities)
        print(f"Elasticnet model (alpha={alpha:f}, l1_ratio={l1_ratio:f}):")
        print(f"  RMSE: {rmse}\n  MAE: {mae}\n  R2: {r2}")
        mlflow.log_param("alpha", alpha)
        mlflow.log_param("l1_ratio", l1_ratio)
        mlflow.log_metric("rmse", rmse)
        mlflow.log_metric("r2", r2)
        mlflow.log_metric("mae", mae)
        tracking_url_type_store = urlparse(mlflow.get_tracking_uri()).scheme
        print("tracking scheme:", tracking_url_type_store)
        mlflow.sklearn.log_model(lr, name="model")
    run = mlflow.last_active_run()
    assert run.data.params == {"alpha": str(alpha), "l1_ratio": str(l1_ratio)}
    assert set(run.data.metrics) == {"rmse", "r2", "mae"}
    print("OK", run.info.run_id)
