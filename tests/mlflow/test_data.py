"""``mlflow.data``: datasets built by ``xp.mlflow`` carry MLflow's names, digests, sources,
schemas and profiles (compared with real MLflow's), so ``log_input`` records what MLflow would."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest


def frame() -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "age": [31, 45, 27],
            "income": [1.5, 2.25, 0.75],
            "city": ["Lyon", "Oslo", "Kyoto"],
            "member": [True, False, True],
            "label": [0, 1, 0],
        }
    )


def arrays() -> tuple[Any, Any]:
    import numpy as np

    return np.arange(12, dtype=np.float64).reshape(4, 3), np.array([0, 1, 1, 0])


SOURCES = [None, "data/train.csv", "s3://bucket/train.parquet", "https://example.com/t.csv"]


def comparable(d: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    for key in ("source", "schema", "profile"):
        if key in out:
            out[key] = json.loads(out[key])
    if out.get("source_type") == "code":
        out["source"] = {
            "tags": {"mlflow.source.type": out["source"]["tags"]["mlflow.source.type"]}
        }
    return out


@pytest.mark.framework
@pytest.mark.parametrize("source", SOURCES)
def test_pandas_datasets_are_mlflows(source: str | None) -> None:
    import mlflow.data as theirs

    import xp.mlflow.data as ours

    kwargs: dict[str, Any] = {"targets": "label", "name": "people"}
    if source is not None:
        kwargs["source"] = source
    mine = ours.from_pandas(frame(), **kwargs)
    real = theirs.from_pandas(frame(), **kwargs)
    assert comparable(mine.to_dict()) == comparable(real.to_dict())
    assert (mine.name, mine.digest, mine.targets) == (real.name, real.digest, real.targets)
    assert mine.profile == real.profile
    assert mine.source.uri == getattr(real.source, "uri", getattr(real.source, "url", None))


@pytest.mark.framework
@pytest.mark.parametrize("with_targets", [True, False])
def test_numpy_datasets_are_mlflows(with_targets: bool) -> None:
    import mlflow.data as theirs

    import xp.mlflow.data as ours

    features, targets = arrays()
    kwargs: dict[str, Any] = {"source": "data/x.npy"}
    if with_targets:
        kwargs["targets"] = targets
    mine = ours.from_numpy(features, **kwargs)
    real = theirs.from_numpy(features, **kwargs)
    assert comparable(mine.to_dict()) == comparable(real.to_dict())
    assert mine.digest == real.digest
    assert json.dumps(mine.profile) == json.dumps(real.profile)


def test_datasets_as_log_input_records_them(xpmlflow: ModuleType) -> None:
    data = xpmlflow.data
    features, targets = arrays()
    people = data.from_pandas(frame(), source="data/people.csv", targets="label", name="people")
    assert people.df.shape == (3, 5)
    assert people.predictions is None
    assert people.profile == {"num_rows": 3, "num_elements": 15}
    assert [c["name"] for c in people.schema] == ["age", "income", "city", "member", "label"]
    matrix = data.from_numpy(features, targets=targets, name="matrix")
    assert matrix.features is features
    assert matrix.targets is targets
    assert matrix.profile["features_shape"] == [4, 3]
    assert json.loads(matrix.to_json())["name"] == "matrix"
    with xpmlflow.start_run() as run:
        xpmlflow.log_input(people, context="training")
        xpmlflow.log_input(matrix, context="eval")
    inputs = xpmlflow.get_run(run.info.run_id).inputs.dataset_inputs
    got = {i.dataset.name: i for i in inputs}
    assert set(got) == {"people", "matrix"}
    assert got["people"].dataset.digest == people.digest
    assert got["people"].dataset.source_type == "local"
    assert json.loads(got["people"].dataset.source) == {"uri": "data/people.csv"}
    assert json.loads(got["matrix"].dataset.schema) == json.loads(matrix.to_dict()["schema"])
    contexts = {i.dataset.name: {t.key: t.value for t in i.tags} for i in inputs}
    assert contexts["people"]["mlflow.data.context"] == "training"
    with pytest.raises(xpmlflow.exceptions.MlflowException, match="predictions column 'nope'"):
        data.from_pandas(frame(), predictions="nope")
    with pytest.raises(xpmlflow.exceptions.MlflowException, match="targets column 'nope'"):
        data.from_pandas(frame(), targets="nope")
