"""MLflow's rules for names and values: what MLflow refuses, xp.mlflow refuses with MLflow's
message and code (checked against MLflow's own validation functions), so code that matches on
them works unchanged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.mlflow.conftest import xpmlflow as xpmlflow  # the fixture: xp.mlflow, reset
from xp.errors import MlflowException
from xp.interop import mlflow_validation as V

LONG_KEY = "k" * 251


def param(key: Any, value: Any) -> Any:
    from mlflow.entities import Param

    return Param(key, value)


# (xp's check, MLflow's check): the same refusal expected from both
CASES: list[tuple[str, Callable[[], object], Callable[[Any], object]]] = [
    ("metric name None", lambda: V.check_name(None, "name", "metric"),
     lambda m: m._validate_metric_name(None, "name")),
    ("param name None", lambda: V.check_name(None, "key", "param"),
     lambda m: m._validate_param_name(None, "key")),
    ("tag name None", lambda: V.check_name(None, "key", "tag"),
     lambda m: m._validate_tag_name(None, "key")),
    ("bad character", lambda: V.check_name("lr!", "key", "param"),
     lambda m: m._validate_param_name("lr!", "key")),
    ("dot-dot", lambda: V.check_name("../up", "key", "tag"),
     lambda m: m._validate_tag_name("../up", "key")),
    ("double slash", lambda: V.check_name("a//b", "name", "metric"),
     lambda m: m._validate_metric_name("a//b", "name")),
    ("absolute", lambda: V.check_name("/abs", "key", "param"),
     lambda m: m._validate_param_name("/abs", "key")),
    ("long param key", lambda: V.check_name(LONG_KEY, "key", "param"),
     lambda m: m._validate_param(LONG_KEY, "v")),
    ("long metric name", lambda: V.check_metric(LONG_KEY, 1.0, 0, 0),
     lambda m: m._validate_metric(LONG_KEY, 1.0, 0, 0)),
    ("long tag key", lambda: V.check_name(LONG_KEY, "key", "tag"),
     lambda m: m._validate_tag(LONG_KEY, "v")),
    ("value None", lambda: V.check_metric("m", None, 0, 0),
     lambda m: m._validate_metric("m", None, 0, 0)),
    ("value text", lambda: V.check_metric("m", "0.5", 7, 0),
     lambda m: m._validate_metric("m", "0.5", 7, 0)),
    ("value bool", lambda: V.check_metric("m", True, 7, 0),
     lambda m: m._validate_metric("m", True, 7, 0)),
    ("negative timestamp", lambda: V.check_metric("m", 1.5, -1, 0),
     lambda m: m._validate_metric("m", 1.5, -1, 0)),
    ("text timestamp", lambda: V.check_metric("m", 1.5, "now", 0),
     lambda m: m._validate_metric("m", 1.5, "now", 0)),
    ("text step", lambda: V.check_metric("m", 1.5, 0, "one"),
     lambda m: m._validate_metric("m", 1.5, 0, "one")),
    ("batch path", lambda: V.check_metric("m", "x", 0, 0, "metrics[3]"),
     lambda m: m._validate_metric("m", "x", 0, 0, "metrics[3]")),
    ("experiment name empty", lambda: V.check_experiment_name(""),
     lambda m: m._validate_experiment_name("")),
    ("experiment name None", lambda: V.check_experiment_name(None),
     lambda m: m._validate_experiment_name(None)),
    ("experiment name int", lambda: V.check_experiment_name(5),
     lambda m: m._validate_experiment_name(5)),
    ("experiment name long", lambda: V.check_experiment_name("e" * 501),
     lambda m: m._validate_experiment_name("e" * 501)),
    ("run id", lambda: V.check_run_id("no such run!"),
     lambda m: m._validate_run_id("no such run!")),
    ("duplicate params", lambda: V.check_unique_params(["a", "b", "a"]),
     lambda m: m._validate_param_keys_unique([param(k, "1") for k in "aba"])),
]  # fmt: skip


@pytest.mark.framework
@pytest.mark.parametrize(
    ("xp_check", "mlflow_check"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refusals_are_mlflows(
    xp_check: Callable[[], object], mlflow_check: Callable[[Any], object]
) -> None:
    import mlflow.exceptions
    import mlflow.utils.validation as theirs

    with pytest.raises(mlflow.exceptions.MlflowException) as expected:
        mlflow_check(theirs)
    with pytest.raises(MlflowException) as got:
        xp_check()
    assert got.value.message == expected.value.message
    assert got.value.error_code == expected.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.framework
@pytest.mark.parametrize("truncate", ["true", "false"])
def test_long_values_are_truncated_or_refused_as_mlflow_does(
    truncate: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import mlflow.exceptions
    import mlflow.utils.validation as theirs

    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", truncate)
    value = "v" * 6001
    if truncate == "true":
        with caplog.at_level(logging.WARNING):
            assert V.truncate("Param value", value, 6000) == value[:6000]
        assert (
            theirs._validate_length_limit("Param value", 6000, value, truncate=True)
            == (value[:6000])
        )
        assert "Param value 'vvv" in caplog.text
        assert "is truncated to 6000" in caplog.text
        return
    with pytest.raises(mlflow.exceptions.MlflowException) as expected:
        theirs._validate_length_limit("Param value", 6000, value, truncate=True)
    with pytest.raises(MlflowException) as got:
        V.truncate("Param value", value, 6000)
    assert got.value.message == expected.value.message


def test_valid_values_pass_unchanged() -> None:
    assert V.check_name("a/b c:d-e.f_g", "key", "param") == "a/b c:d-e.f_g"
    assert V.check_metric("loss", 3, 1700000000000, 2) == 3.0
    assert isinstance(V.check_metric("loss", 3, 0, 0), float)
    assert V.check_experiment_name("wine") == "wine"
    assert V.check_run_id("1m8g9wys2dzmgq") == "1m8g9wys2dzmgq"
    V.check_unique_params(["a", "b"])
    assert V.truncate("Param value", "short", 6000) == "short"


def test_what_the_api_refuses_says_so_in_mlflows_words(
    xpmlflow: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    with xpmlflow.start_run():
        with pytest.raises(MlflowException, match=r"Invalid value \"lr!\" for parameter 'key'"):
            xpmlflow.log_param("lr!", 1)
        with pytest.raises(MlflowException, match="Please specify value as a valid double"):
            xpmlflow.log_metric("m", "high")
        with pytest.raises(MlflowException, match="Step must be a valid long"):
            xpmlflow.log_metric("m", 1.0, step=1.5)
        # not even text: a clean refusal (MLflow fails with a TypeError in json.dumps)
        with pytest.raises(MlflowException) as e:
            xpmlflow.log_param(b"key", 1)  # type: ignore[arg-type]
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "\"b'key'\"" in e.value.message
        # xp's own rule: names are file paths, so no part may start or end with a space
        with pytest.raises(MlflowException, match="no part of a name may start or end"):
            xpmlflow.set_tag("team/ ml", "x")
        with pytest.raises(MlflowException, match="exceeds the maximum length of 500"):
            xpmlflow.set_experiment("e" * 501)
        monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
        with pytest.raises(MlflowException, match="'Param value' exceeds the maximum length"):
            xpmlflow.log_param("long", "v" * 6001)
        with pytest.raises(MlflowException, match="'value' exceeds the maximum length of 8000"):
            xpmlflow.set_tag("long", "v" * 8001)
        monkeypatch.delenv("MLFLOW_TRUNCATE_LONG_VALUES")
        xpmlflow.log_param("long", "v" * 6001)
        xpmlflow.set_tag("long", "v" * 8001)
        run_id = xpmlflow.active_run().info.run_id
    data = xpmlflow.get_run(run_id).data
    assert data.params == {"long": "v" * 6000}
    assert data.tags["long"] == "v" * 8000
    assert "m" not in data.metrics


def test_batches_name_the_entry_at_fault(xpmlflow: ModuleType, repo: Path) -> None:
    from xp.mlflow.entities import Metric, Param

    client = xpmlflow.MlflowClient()
    run = client.create_run("0")
    with pytest.raises(MlflowException, match=r"parameter 'metrics\[1\]\.value'"):
        client.log_batch(run.info.run_id, metrics=[Metric("a", 1, 0, 0), Metric("b", "x", 0, 0)])
    with pytest.raises(MlflowException, match=r"Duplicate parameter keys .*\['a'\]"):
        client.log_batch(run.info.run_id, params=[Param("a", "1"), Param("a", "2")])
    assert client.get_run(run.info.run_id).data.params == {}
