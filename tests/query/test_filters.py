"""The filter language: grammar, errors that point at the token, and the value semantics
(missing values, NaN, infinities, huge numbers, params compared as numbers or text)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import xp
from xp.gitstore.repo import find_repo
from xp.query.filters import QueryError, parse_filter, parse_sort, tokenize
from xp.query.search import select_runs

KNOWN = ["params.lr", "params.model", "metrics.acc", "metrics.loss", "tags.team", "params.acc2"]


def names(where: str | None = None, sort: tuple[str, ...] = ()) -> list[str]:
    return [r.name for r in select_runs(find_repo(), where=where, sort=sort, limit=None).rows]


@pytest.fixture
def runs(repo: Path) -> Path:
    def run(name: str, params: dict[str, Any], metrics: dict[str, float], **tags: str) -> None:
        with xp.start_run(name=name):
            xp.log_params(params)
            xp.log_metrics(metrics)
            xp.set_tags(tags)

    run("a", {"lr": 0.1, "model": "cnn", "flag": True}, {"acc": 0.9, "loss": 0.5}, team="vision")
    run("b", {"lr": 0.01, "model": "mlp"}, {"acc": 0.7, "loss": math.nan}, team="nlp")
    run("c", {"lr": "0.001", "model": "cnn"}, {"acc": math.inf, "loss": 1e308})
    run("d", {"lr": 10**30, "model": "CNN-big"}, {"loss": -math.inf})
    return repo


def test_comparisons_and_boolean_logic(runs: Path) -> None:
    assert names("metrics.acc > 0.8") == ["c", "a"]
    assert names("metrics.acc >= 0.7 and params.model = 'cnn'") == ["c", "a"]
    assert names("metrics.acc < 0.8 or tags.team = 'vision'") == ["b", "a"]
    assert names("not (metrics.acc > 0.8)") == ["d", "b"]  # missing acc: the inner is false
    assert names("params.model in ('mlp', 'CNN-big')") == ["d", "b"]
    assert names("params.model not in ('mlp')") == ["d", "c", "a"]
    assert names("params.model like 'cnn%'") == ["c", "a"]  # LIKE is case-sensitive
    assert names("params.model ilike 'cnn%'") == ["d", "c", "a"]
    assert names("params.model not like 'c%'") == ["d", "b"]
    assert names("tags.team is null") == ["d", "c"]
    assert names("tags.team is not null") == ["b", "a"]
    assert names("name = 'a' OR name == 'b'") == ["b", "a"]  # keywords in any case, ==
    assert names("status = 'finished' and experiment = 'default'") == ["d", "c", "b", "a"]
    assert names("created > '1 day ago' and created < '2999-01-01'") == ["d", "c", "b", "a"]
    assert names("duration >= 0") == ["d", "c", "b", "a"]


def test_missing_values_are_false_even_for_not_equal(runs: Path) -> None:
    assert names("tags.team != 'nlp'") == ["a"]  # c and d have no team tag
    assert names("metrics.acc != 0.9") == ["c", "b"]


def test_nan_and_infinity(runs: Path) -> None:
    assert names("metrics.loss = nan") == ["b"]
    assert names("metrics.loss != nan") == ["d", "c", "a"]
    assert names("metrics.loss > 0") == ["c", "a"]  # NaN is never greater, smaller or equal
    assert names("metrics.loss < 0") == ["d"]
    assert names("metrics.loss <= 0.5") == ["d", "a"]
    assert names("metrics.acc = inf") == ["c"]
    assert names("metrics.loss = -inf") == ["d"]
    assert names("metrics.loss > 1e300") == ["c"]
    with pytest.raises(QueryError, match="NaN is not ordered"):
        names("metrics.loss > nan")


def test_params_compare_as_numbers_or_as_text(runs: Path) -> None:
    assert names("params.lr < 0.05") == ["b"]  # '0.001' is text, 10**30 is huge
    assert names("params.lr > 1e29") == ["d"]
    assert names("params.lr = 0.001") == ["c"]  # a number matches the text '0.001'
    assert names("params.lr = '0.1'") == ["a"]  # text matches what xp show prints
    assert names("params.flag = true") == ["a"]
    assert names("params.flag = 'true'") == ["a"]
    assert names("lr = 0.01") == ["b"]  # a bare key that only one kind has


def test_sort_missing_and_nan_last_both_ways(runs: Path) -> None:
    assert names(sort=("metrics.loss",)) == ["d", "a", "c", "b"]
    assert names(sort=("-metrics.loss",)) == ["c", "a", "d", "b"]
    assert names(sort=("metrics.acc desc",)) == ["c", "a", "b", "d"]
    assert names(sort=("metrics.acc:asc",)) == ["b", "a", "c", "d"]
    assert names(sort=("name",)) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("metrics.acc >> 1", "position 14"),
        ("metrics.acc > ", "got the end"),
        ("(metrics.acc > 1", "expected ')'"),
        ("metrics.acc > 1 metrics.loss", "expected 'and', 'or' or the end"),
        ("metrics.acc like 'x'", "holds numbers"),
        ("tags.team > 3", "holds text"),
        ("metrics.acc > 'high'", "compare it with a number"),
        ("params.lr in 1", "'(' starting a list"),
        ("params.lr is 3", "expected 'null'"),
        ("metrics.acc ~ 1", "unexpected character '~'"),
        ("created > 'yesterday-ish'", "cannot read 'yesterday-ish' as a time"),
        ("status = 'finshed'", "did you mean 'finished'"),
        ("", "the filter is empty"),
        ("params.", "needs a key after the dot"),
    ],
)
def test_errors_point_at_the_bad_token(source: str, where: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_filter(source, KNOWN)
    msg = str(err.value)
    assert "\n" not in msg
    assert where in msg, msg


def test_unknown_column_suggests_the_nearest() -> None:
    with pytest.raises(QueryError, match=r"no run has a column 'metrics.accc'; did you mean"):
        parse_filter("metrics.accc > 1", KNOWN)
    with pytest.raises(QueryError, match=r"did you mean metrics\.loss"):
        parse_filter("los > 1", KNOWN)
    with pytest.raises(QueryError, match="'acc' is ambiguous"):
        parse_filter("acc > 1", [*KNOWN, "params.acc"])
    with pytest.raises(QueryError, match="--sort/order_by"):
        parse_sort("metrics.nope", KNOWN)


def test_mlflow_spellings_and_quoting() -> None:
    assert parse_filter("attributes.status = 'failed'", KNOWN)
    assert parse_filter("attribute.run_name = 'x' and run_id in ('a', 'b')", KNOWN)
    assert parse_filter('metric.acc > 1 and param.lr = "0.1"', KNOWN)
    node = parse_filter("tags.`team` = 'it''s'", KNOWN)
    assert node.value == "it's"  # type: ignore[union-attr]
    kinds = [t.kind for t in tokenize("params.`a b` = -1.5e-3")]
    assert kinds == ["ident", "op", "num", "end"]


def test_search_runs_dataframe(runs: Path) -> None:
    df = xp.search_runs("metrics.acc > 0.5", order_by=["metrics.acc DESC"])
    assert list(df.columns[:7]) == [
        "run_id",
        "experiment",
        "status",
        "start_time",
        "end_time",
        "run_name",
        "commit",
    ]
    assert df["run_name"].tolist() == ["c", "a", "b"]
    assert math.isinf(df["metrics.acc"].iloc[0])
    assert math.isnan(df["metrics.loss"].iloc[2])
    assert df["tags.team"].tolist() == [None, "vision", "nlp"]
    assert str(df["start_time"].dtype).startswith("datetime64")
    assert len(xp.search_runs(max_results=2)) == 2
    assert xp.search_runs("name = 'zzz'").empty
    with pytest.raises(xp.XPError, match="max_results"):
        xp.search_runs(max_results=-1)


def test_search_runs_in_a_repo_without_runs(repo: Path) -> None:
    df = xp.search_runs()
    assert df.empty
    assert "run_id" in df.columns


@pytest.mark.parametrize(
    ("where", "position", "token", "suggestions"),
    [
        ("metrics.accc > 0.9", 0, "metrics.accc", ("metrics.acc", "metrics.loss")),
        ("params.lr > 0.1 and metrics.acc >> 1", 33, ">", ()),
        ("status = 'finshed'", 9, "'finshed'", ("'finished'",)),
        ("tags.team < 5", 12, "5", ()),
        ("params.lr = 0.1 and ", 20, None, ()),
        ("name = 'a' § 1", 11, "§", ()),
        ("ä = 1", 0, "ä", ()),
    ],
)
def test_errors_say_where_and_what_could_replace_it(
    runs: Path, where: str, position: int, token: str | None, suggestions: tuple[str, ...]
) -> None:
    """A search box marks the spot (0-based code points) and offers the suggestions."""
    with pytest.raises(QueryError) as caught:
        names(where)
    err = caught.value
    assert (err.position, err.token, err.suggestions) == (position, token, suggestions)
