"""Rich artifact logging (docs "Tracking" how-tos): log_dict/log_text/log_figure/log_image/log_table,
load_table, and log_input with a pandas dataset."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import mlflow

mlflow.set_experiment("artifacts-demo")
df = pd.DataFrame({"x": np.arange(10), "y": np.arange(10) ** 2})
with mlflow.start_run() as run:
    mlflow.log_dict({"lr": 0.1, "layers": [8, 4]}, "config.json")
    mlflow.log_dict({"lr": 0.1}, "config.yaml")
    mlflow.log_text("training finished", "logs/summary.txt")
    fig, ax = plt.subplots()
    ax.plot(df["x"], df["y"])
    mlflow.log_figure(fig, "plots/curve.png")
    plt.close(fig)
    mlflow.log_image(np.zeros((8, 8, 3), dtype=np.uint8), "images/black.png")
    mlflow.log_table(
        data={"question": ["a", "b"], "score": [0.5, 0.9]}, artifact_file="eval/table.json"
    )
    dataset = mlflow.data.from_pandas(df, name="squares", targets="y")
    mlflow.log_input(dataset, context="training")

client = mlflow.MlflowClient()
paths = sorted(f.path for f in client.list_artifacts(run.info.run_id))
print(paths)
assert paths == ["config.json", "config.yaml", "eval", "images", "logs", "plots"]
r = mlflow.get_run(run.info.run_id)
assert json.loads(r.data.tags["mlflow.loggedArtifacts"]) == [
    {"path": "eval/table.json", "type": "table"}
]
di = r.inputs.dataset_inputs[0]
assert di.dataset.name == "squares" and di.dataset.source_type == "code"
assert {t.key: t.value for t in di.tags} == {"mlflow.data.context": "training"}
table = mlflow.load_table("eval/table.json", run_ids=[run.info.run_id])
assert list(table.columns) == ["question", "score"] and len(table) == 2
local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="config.json")
assert json.load(open(local)) == {"lr": 0.1, "layers": [8, 4]}
print("OK")
