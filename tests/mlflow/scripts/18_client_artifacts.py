"""Artifacts through the client (the docs' "download artifacts" pattern): log files and a
folder, list them, download one file and a folder, and mlflow.artifacts helpers."""

import os
import tempfile

import mlflow
from mlflow import MlflowClient

work = tempfile.mkdtemp()
os.makedirs(os.path.join(work, "outputs", "plots"))
with open(os.path.join(work, "report.txt"), "w") as f:
    f.write("accuracy 0.9\n")
with open(os.path.join(work, "outputs", "preds.csv"), "w") as f:
    f.write("id,p\n1,0.5\n")
with open(os.path.join(work, "outputs", "plots", "a.txt"), "w") as f:
    f.write("plot\n")
with mlflow.start_run() as run:
    mlflow.log_artifact(os.path.join(work, "report.txt"))
    mlflow.log_artifacts(os.path.join(work, "outputs"), artifact_path="out")
    mlflow.log_text("hello", "notes/hello.txt")
    mlflow.log_dict({"lr": 0.1, "layers": [1, 2]}, "config.json")
rid = run.info.run_id
c = MlflowClient()
assert sorted(a.path for a in c.list_artifacts(rid)) == [
    "config.json",
    "notes",
    "out",
    "report.txt",
]
listed = {a.path: a for a in c.list_artifacts(rid, "out")}
assert sorted(listed) == ["out/plots", "out/preds.csv"]
assert listed["out/plots"].is_dir and not listed["out/preds.csv"].is_dir
assert listed["out/preds.csv"].file_size == len("id,p\n1,0.5\n")
dst = tempfile.mkdtemp()
local = c.download_artifacts(rid, "report.txt", dst)
assert open(local).read() == "accuracy 0.9\n"
folder = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="out", dst_path=dst)
assert open(os.path.join(folder, "plots", "a.txt")).read() == "plot\n"
assert mlflow.artifacts.load_text(f"runs:/{rid}/notes/hello.txt") == "hello"
assert mlflow.artifacts.load_dict(f"runs:/{rid}/config.json") == {"lr": 0.1, "layers": [1, 2]}
print("OK")
