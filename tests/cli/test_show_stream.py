"""``xp show --all`` and ``xp.search_runs`` read the index column by column, a batch at a
time (``Index.batches``, ``search._uniform_values``); the reference is the path that holds
``RunRow`` objects (``xp show -n``) and pandas' own inference over the rows (``_frame``'s
general path). Hypothesis writes the runs: params and metrics of mixed types, missing
values, NaN and infinities, huge integers, unicode and control characters in names, keys
and values; every format and a narrow and a wide terminal must print the same bytes."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xp.cli
from tests.helpers import git, scratch_project
from xp import format as fmt
from xp.gitstore.repo import find_repo
from xp.query import search
from xp.query.index import INDEX_FILE, Query, arrays, open_index, store
from xp.record.model import RunRecord
from xp.tracking.record_commit import commit_record

texts = st.sampled_from(
    ["adam", "0.1", "nan", "inf", "true", "", "a|b", "x" * 30, "é", "学习率", "🚀", "tab\tx",
     "line\nbreak", "esc\x1b[31mred", "bidi\u202eevil", "del\x7f"]
)  # fmt: skip
floats = (
    st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.sampled_from([0.0, -0.0, 1e-05, 1e300, 123456.789, 0.1 + 0.2])
    | st.sampled_from([math.nan, math.inf, -math.inf])
)
ints = st.integers(-5, 5) | st.sampled_from([10**30, -(10**20), 2**63 - 1, 123456789012345])
param_values = floats | ints | texts | st.booleans() | st.none() | st.lists(ints, max_size=2)
# a text metric: a record edited by hand. (A metric integer beyond 64 bits is laid out as the
# float the index holds it as, in a streamed table only: left out, see CHANGELOG #18.)
metric_values = floats | st.integers(-5, 5) | st.sampled_from([2**63 - 1]) | texts
param_keys = st.sampled_from(["lr", "opt", "c.d", "学习率", "n"])
metric_keys = st.sampled_from(["acc", "loss", "lr", "é"])  # lr: in params and metrics
names = st.sampled_from(["a", "run-1", "学习", "🚀 go", "esc\x1b]0;x\x07", "bidi\u202e", "x" * 40])
mixed_runs = st.fixed_dictionaries(
    {
        "name": names,
        "params": st.dictionaries(param_keys, param_values, max_size=4),
        "metrics": st.dictionaries(metric_keys, metric_values, max_size=3),
        "tags": st.dictionaries(st.sampled_from(["team", "note"]), texts, max_size=2),
        "status": st.sampled_from(["finished", "failed"]),
    }
)


@st.composite
def uniform_corpora(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Runs that share one key set, each key of one type: what the typed columns are for."""
    kinds = {"float": floats, "int": st.integers(-(2**63), 2**63 - 1), "str": texts}
    params = draw(st.dictionaries(param_keys, st.sampled_from(list(kinds)), min_size=1))
    metrics = draw(st.dictionaries(metric_keys, st.sampled_from(["float", "int"]), max_size=3))
    n = draw(st.integers(1, 6))
    return [
        {
            "name": draw(names),
            "params": {k: draw(kinds[t]) for k, t in params.items()},
            "metrics": {k: draw(kinds[t]) for k, t in metrics.items()},
            "tags": {"team": draw(texts)},
            "status": "finished",
        }
        for _ in range(n)
    ]


corpora = st.lists(mixed_runs, min_size=1, max_size=6) | uniform_corpora()


def record_runs(root: Path, corpus: list[dict[str, Any]]) -> None:
    repo = find_repo(root)
    head = git(root, "rev-parse", "HEAD").strip()
    tree = git(root, "rev-parse", "HEAD^{tree}").strip()
    for i, spec in enumerate(corpus):
        start = 1_700_000_000 + 4000 * i
        meta = {
            "start_time": f"2023-11-14T{10 + i:02d}:13:20.000Z",
            "end_time": f"2023-11-14T{10 + i:02d}:14:50.000Z",
            "duration": [0.5, 61.0, 7300.0, None][i % 4],
            "baseline": head,
            "branch": "main" if i % 2 else None,
        }
        record = RunRecord(
            id=fmt.new_run_id(start),
            name=spec["name"],
            status=spec.get("status", "finished"),
            meta=meta,
            params=spec.get("params", {}),
            metrics=spec.get("metrics", {}),
            tags=spec.get("tags", {}),
        )
        commit_record(repo, record, tree, head, start, start + 90)


FORMATS = ((), ("-f", "md"), ("-f", "csv"), ("-f", "tsv"), ("-f", "json"))


def same_output(*extra: str, widths: tuple[int, ...] = (60, 250)) -> None:
    runner = CliRunner()
    for fmt_args in FORMATS:
        for width in widths if fmt_args in ((), ("-f", "md")) else widths[:1]:  # laid out
            env = {"COLUMNS": str(width)}
            args = ["show", *extra, *fmt_args]
            streamed = runner.invoke(xp.cli.cli, [*args, "--all"], env=env)
            held = runner.invoke(xp.cli.cli, [*args, "-n", "1000"], env=env)
            assert streamed.exit_code == held.exit_code, (args, streamed.output, held.output)
            assert streamed.exit_code == 0 or "--columns" in held.stderr, held.output
            assert streamed.stdout == held.stdout, (args, width)
            assert streamed.stderr == held.stderr, (args, width)


def same_frame() -> None:
    """search_runs' typed columns against pandas' inference over the same rows: the value
    arrays parsed by ``json`` in the index, or left as text and parsed by orjson or, in an
    install without it, by ``json``."""
    repo = find_repo(Path.cwd())
    with open_index(repo) as index:
        table = index.table(Query())
        texts = [index.table(Query(), parse=False) for _ in range(3)]
    assert texts[0].text
    assert not texts[0].values
    fast = search._frame(table)
    quick = search._frame(texts[0])
    loads = arrays._orjson_loads
    arrays._orjson_loads = lambda: None  # type: ignore[assignment]
    try:
        plain_json = search._frame(texts[1])
    finally:
        arrays._orjson_loads = loads
    plain = search._uniform_values
    search._uniform_values = lambda _table: None  # type: ignore[assignment]
    try:
        reference = search._frame(table)
        reference_from_text = search._frame(texts[2])
    finally:
        search._uniform_values = plain
    for got in (fast, quick, plain_json, reference_from_text):
        pd.testing.assert_frame_equal(got, reference, check_dtype=True, check_exact=True)
        assert list(got.columns) == list(reference.columns)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus=corpora, size=st.sampled_from([1, 2, 2000]))
def test_streamed_show_and_search_runs_match_the_reference(
    corpus: list[dict[str, Any]], size: int
) -> None:
    batch = store.STREAM_BATCH
    store.STREAM_BATCH = size  # batches of one and two runs cross every boundary
    try:
        with scratch_project() as root:
            record_runs(root, corpus)
            same_output()
            same_output("--only-changed", "-p", "17", widths=(80,))
            same_output("-c", "lr*,metrics.*,tags.*,experiment,user,commit,end_time", widths=(80,))
            same_frame()
    finally:
        store.STREAM_BATCH = batch


def test_a_damaged_row_is_shown_from_its_record_and_rebuilt(repo: Path) -> None:
    """A row whose checksum fails (its value array not even JSON) is shown as its record
    says in a streamed listing, and rebuilt once the listing is over."""
    record_runs(repo, [{"name": "a", "params": {}, "metrics": {"acc": 0.5}, "tags": {}}] * 2)
    runner = CliRunner()
    before = runner.invoke(xp.cli.cli, ["show", "--all", "-f", "csv"]).stdout
    db = sqlite3.connect(repo / ".git" / "xp" / INDEX_FILE)
    with db:
        # values no id, time or duration can spell (an id may end in "b")
        db.execute("UPDATE runs SET doc = '[0.987654', name = 'damaged' WHERE rid = 1")
    db.close()
    for args in (["-f", "csv"], ["-f", "json"], []):
        store_rows = runner.invoke(xp.cli.cli, ["show", "--all", *args])
        assert store_rows.exit_code == 0, store_rows.output
        assert "damaged" not in store_rows.stdout
        assert "0.98" not in store_rows.stdout
    assert runner.invoke(xp.cli.cli, ["show", "--all", "-f", "csv"]).stdout == before
    db = sqlite3.connect(repo / ".git" / "xp" / INDEX_FILE)
    assert db.execute("SELECT name FROM runs WHERE rid = 1").fetchone() == ("a",)
    db.close()


@pytest.mark.parametrize("size", [1, 3])
def test_batches_give_the_columns_stream_gives(repo: Path, size: int) -> None:
    """``Index.batches`` against ``Index.stream``: every field and value, ABSENT where a
    run lacks a key, over runs of different key sets."""
    record_runs(
        repo,
        [
            {"name": "a", "params": {"lr": 0.1}, "metrics": {"acc": 0.5}, "tags": {}},
            {"name": "b", "params": {"opt": "x"}, "metrics": {}, "tags": {"team": "t"}},
            {"name": "c", "params": {"lr": 2, "opt": None}, "metrics": {"acc": math.nan}},
            {"name": "d", "params": {}, "metrics": {}, "tags": {}},
        ],
    )
    fields = ["run_id", "name", "start", "end", "duration", "baseline", "branch", "commit"]
    with open_index(find_repo(repo)) as index:
        keys = index.keys()
        rows = list(index.stream(Query()))
        got: dict[str, list[Any]] = {f: [] for f in fields + keys}
        maps: list[dict[str, Any]] = []
        for batch in index.batches(Query(), fields, keys, size=size):
            assert batch.size <= size
            for f in fields:
                got[f] += batch.attributes[f]
            for k in keys:
                got[k] += batch.values[k]
        for batch in index.batches(Query(), ["run_id"], None, size=size):
            maps += batch.maps or []
    for f in fields:
        assert got[f] == [getattr(r, f) for r in rows], f
    for k in keys:
        assert [repr(v) for v in got[k]] == [repr(r.values.get(k, store.ABSENT)) for r in rows]
    assert [repr(m) for m in maps] == [repr(r.values) for r in rows]


def test_wide_and_escaped_characters_are_measured_as_printed(repo: Path) -> None:
    """SQL's length is not the width of 学习率, 🚀 or an escaped control character: a
    streamed table measures such columns as the held one does (names, tags, text params)."""
    record_runs(
        repo,
        [
            {"name": "🚀 go", "params": {"opt": "学习率", "n": 1}, "tags": {"team": "é🚀"}},
            {"name": "esc\x1b]0;x\x07", "params": {"opt": "x", "n": 2}, "tags": {"team": "a"}},
            {"name": "学习", "params": {"opt": "bidi\u202e", "n": 3}, "metrics": {"acc": 0.5}},
        ],
    )
    same_output(widths=(40, 60, 80, 250))


@pytest.mark.parametrize("big", [10**30, -(10**20), 2**63, 2**64 + 1])
def test_search_runs_keeps_integers_beyond_64_bits(repo: Path, big: int) -> None:
    """orjson reads an integer beyond 64 bits as a float: such a column is parsed again by
    ``json`` and keeps the exact integers, as pandas' inference over the rows has it."""
    record_runs(
        repo,
        [
            {"name": "a", "params": {"big": big, "x": 1e300}, "metrics": {"acc": 0.5}},
            {"name": "b", "params": {"big": big + 1, "x": 2.5}, "metrics": {"acc": 0.25}},
        ],
    )
    df = xp.search_runs(path=repo)
    assert list(df["params.big"]) == [big + 1, big]
    assert all(type(v) is int for v in df["params.big"])
    assert list(df["params.x"]) == [2.5, 1e300]
    assert df["params.x"].dtype == "float64"
    same_frame()  # the fixture runs in the repository
