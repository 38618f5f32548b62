"""MlflowClient low-level API (the docs' "MlflowClient" tutorial pattern): explicit experiment and
run management, timestamps/steps, log_batch, set_terminated, history, search, artifacts."""

import os
import tempfile
import time

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType

client = MlflowClient()
name = f"client-demo-{int(time.time())}"
exp_id = client.create_experiment(name, tags={"project": "xp-compat"})
assert client.get_experiment_by_name(name).experiment_id == exp_id
run = client.create_run(exp_id, run_name="manual", tags={"source": "client"})
rid = run.info.run_id
assert run.info.status == "RUNNING" and run.info.run_name == "manual"
t0 = int(time.time() * 1000)
for step in range(5):
    client.log_metric(rid, "loss", 1.0 / (step + 1), timestamp=t0 + step, step=step)
client.log_param(rid, "optimizer", "sgd")
client.set_tag(rid, "phase", "train")
client.log_batch(
    rid, metrics=[Metric("acc", 0.75, t0, 0)], params=[Param("bs", "32")], tags=[RunTag("k", "v")]
)
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "notes.txt")
    open(p, "w").write("hello")
    client.log_artifact(rid, p, artifact_path="docs")
    client.log_text(rid, "x,y\n1,2\n", "data/points.csv")
    client.log_dict(rid, {"a": 1}, "cfg.json")
client.set_terminated(rid, "FINISHED")

r = client.get_run(rid)
print(r.info)
assert r.info.status == "FINISHED" and r.info.end_time >= r.info.start_time
assert r.data.params == {"optimizer": "sgd", "bs": "32"}
assert r.data.metrics == {"loss": 0.2, "acc": 0.75}
assert (
    r.data.tags["phase"] == "train"
    and r.data.tags["source"] == "client"
    and r.data.tags["mlflow.runName"] == "manual"
)
hist = client.get_metric_history(rid, "loss")
assert [(m.step, m.timestamp) for m in hist] == [(i, t0 + i) for i in range(5)]
assert sorted(f.path for f in client.list_artifacts(rid)) == ["cfg.json", "data", "docs"]
assert [f.path for f in client.list_artifacts(rid, "docs")] == ["docs/notes.txt"]
local = client.download_artifacts(rid, "docs/notes.txt", tempfile.mkdtemp())
assert open(local).read() == "hello"
runs = client.search_runs(
    [exp_id], "params.optimizer = 'sgd' and metrics.loss < 0.5", run_view_type=ViewType.ACTIVE_ONLY
)
assert [x.info.run_id for x in runs] == [rid]
exps = client.search_experiments(filter_string=f"name = '{name}'")
assert [e.experiment_id for e in exps] == [exp_id] and exps[0].tags == {"project": "xp-compat"}
client.delete_run(rid)
assert client.search_runs([exp_id]) == []
assert len(client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == 1
client.restore_run(rid)
print("OK")
