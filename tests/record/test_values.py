"""Everyday values: every numeric type users pass is recorded as docs/api.md promises, and
what cannot be recorded is refused at the call, with the run going on (issue 10)."""

from __future__ import annotations

import decimal
import fractions
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xp
from xp.errors import InvalidValueError
from xp.record import values

FLOATS = [np.float16, np.float32, np.float64, np.longdouble]
INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


class Scalar:
    """A framework scalar that knows only ``__float__`` (TensorFlow's eager scalars do)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value


class Item:
    """A framework scalar with ``item()`` (torch tensors)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def item(self) -> Any:
        return self.value


@pytest.mark.parametrize("dtype", FLOATS)
def test_numpy_floats_are_their_exact_double(dtype: Any) -> None:
    value = dtype(0.1)
    for convert in (values.metric_value, values.param_value):
        got = convert("k", value)
        assert type(got) is float
        assert got == float(value)  # float32(0.1) is 0.10000000149011612, kept as that


@pytest.mark.parametrize("dtype", INTS)
def test_numpy_ints_are_ints(dtype: Any) -> None:
    value = dtype(np.iinfo(dtype).max if dtype is not np.uint64 else 2**63 - 1)
    for convert in (values.metric_value, values.param_value):
        got = convert("k", value)
        assert type(got) is int
        assert got == int(value)


def test_bools_zero_d_arrays_decimal_fraction_and_framework_scalars() -> None:
    m, p = values.metric_value, values.param_value
    assert m("k", np.bool_(True)) == 1
    assert type(m("k", np.bool_(True))) is int
    assert m("k", False) == 0
    assert p("k", np.bool_(False)) is False
    assert m("k", np.array(2.5)) == 2.5
    assert p("k", np.array(7)) == 7
    assert type(p("k", np.array(7))) is int
    assert m("k", decimal.Decimal("0.1")) == 0.1
    assert m("k", fractions.Fraction(1, 3)) == 1 / 3
    assert m("k", Scalar(0.25)) == 0.25
    assert m("k", Item(np.float32(0.5))) == 0.5
    assert m("k", Item(3)) == 3
    assert math.isnan(m("k", decimal.Decimal("NaN")))
    assert m("k", np.float64("inf")) == math.inf
    assert p("k", np.array([1.0, 2.0])) == [1.0, 2.0]
    assert p("k", [1, np.float32(2), "a", None]) == [1, 2.0, "a", None]
    assert p("k", 10**30) == 10**30  # params keep integers of any size exactly
    assert p("k", {"a": 1}) == "{'a': 1}"  # anything else: its text, as before


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (2**63, "64-bit"),
        (-(2**63) - 1, "64-bit"),
        (np.uint64(2**64 - 1), "64-bit"),
        (10**400, "64-bit"),
        (np.array([1.0, 2.0]), "ndarray of 2 elements"),
        (decimal.Decimal("sNaN"), "signaling NaN"),
        (fractions.Fraction(10**400), "too large"),
        (np.complex64(1), "complex64"),
        (1j, "complex"),
        ("0.5", "set_tag"),
        (None, "NoneType"),
        (object(), "object"),
    ],
)
def test_metrics_that_are_not_one_storable_number_are_refused(value: Any, match: str) -> None:
    with pytest.raises(InvalidValueError, match=match) as info:
        values.metric_value("k", value)
    assert "\n" not in str(info.value)


def test_torch_scalars_if_torch_is_installed() -> None:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (not in the test extra)")
    import torch

    assert values.metric_value("k", torch.tensor(0.5)) == 0.5
    assert values.metric_value("k", torch.tensor(3)) == 3
    assert values.param_value("k", torch.tensor(True)) is True
    with pytest.raises(InvalidValueError, match="elements"):
        values.metric_value("k", torch.tensor([1.0, 2.0]))


def test_steps_and_timestamps() -> None:
    assert values.step_value("k", np.int64(5)) == 5
    for bad in (1.5, True, "3", 2**63, None):
        with pytest.raises(InvalidValueError, match="step"):
            values.step_value("k", bad)
    assert values.timestamp_value("k", np.int64(1_700_000_000_000)) == 1_700_000_000.0
    for bad in (math.nan, 1e300, "now", -1e20, True):
        with pytest.raises(InvalidValueError, match="milliseconds"):
            values.timestamp_value("k", bad)


def test_everyday_values_record_a_whole_run(repo: Path) -> None:
    """A run logging numpy, Decimal and framework values commits, and reads back exactly."""
    with xp.start_run(name="np", params={"lr": np.float64(0.01), "depth": np.int32(6)}) as run:
        xp.log_param("frac", fractions.Fraction(1, 4))
        xp.log_param("flag", np.bool_(True))
        for i, loss in enumerate(np.linspace(1.0, 0.5, 5, dtype=np.float32)):
            xp.log_metric("loss", loss, step=np.int64(i))
        xp.log_metric("acc", decimal.Decimal("0.875"))
        xp.log_metric("ok", True)
        xp.log_metric("big", 2**62 + 1, step=1)
        xp.log_metric("big", -(2**62) - 3, step=2)
        with pytest.raises(InvalidValueError):
            xp.log_metric("huge", 10**400)
        xp.log_metric("after", 1.0)  # the refusal did not end the run
    got = xp.get_run(run.id)
    assert got.status == "finished"
    assert got.params == {"lr": 0.01, "depth": 6, "frac": 0.25, "flag": True}
    assert got.metrics["acc"] == 0.875
    assert got.metrics["ok"] == 1
    assert list(got.series("big")["value"]) == [2**62 + 1, -(2**62) - 3]  # not rounded
    assert list(got.series("loss")["value"]) == [
        float(v) for v in np.linspace(1.0, 0.5, 5, dtype=np.float32)
    ]
    assert "huge" not in got.metrics
    assert got.metrics["after"] == 1.0
