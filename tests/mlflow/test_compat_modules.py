"""MLflow's small helper modules that user code imports by path (``from
mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE``, ``from mlflow.utils.mlflow_tags
import MLFLOW_RUN_NAME``, ``from mlflow.store.entities import PagedList``) work under
``xp.mlflow`` with MLflow's values."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

SHIMS = (
    "protos.databricks_pb2",
    "utils.mlflow_tags",
    "store.entities",
    "store.entities.paged_list",
)


def public_constants(module: ModuleType) -> dict[str, object]:
    return {
        k: v
        for k, v in vars(module).items()
        if k.isupper() and not k.startswith("_") and isinstance(v, (int, str))
    }


def test_error_codes_catch_what_xp_mlflow_raises(xpmlflow: ModuleType) -> None:
    from xp.mlflow.exceptions import MlflowException
    from xp.mlflow.protos.databricks_pb2 import (
        INVALID_PARAMETER_VALUE,
        RESOURCE_DOES_NOT_EXIST,
        ErrorCode,
    )

    with pytest.raises(MlflowException) as e:
        xpmlflow.get_run("0123456789abcdef0123456789abcdef")
    assert e.value.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)
    assert ErrorCode.Value(e.value.error_code) == RESOURCE_DOES_NOT_EXIST == 3002
    with pytest.raises(MlflowException) as e:
        xpmlflow.log_metric("bad!name", 1.0)
    assert e.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
    xpmlflow.end_run()
    # A user raising with the int code, as MLflow code does, gets the name back
    raised = MlflowException("nope", error_code=INVALID_PARAMETER_VALUE)
    assert raised.error_code == "INVALID_PARAMETER_VALUE"
    assert raised.get_http_status_code() == 400
    with pytest.raises(ValueError, match="unknown error code 4242"):
        ErrorCode.Name(4242)
    with pytest.raises(KeyError):
        ErrorCode.Value("NO_SUCH_CODE")


def test_system_tag_names_read_runs(xpmlflow: ModuleType) -> None:
    from xp.mlflow.utils.mlflow_tags import (
        MLFLOW_PARENT_RUN_ID,
        MLFLOW_RUN_NAME,
        MLFLOW_RUN_NOTE,
        MLFLOW_USER,
    )

    with (
        xpmlflow.start_run(run_name="outer", description="baseline") as outer,
        xpmlflow.start_run(run_name="inner", nested=True) as inner,
    ):
        pass
    tags = xpmlflow.get_run(inner.info.run_id).data.tags
    assert tags[MLFLOW_RUN_NAME] == "inner"
    assert tags[MLFLOW_PARENT_RUN_ID] == outer.info.run_id
    assert tags[MLFLOW_USER]
    assert xpmlflow.get_run(outer.info.run_id).data.tags[MLFLOW_RUN_NOTE] == "baseline"


def test_paged_list_is_what_the_client_pages_with(xpmlflow: ModuleType) -> None:
    from xp.mlflow.store.entities import PagedList
    from xp.mlflow.store.entities.paged_list import PagedList as Same

    assert PagedList is Same
    for i in range(3):
        with xpmlflow.start_run(run_name=f"r{i}"):
            xpmlflow.log_metric("i", i)
    client = xpmlflow.MlflowClient()
    first = client.search_runs(["0"], max_results=2, order_by=["metrics.i ASC"])
    assert isinstance(first, PagedList)
    assert [r.data.metrics["i"] for r in first] == [0, 1]
    assert first.token is not None
    rest = client.search_runs(
        ["0"], max_results=2, order_by=["metrics.i ASC"], page_token=first.token
    )
    assert [r.data.metrics["i"] for r in rest.to_list()] == [2]
    assert rest.token is None
    page = PagedList([1, 2], "next")
    assert page == [1, 2]
    assert page.token == "next"
    assert page.to_list() == [1, 2]


@pytest.mark.framework
@pytest.mark.parametrize("name", SHIMS)
def test_values_are_mlflows(name: str, repo: Path) -> None:
    ours = importlib.import_module(f"xp.mlflow.{name}")
    theirs = importlib.import_module(f"mlflow.{name}")
    mine = public_constants(ours)
    mine.pop("OK", None)  # xp's name for 0; MLflow's ErrorCode has no OK
    for key, value in mine.items():
        assert getattr(theirs, key) == value, key
    assert set(getattr(ours, "__all__", ())) <= set(dir(theirs))
    if name == "protos.databricks_pb2":
        assert len(mine) >= 15
        for key, value in mine.items():
            assert ours.ErrorCode.Name(value) == theirs.ErrorCode.Name(value) == key
            assert ours.ErrorCode.Value(key) == theirs.ErrorCode.Value(key)
    if name == "utils.mlflow_tags":
        assert len(mine) >= 19
    if name.startswith("store.entities"):
        page = ours.PagedList(["a"], "t")
        real = theirs.PagedList(["a"], "t")
        assert (page.to_list(), page.token) == (real.to_list(), real.token)
