"""How runs end: an exception in the block marks the run FAILED and propagates, end_run with a
status, and statuses as MLflow spells them in search."""

import mlflow

try:
    with mlflow.start_run() as failed:
        mlflow.log_metric("loss", 1.0)
        raise ValueError("diverged")
except ValueError:
    pass
assert mlflow.active_run() is None
assert mlflow.get_run(failed.info.run_id).info.status == "FAILED"
killed = mlflow.start_run()
mlflow.end_run(status="KILLED")
assert mlflow.get_run(killed.info.run_id).info.status == "KILLED"
with mlflow.start_run() as ok:
    pass
assert mlflow.get_run(ok.info.run_id).info.status == "FINISHED"
assert mlflow.last_active_run().info.run_id == ok.info.run_id
for status, rid in (("FAILED", failed), ("KILLED", killed), ("FINISHED", ok)):
    found = mlflow.search_runs(
        filter_string=f"attributes.status = '{status}'", output_format="list"
    )
    assert [r.info.run_id for r in found] == [rid.info.run_id], status
assert mlflow.entities.RunStatus.to_string(mlflow.entities.RunStatus.FAILED) == "FAILED"
print("OK")
