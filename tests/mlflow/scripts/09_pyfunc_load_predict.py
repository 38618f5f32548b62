"""Model logging + loading round trip (docs "MLflow Models"/pyfunc pattern): sklearn.log_model,
pyfunc.load_model via model_info.model_uri and via runs:/<run_id>/<name>, predict on a DataFrame."""

import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

import mlflow
from mlflow.models import infer_signature

X, y = load_diabetes(return_X_y=True, as_frame=True)
X = X.iloc[:120]
y = y.iloc[:120]
with mlflow.start_run() as run:
    rf = RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    signature = infer_signature(X, rf.predict(X))
    # NB: MLflow >= 3.1x defaults to serialization_format="skops", which REFUSES tree models at log time
    # ("untrusted types ... sklearn.tree._tree.Tree"); pre-3.x scripts never passed this argument.
    info = mlflow.sklearn.log_model(
        rf,
        name="rf_model",
        signature=signature,
        input_example=X.head(3),
        serialization_format="cloudpickle",
    )
print("model_uri:", info.model_uri)
pyfunc_model = mlflow.pyfunc.load_model(info.model_uri)
preds = pyfunc_model.predict(X.head(5))
assert len(preds) == 5
via_runs = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/rf_model")
assert (via_runs.predict(X.head(5)) == preds).all()
sk = mlflow.sklearn.load_model(info.model_uri)
assert isinstance(sk, RandomForestRegressor)
print(pd.DataFrame({"pred": preds}))
print("OK")
