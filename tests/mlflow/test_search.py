"""``search_runs`` and ``search_experiments`` with MLflow's grammar, its answers and its
DataFrame, through ``xp.mlflow`` and through MLflow over the plugin.

The filter table is what MLflow 3.17's own stores answered for the same three runs
(recorded by running the same calls against its sqlite and file stores).
"""

from __future__ import annotations

import math
from types import ModuleType

import pytest


@pytest.fixture
def abc(mlflow: ModuleType) -> dict[str, str]:
    """Three runs: a (lr 0.01, Adam, loss 0.9->0.2, acc 0.8, red, FINISHED), b (lr 0.1, sgd,
    loss 0.5->0.4, acc 0.9, blue, FAILED), c (lr 1, acc NaN, KILLED), started in that order."""
    mlflow.set_experiment("filters")

    def make(
        name: str,
        params: dict[str, str],
        metrics: dict[str, object],
        tags: dict[str, str],
        status: str,
    ) -> str:
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_params(params)
            for key, value in metrics.items():
                if isinstance(value, list):
                    for i, x in enumerate(value):
                        mlflow.log_metric(key, x, step=i)
                else:
                    mlflow.log_metric(key, value)
            mlflow.set_tags(tags)
            if status != "FINISHED":
                mlflow.end_run(status)
        return str(run.info.run_id)

    return {
        "a": make(
            "alpha",
            {"lr": "0.01", "my param": "x", "opt": "Adam"},
            {"loss": [0.9, 0.2], "acc": 0.8, "loss-x": 1.5},
            {"team": "red"},
            "FINISHED",
        ),
        "b": make(
            "beta",
            {"lr": "0.1", "opt": "sgd"},
            {"loss": [0.5, 0.4], "acc": 0.9},
            {"team": "blue"},
            "FAILED",
        ),
        "c": make("Gamma", {"lr": "1"}, {"acc": float("nan")}, {}, "KILLED"),
    }


FILTERS = [
    ("", "cba"),
    ("metrics.loss < 0.3", "a"),
    ("metrics.loss > -1", "ba"),
    ("metrics.loss = 0.2", "a"),
    ("metrics.acc >= 0.8", "ba"),
    ("metrics.acc != 0.8", "cb"),
    ("metric.acc > 0", "ba"),
    ("metrics.`loss-x` > 1", "a"),
    ("`metrics`.`loss-x` > 1", "a"),
    ("params.lr = '0.01'", "a"),
    ('params.lr = "0.01"', "a"),
    ("params.lr != '0.01'", "cb"),
    ("param.opt LIKE 'A%'", "a"),
    ("params.opt LIKE 'a%'", ""),
    ("params.opt ILIKE 'a%'", "a"),
    ("params.`my param` = 'x'", "a"),
    ("params.\"my param\" = 'x'", "a"),
    ("params.opt IS NULL", "c"),
    ("params.opt IS NOT NULL", "ba"),
    ("tags.team = 'red'", "a"),
    ("tags.team != 'red'", "b"),
    ("tags.`mlflow.runName` = 'alpha'", "a"),
    ("tags.mlflow.runName = 'alpha'", "a"),
    ("tags.mlflow.runName LIKE '%a'", "cba"),
    ("attributes.status = 'FINISHED'", "a"),
    ("status = 'FAILED'", "b"),
    ("attribute.status != 'FINISHED'", "cb"),
    ("attributes.status = 'finished'", ""),
    ("attributes.run_name = 'alpha'", "a"),
    ("run_name ILIKE 'g%'", "c"),
    ("attributes.run_name LIKE '%a'", "cba"),
    ("`Run name` = 'beta'", "b"),
    ("attributes.start_time > 0", "cba"),
    ("attributes.end_time > 0", "cba"),
    ("created > 0", "cba"),
    ("attributes.artifact_uri LIKE '%artifacts'", "cba"),
    ("metrics.acc > 0.5 and params.lr = '0.1'", "b"),
    ("metrics.acc > 0.5 AND tags.team = 'red'", "a"),
    ("datasets.name = 'x'", ""),
]
ERRORS = [
    ("params.lr > '0.05'", "Invalid comparator '>' not one of"),
    ("tag.team IN ('red','blue')", "Expected a quoted string value for tag"),
    ("attributes.status IN ('FAILED','KILLED')", "Only ['run_id'] attributes support comparison"),
    (
        "attributes.start_time > '0'",
        "Expected numeric value type for numeric attribute: start_time",
    ),
    ("metrics.acc > 0.5 OR params.lr = '0.1'", "Invalid clause(s) in filter string: 'OR'"),
    ("params.lr = 0.1", "Expected a quoted string value for parameter (e.g. 'my-value')"),
    ("metrics.acc > '0.5'", "Expected numeric value type for metric. Found '0.5'"),
    ("foo.bar = 'x'", "Invalid entity type 'foo'. Valid values are"),
    ("attributes.foo = 'x'", "Invalid attribute key 'foo' specified"),
    ("params.opt IN ('sgd')", "Expected a quoted string value for parameter"),
    ("metrics.acc IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params"),
]
ORDERS = [
    (None, "cba"),
    (["metrics.loss ASC"], "abc"),
    (["metrics.loss DESC"], "bac"),
    (["metrics.acc DESC"], "bac"),
    (["params.lr"], "abc"),
    (["params.lr DESC"], "cba"),
    (["attributes.start_time ASC"], "abc"),
    (["start_time"], "abc"),
    (["tags.team"], "bac"),
    (["run_name"], "cab"),
    (["attributes.run_name DESC"], "bac"),
    (["status"], "bac"),
    (["metrics.`loss-x` DESC"], "acb"),
    (["metrics.loss asc", "params.lr desc"], "abc"),
]


def _names(runs: list[object], ids: dict[str, str]) -> str:
    by_id = {v: k for k, v in ids.items()}
    return "".join(by_id[r.info.run_id] for r in runs)  # type: ignore[attr-defined]


def test_filters_as_mlflow_answers_them(mlflow: ModuleType, abc: dict[str, str]) -> None:
    client = mlflow.MlflowClient()
    exp = mlflow.get_experiment_by_name("filters").experiment_id
    ids = dict(abc)
    wrong = []
    for text, want in [*FILTERS, (f"attributes.run_id = '{ids['a']}'", "a")]:
        got = _names(client.search_runs([exp], text, max_results=100), ids)
        if got != want:
            wrong.append((text, want, got))
    for text, want in [
        (f"attributes.run_id IN ('{ids['a']}', '{ids['b']}')", "ba"),
        (f"attributes.run_id NOT IN ('{ids['a']}')", "cb"),
    ]:
        got = _names(client.search_runs([exp], text), ids)
        if got != want:
            wrong.append((text, want, got))
    assert wrong == []


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_filter_errors(mlflow: ModuleType, text: str, message: str) -> None:
    with pytest.raises(mlflow.exceptions.MlflowException) as e:
        mlflow.MlflowClient().search_runs(["0"], text)
    assert message in str(e.value)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_order_by_as_mlflow_answers_it(mlflow: ModuleType, abc: dict[str, str]) -> None:
    client = mlflow.MlflowClient()
    exp = mlflow.get_experiment_by_name("filters").experiment_id
    wrong = []
    for order, want in ORDERS:
        got = _names(client.search_runs([exp], "", order_by=order), abc)
        if got != want:
            wrong.append((order, want, got))
    assert wrong == []
    for order, message in (
        (["foo.bar"], "Invalid entity type 'foo'"),
        (["metrics.loss sideways"], "Invalid ordering key in order_by clause"),
    ):
        with pytest.raises(mlflow.exceptions.MlflowException, match=message.replace("(", r"\(")):
            client.search_runs([exp], "", order_by=order)


def test_pages(mlflow: ModuleType, abc: dict[str, str]) -> None:
    client = mlflow.MlflowClient()
    exp = mlflow.get_experiment_by_name("filters").experiment_id
    first = client.search_runs([exp], max_results=2)
    assert len(first) == 2
    assert first.token
    rest = client.search_runs([exp], max_results=2, page_token=first.token)
    assert len(rest) == 1
    assert not rest.token
    assert {r.info.run_id for r in [*first, *rest]} == set(abc.values())
    with pytest.raises(mlflow.exceptions.MlflowException, match="It must be at most 50000"):
        client.search_runs([exp], max_results=50001)


def test_search_runs_dataframe(mlflow: ModuleType, abc: dict[str, str]) -> None:
    import pandas as pd

    df = mlflow.search_runs(experiment_names=["filters"])
    assert list(df["run_id"]) == [abc["c"], abc["b"], abc["a"]]
    assert list(df.columns[:6]) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    assert list(df["status"]) == ["KILLED", "FAILED", "FINISHED"]
    assert str(df["start_time"].dtype).startswith("datetime64")
    assert str(df["start_time"].dt.tz) == "UTC"
    assert df["metrics.acc"].dtype == "float64"
    assert math.isnan(df["metrics.acc"][0])
    assert df["metrics.acc"][2] == 0.8
    assert math.isnan(df["metrics.loss"][0])
    assert df["metrics.loss"][2] == 0.2
    assert df["params.lr"].tolist() == ["1", "0.1", "0.01"]
    assert pd.isna(df["params.opt"][0])
    assert df["params.opt"][1] == "sgd"
    assert df["tags.mlflow.runName"].tolist() == ["Gamma", "beta", "alpha"]
    assert pd.isna(df["tags.team"][0])
    # the dtypes MLflow's own construction gives with this pandas
    expected = pd.DataFrame(
        {"status": ["KILLED"], "start_time": [pd.to_datetime(0, unit="ms", utc=True)]}
    )
    assert df["status"].dtype == expected["status"].dtype
    assert df["start_time"].dtype == expected["start_time"].dtype


def test_search_runs_lists_and_arguments(mlflow: ModuleType, abc: dict[str, str]) -> None:
    runs = mlflow.search_runs(
        experiment_names=["filters"], filter_string="params.lr = '0.1'", output_format="list"
    )
    assert [r.info.run_id for r in runs] == [abc["b"]]
    assert runs[0].data.params == {"lr": "0.1", "opt": "sgd"}
    assert runs[0].data.metrics["loss"] == 0.4
    assert len(mlflow.search_runs(output_format="list")) == 3  # the active experiment
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == 3
    assert mlflow.search_runs(experiment_names=["nope", None], output_format="list") == []
    empty = mlflow.search_runs(experiment_names=["nope"])
    assert list(empty.columns) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    assert len(empty) == 0
    with pytest.raises(
        mlflow.exceptions.MlflowException, match="Only experiment_ids or experiment_names"
    ):
        mlflow.search_runs(experiment_ids=["0"], experiment_names=["filters"])
    with pytest.raises(ValueError, match="Unsupported output format"):
        mlflow.search_runs(output_format="csv")


def test_search_child_runs_by_parent(mlflow: ModuleType) -> None:
    with mlflow.start_run() as parent:
        for a in (0.1, 1.0):
            with mlflow.start_run(nested=True, run_name=f"a={a}"):
                mlflow.log_param("a", a)
                mlflow.log_metric("score", a)
    runs = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    assert sorted(r.data.metrics["score"] for r in runs) == [0.1, 1.0]


def test_deleted_runs_by_view_type(mlflow: ModuleType) -> None:
    client = mlflow.MlflowClient()
    with mlflow.start_run() as kept:
        pass
    with mlflow.start_run() as gone:
        pass
    client.delete_run(gone.info.run_id)
    assert client.get_run(gone.info.run_id).info.lifecycle_stage == "deleted"

    def ids(view: int) -> set[str]:
        return {r.info.run_id for r in client.search_runs(["0"], run_view_type=view)}

    view = mlflow.entities.ViewType
    assert ids(view.ACTIVE_ONLY) == {kept.info.run_id}
    assert ids(view.DELETED_ONLY) == {gone.info.run_id}
    assert ids(view.ALL) == {kept.info.run_id, gone.info.run_id}
    client.restore_run(gone.info.run_id)
    assert ids(view.ACTIVE_ONLY) == {kept.info.run_id, gone.info.run_id}


def test_search_experiments(mlflow: ModuleType) -> None:
    client = mlflow.MlflowClient()
    for i in range(3):
        client.create_experiment(f"active_{i}", tags={"tag": "x"} if i == 1 else None)
    dead = client.create_experiment("deleted_0")
    client.delete_experiment(dead)
    view = mlflow.entities.ViewType
    names = [e.name for e in client.search_experiments()]
    assert names == ["active_2", "active_1", "active_0", "Default"]  # newest first
    assert [e.name for e in client.search_experiments(view_type=view.DELETED_ONLY)] == ["deleted_0"]
    assert len(client.search_experiments(view_type=view.ALL)) == 5
    assert [e.name for e in client.search_experiments(filter_string="name = 'active_1'")] == [
        "active_1"
    ]
    assert len(client.search_experiments(filter_string="name ILIKE 'ACTIVE_%'")) == 3
    assert [e.name for e in client.search_experiments(filter_string="tags.tag = 'x'")] == [
        "active_1"
    ]
    assert [e.name for e in client.search_experiments(order_by=["name DESC"])][:2] == [
        "active_2",
        "active_1",
    ]
    assert len(client.search_experiments(max_results=2)) == 2
    assert [e.name for e in mlflow.search_experiments(filter_string="experiment_id = '0'")] == [
        "Default"
    ]
    with pytest.raises(mlflow.exceptions.MlflowException, match="Invalid entity type 'attributes'"):
        client.search_experiments(filter_string="attributes.creation_time > 0")
