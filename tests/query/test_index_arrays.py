"""``index.arrays``: the runs' value arrays parsed by orjson give ``json``'s values once a
caller checks them with ``wide_floats`` (orjson reads an integer beyond 64 bits as a float),
and orjson is not loaded by ``import xp`` or ``xp --help``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli.test_show_stream import record_runs
from xp.gitstore.repo import find_repo
from xp.query.index import Query, arrays, open_index

scalars = (
    st.integers()  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2.0**63, -(2.0**63), 1e300, -0.0, 2**63, 2**64 - 1, 2**64, -(2**63) - 1])
    | st.text(max_size=5)
    | st.booleans()
    | st.none()
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
arrays_of_runs = st.lists(st.lists(values, max_size=4), max_size=6)


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types (1 is not 1.0, -0.0 is not 0.0), nested."""
    return json.dumps(a) == json.dumps(b) and repr(a) == repr(b)


@settings(max_examples=200, deadline=None)
@given(runs=arrays_of_runs)
def test_parsed_arrays_equal_json_once_checked(runs: list[list[Any]]) -> None:
    """Where ``wide_floats`` finds nothing, orjson's parse is ``json``'s, value and type;
    where orjson read an integer as a float, ``wide_floats`` finds it (by columns and by
    runs, as ``Index.batches`` asks)."""
    docs = [json.dumps(run) for run in runs]
    reference = json.loads("[" + ",".join(docs) + "]")
    got = arrays.parse(docs)
    columns = list(zip(*got, strict=False)) if len({len(r) for r in got}) == 1 else got
    if not arrays.wide_floats(columns) and not arrays.wide_floats(got):
        assert _same(got, reference)
    if not _same(got, reference):
        assert arrays.wide_floats(got)


@pytest.mark.parametrize(
    ("column", "wide"),
    [
        ([1.0, 2.5, -3.0], False),
        ([1.0, 2.0**63], True),
        ([-(2.0**63), 1.0], True),
        ([2**70, 1], False),  # json's exact integers: nothing to re-parse
        ([1, "x", 9.3e18], True),
        ([1, "x", 9.2e18], False),  # below 2**63
        (["a", [1, [2.0**64]]], True),
        ([{"k": -1e30}], True),
        ([None, True, "x", 1e18], False),
        ([], False),
    ],
)
def test_wide_floats(column: list[Any], wide: bool) -> None:
    assert arrays.wide_floats([column]) is wide


def test_texts_orjson_refuses_are_parsed_by_json() -> None:
    assert arrays.parse(["[Infinity]", '["\\ud800"]', "[1e999]"]) == [
        [math.inf],
        ["\ud800"],
        [math.inf],
    ]


@pytest.mark.parametrize("big", [10**30, -(10**20), 2**64, -(2**63) - 1])
def test_a_streamed_batch_keeps_integers_beyond_64_bits(repo: Path, big: int) -> None:
    """A batch whose shown column holds an integer orjson reads as a float is parsed again
    by json: the column and every run's values keep the exact integers."""
    record_runs(
        repo,
        [
            {"name": "a", "params": {"big": big, "x": 0.5}, "metrics": {}, "tags": {}},
            {"name": "b", "params": {"big": 3, "x": 1e300}, "metrics": {}, "tags": {}},
        ],
    )
    with open_index(find_repo(repo)) as index:
        (batch,) = index.batches(Query(), ["name"], ["params.big", "params.x"])
        (whole,) = index.batches(Query(), ["name"], None)
    assert [repr(v) for v in batch.values["params.big"]] == [repr(3), repr(big)]
    assert batch.values["params.x"] == [1e300, 0.5]
    assert whole.maps is not None
    assert [repr(m["params.big"]) for m in whole.maps] == [repr(3), repr(big)]


def test_import_xp_and_help_do_not_load_orjson(tmp_path: Path) -> None:
    code = (
        "import sys, xp\n"
        "from xp.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('loaded:', 'orjson' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.stdout.strip().splitlines()[-1] == "loaded: False", out.stdout + out.stderr
