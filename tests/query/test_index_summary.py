"""Catalog buckets' run summaries (``query/index/summary.py``): a fresh clone indexes fetched
runs from one blob per bucket instead of every record, with the same result; a hostile
summary never crashes, never puts a wrong commit's data on a run, and says so once.

Real bare remotes and clones (the ``team`` fixture); summaries are written by ``xp push``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xp
from tests.helpers import (
    Team,
    assert_summaries_whole,
    bucket_summaries,
    git,
    server_runs,
    xp_main,
)
from xp.format import bucket_of
from xp.gitstore import catalog
from xp.gitstore.repo import find_repo
from xp.query.index import store as index_store
from xp.query.index import summary
from xp.query.index.rows import iter_rows, stored
from xp.record.model import RunRecord

ODD_PARAMS = {
    "lr": 0.01,
    "depth": 6,
    "big": 10**30,
    "huge": 10**400,
    "inf": math.inf,
    "nan": math.nan,
    "text": "1.5",
    "flag": True,
    "none": None,
    "layers": [64, 32, "x"],
    "nested": {"a": 1},
    "uni": "naïve ✓",
}


def _log(root: Path, i: int, **params: object) -> str:
    old = os.getcwd()
    os.chdir(root)
    try:
        with xp.start_run(name=f"run-{i}", params={"i": i, **params}) as run:
            xp.log_metric("acc", i / 10)
            xp.log_metric("loss", math.inf if i == 1 else 1 / (i + 1))
            xp.log_metric("odd", math.nan if i == 2 else i)
            xp.set_tag("kind", "odd" if i % 2 else "even")
    finally:
        os.chdir(old)
    return str(run.id)


def _show_json(root: Path, *extra: str) -> tuple[list[dict[str, object]], str]:
    code, out, err = xp_main("show", "-a", "--format", "json", *extra, cwd=root)
    assert code == 0, err
    return json.loads(out), err


def test_a_fresh_clone_indexes_from_summaries_as_from_records(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [_log(team.a, i, **(ODD_PARAMS if i < 2 else {})) for i in range(5)]
    assert xp_main("push", cwd=team.a)[0] == 0
    assert_summaries_whole(team.bare)
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    # the first show reads no record: every fetched run comes from its bucket's summary
    monkeypatch.setattr(index_store, "iter_rows", _no_records)
    fast, err = _show_json(team.b)
    assert "warning" not in err
    monkeypatch.undo()
    assert {r["run_id"] for r in fast} == set(ids)
    wheres = ("params.big > 1e29", "metrics.loss > 1", "params.text = '1.5'", "tags.kind = 'odd'")
    sorts = ("params.inf", "metrics.odd", "params.layers")
    filtered = [_show_json(team.b, "--where", w)[0] for w in wheres]
    by_summary = [_show_json(team.b, "--sort", k)[0] for k in sorts]
    assert all(filtered)
    slow, _err = _show_json(team.b, "--rebuild")  # --rebuild reads every record
    assert fast == slow
    assert filtered == [_show_json(team.b, "--where", w)[0] for w in wheres]
    assert by_summary == [_show_json(team.b, "--sort", k)[0] for k in sorts]
    code, _out, err = xp_main("show", "-a", "--verify", cwd=team.b)
    assert code == 0, err
    assert "disagreed" not in err
    rows = iter_rows(find_repo(team.a), {c: i for i, c in server_runs(team.bare).items()})
    assert {r.commit: r for r in rows} == {
        c: item
        for _entries, d in bucket_summaries(team.bare).values()
        if d is not None
        for c, item in d.items.items()
    }


def _no_records(*_args: object, **_kw: object) -> object:
    raise AssertionError("a record was read")


finite = st.floats(allow_nan=False, allow_infinity=False)
value = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), finite), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    params=st.dictionaries(names, value, max_size=8),
    metrics=st.dictionaries(names, st.one_of(st.floats(), st.integers(), st.text(max_size=4))),
    tags=st.dictionaries(names, st.text(max_size=20), max_size=4),
    meta=st.fixed_dictionaries(
        {},
        optional={
            "start_time": st.one_of(st.text(max_size=30), st.just("2026-01-02T03:04:05Z")),
            "end_time": st.just("2026-01-02T03:05:05+00:00"),
            "duration": st.one_of(finite, st.text(max_size=5), st.none()),
            "baseline": st.text(max_size=10),
            "branch": st.text(max_size=10),
            "user": st.text(max_size=10),
            "parent": st.one_of(st.text(max_size=10), st.integers()),
            "message": st.text(max_size=40),
            "command": st.lists(st.text(max_size=10), max_size=3),
            "experiment": st.text(max_size=10),
        },
    ),
)
def test_a_summary_line_reads_back_as_the_row_the_record_makes(
    params: dict[str, object],
    metrics: dict[str, object],
    tags: dict[str, str],
    meta: dict[str, object],
) -> None:
    record = RunRecord("1m8g9wys2dzmgq", "n", "finished", meta, params, metrics, tags=tags)  # type: ignore[arg-type]
    commit = "ab" * 20
    item = stored(record.id, commit, record)
    decoded = summary.decode(summary.encode([item]), {record.id: commit})
    assert decoded.ignored == 0
    if decoded.items:  # left out only when it cannot be exact (a NaN number): records then
        assert decoded.items[commit] == item
    else:
        assert summary._has_nan(item)


def _bucket_with(
    team: Team, run: str, tip: str, blob_text: bytes, *more: tuple[str, str, str]
) -> str:
    blob = git(team.bare, "hash-object", "-w", "--stdin", input_text=blob_text.decode()).strip()
    lines = f"160000 commit {tip}\t{run}\n100644 blob {blob}\t{summary.SUMMARY_NAME}\n"
    lines += "".join(f"{m} {'commit' if m == '160000' else 'blob'} {s}\t{n}\n" for m, s, n in more)
    tree = git(team.bare, "mktree", "--missing", input_text=lines).strip()
    commit = git(team.bare, "commit-tree", tree, "-p", tip, "-m", "hostile").strip()
    git(team.bare, "update-ref", f"refs/xp/catalog/{bucket_of(run)}", commit)
    return commit


def test_hostile_summaries_never_crash_nor_lend_data_and_warn_once(team: Team) -> None:
    good = _log(team.a, 1)
    other = _log(team.a, 2)
    assert xp_main("push", cwd=team.a)[0] == 0
    tips = server_runs(team.bare)
    _entries, decoded = bucket_summaries(team.bare)[f"refs/xp/catalog/{bucket_of(good)}"]
    assert decoded is not None
    line = json.loads(summary._line(decoded.items[tips[good]]))
    lies = []
    for field, bad in [(2, 7), (5, "soon"), (14, "params.x"), (16, [True] * 9), (15, "[1,2")]:
        lie = list(line)
        lie[field] = bad
        lies.append(lie)
    wrong_commit = list(line)
    wrong_commit[1], wrong_commit[2] = tips[other], "not-mine"  # another commit's data
    extra = list(line)
    extra[0], extra[2] = "zzextra", "extra"  # a run the bucket does not list
    blob = summary.HEADER + b"".join(
        json.dumps(x).encode() + b"\n" for x in [*lies, wrong_commit, extra]
    )
    blob += b"\x00garbage{" + b"[" * 5000 + b"\n" + json.dumps(line).encode()[:40]  # truncated
    _bucket_with(team, good, tips[good], blob)
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    rows, err = _show_json(team.b)
    assert "Traceback" not in err
    warnings = [w for w in err.splitlines() if "run summary" in w]
    assert len(warnings) == 1, err
    assert "ignored" in warnings[0]
    shown = {r["run_id"]: r for r in rows}
    assert shown[good]["name"] == "run-1"  # read from its record
    assert shown[other]["name"] == "run-2"
    again, err = _show_json(team.b)  # said once: the next show has nothing new to read
    assert "run summary" not in err
    assert again == rows


def test_no_summary_or_another_version_means_records_silently(team: Team) -> None:
    good = _log(team.a, 3)
    assert xp_main("push", cwd=team.a)[0] == 0
    tip = server_runs(team.bare)[good]
    _bucket_with(team, good, tip, b"xp-run-summary 2\n[]\n")  # a newer writer's
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    rows, err = _show_json(team.b)
    assert "warning" not in err
    assert [r["name"] for r in rows] == ["run-3"]
    # a bucket an older writer left without a summary: records, and the next push adds one
    tree = git(team.bare, "mktree", "--missing", input_text=f"160000 commit {tip}\t{good}\n")
    commit = git(team.bare, "commit-tree", tree.strip(), "-p", tip, "-m", "old").strip()
    git(team.bare, "update-ref", f"refs/xp/catalog/{bucket_of(good)}", commit)
    with _resumed(team.a, good):  # the next push that touches the bucket adds one
        xp.log_metric("acc", 0.7)
    assert xp_main("push", cwd=team.a)[0] == 0
    assert_summaries_whole(team.bare)


def test_a_summary_too_big_is_not_read(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _log(team.a, 5)
    assert xp_main("push", cwd=team.a)[0] == 0
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    monkeypatch.setattr(catalog, "SUMMARY_MAX_BYTES", 10)
    rows, err = _show_json(team.b)
    assert [r["run_id"] for r in rows] == [run]
    assert "not read" in err


def test_summaries_past_the_budget_are_read_from_records(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All the summaries one update decodes share a byte budget (their rows are held in
    memory): a hostile catalog of many big blobs cannot cost gigabytes. Past it, the runs
    are read from their records, with the usual warning line, and shown the same."""
    ids = [_log(team.a, i) for i in range(6)]
    assert xp_main("push", cwd=team.a)[0] == 0
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    blobs = [git(team.b, "cat-file", "-s", f"{ref}:.xp-index") for ref in _tracking(team.b)]
    sizes = sorted(int(size) for size in blobs)
    assert len(sizes) >= 3
    monkeypatch.setattr(catalog, "SUMMARIES_BUDGET", sizes[0])  # room for one of them
    rows, err = _show_json(team.b)
    assert err.count("past the") == len(sizes) - 1, err
    assert sorted(r["run_id"] for r in rows) == sorted(ids)
    assert rows == _show_json(team.b, "--rebuild")[0]


def _tracking(root: Path) -> list[str]:
    out = git(root, "for-each-ref", "--format=%(refname)", "refs/xp/remotes/origin/catalog/")
    return out.split()


def test_publish_keeps_summaries_whole_through_move_remove_and_forget(team: Team) -> None:
    keep = _log(team.a, 6)
    drop = _log(team.a, 7)
    assert xp_main("push", cwd=team.a)[0] == 0
    assert_summaries_whole(team.bare)
    with _resumed(team.a, keep):
        xp.log_metric("acc", 0.99)
    assert xp_main("push", cwd=team.a)[0] == 0  # the run moved forward
    assert_summaries_whole(team.bare)
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    rows, _err = _show_json(team.b)
    assert {r["run_id"]: r["metrics"]["acc"] for r in rows}[keep] == 0.99
    code, _out, err = xp_main("rm", drop, "--remote", "origin", cwd=team.a)
    assert code == 0, err
    assert_summaries_whole(team.bare)
    # b forgets a fetched run locally: its bucket's summary loses that line too
    git(team.b, "fetch", "-q", "origin")
    code, _out, err = xp_main("rm", keep, cwd=team.b)
    assert code == 0, err
    repo = find_repo(team.b)
    for ref, read in catalog.read_buckets(repo, catalog.tracking_buckets(repo.common_dir)).items():
        if read.summary is None:
            continue
        data = catalog.read_summaries(repo, [read.summary])[read.summary]
        decoded = summary.decode(data, read.entries)
        assert decoded.ignored == 0, (ref, decoded.why)
        assert keep not in {i.run_id for i in decoded.items.values()}


class _resumed:
    """``xp.start_run(resume=ID)`` run from ``root``."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.root, self.run_id = root, run_id

    def __enter__(self) -> None:
        self.old = os.getcwd()
        os.chdir(self.root)
        self.run = xp.start_run(resume=self.run_id)
        self.run.__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            self.run.__exit__(*exc)
        finally:
            os.chdir(self.old)


def test_many_summarised_runs_are_read_half_in_a_second_process(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [_log(team.a, i) for i in range(8)]
    assert xp_main("push", cwd=team.a)[0] == 0
    buckets = sorted(bucket_summaries(team.bare))
    assert len(buckets) >= 2  # so each process has some
    # the helper's half holds a lie: its warning comes back through the first process
    last = next(i for i in ids if f"refs/xp/catalog/{bucket_of(i)}" == buckets[-1])
    _bucket_with(team, last, server_runs(team.bare)[last], summary.HEADER + b"[1]\n")
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    monkeypatch.setattr(index_store, "PARALLEL_AT", 2)
    both, err = _show_json(team.b)
    assert err.count("run summary") == 1, err
    assert {r["run_id"] for r in both} == set(server_runs(team.bare))
    rebuilt, _err = _show_json(team.b, "--rebuild")
    assert both == rebuilt
    with index_store.Index(find_repo(team.b)) as index:
        rows = index.conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        assert rows == len(both)  # each commit stored once


def _same_bucket(run_id: str, stem: str) -> str:
    n = 0
    while bucket_of(f"{stem}{n}") != bucket_of(run_id):
        n += 1
    return f"{stem}{n}"


def test_the_hook_carries_lines_over_and_leaves_its_runs_to_their_records(team: Team) -> None:
    from xp.sharing.catalog import publish

    repo = find_repo(team.a)
    first = _log(team.a, 1)
    tip = git(team.a, "rev-parse", f"refs/xp/runs/{first}").strip()
    publish(repo, remote="origin", runs={first: tip})
    hooked = _same_bucket(first, "hooked")  # another run id in the same bucket
    other = _log(team.a, 2)
    other_tip = git(team.a, "rev-parse", f"refs/xp/runs/{other}").strip()
    publish(repo, remote="origin", runs={hooked: other_tip}, summarize=False)
    ref = f"refs/xp/catalog/{bucket_of(first)}"
    entries, decoded = bucket_summaries(team.bare)[ref]
    assert set(entries) == {first, hooked}
    assert decoded is not None
    assert decoded.ignored == 0
    assert [i.run_id for i in decoded.items.values()] == [first]  # carried over, unparsed
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    rows, err = _show_json(team.b)
    assert "warning" not in err
    assert {r["run_id"] for r in rows} == {first, hooked}
    assert rows == _show_json(team.b, "--rebuild")[0]
    with _resumed(team.a, first):  # the run moves: its line goes, as it is stale
        xp.log_metric("acc", 0.3)
    moved = git(team.a, "rev-parse", f"refs/xp/runs/{first}").strip()
    publish(repo, remote="origin", runs={first: moved}, summarize=False)
    _entries, decoded = bucket_summaries(team.bare)[ref]
    assert decoded is not None
    assert decoded.ignored == 0
    assert decoded.items == {}
    # the next xp push that writes the bucket fills every line in
    third = _log(team.a, 3)
    third_tip = git(team.a, "rev-parse", f"refs/xp/runs/{third}").strip()
    publish(repo, remote="origin", runs={_same_bucket(first, "third"): third_tip})
    assert_summaries_whole(team.bare)


def _frame(root: Path) -> object:
    """search_runs' frame as JSON text (NaN compares equal there), columns in order."""
    old = os.getcwd()
    os.chdir(root)
    try:
        frame = xp.search_runs()
    finally:
        os.chdir(old)
    return [list(frame.columns), frame.to_json(orient="split", date_format="iso")]


def _answers(root: Path, *extra: str) -> list[object]:
    """What users see of every run: show (all, filtered, sorted) and search_runs."""
    shown = [_show_json(root, *extra)[0]]
    shown += [_show_json(root, "--where", w)[0] for w in ("params.big > 1e29", "tags.kind = 'odd'")]
    shown += [_show_json(root, "--sort", k)[0] for k in ("params.inf", "metrics.odd")]
    return [*shown, _frame(root)]


def _clone(team: Team, name: str) -> Path:
    root = team.bare.parent / name
    git(team.bare.parent, "clone", "-q", str(team.bare), name)
    assert xp_main("init", cwd=root)[0] == 0
    git(root, "fetch", "-q", "origin")
    return root


def test_the_bulk_first_sync_shows_what_incremental_syncs_and_records_show(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert xp_main("init", cwd=team.b)[0] == 0
    ids = [_log(team.a, i, **(ODD_PARAMS if i < 2 else {})) for i in range(3)]
    assert xp_main("push", cwd=team.a)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    assert {r["run_id"] for r in _show_json(team.b)[0]} == set(ids)  # b: run by run
    ids += [_log(team.a, i) for i in range(3, 7)]
    assert xp_main("push", cwd=team.a)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    incremental = _answers(team.b)
    # c: a fresh clone's first sync takes the bulk paths (a second process, one transaction,
    # every ref's best chosen at once), which tiny thresholds turn on here
    monkeypatch.setattr(index_store, "PARALLEL_AT", 2)
    monkeypatch.setattr(index_store, "_BATCH", 1)
    c = _clone(team, "c")
    monkeypatch.setattr(index_store, "iter_rows", _no_records)
    bulk = _answers(c)
    monkeypatch.undo()
    assert {r["run_id"] for r in _show_json(c)[0]} == set(ids)
    assert bulk == incremental
    assert _answers(c, "--rebuild") == incremental  # every record read again


@pytest.mark.parametrize("where", ["_insert", "_recompute"])
def test_an_interrupted_first_sync_leaves_an_index_that_works(
    team: Team, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    ids = [_log(team.a, i) for i in range(4)]
    assert xp_main("push", cwd=team.a)[0] == 0
    monkeypatch.setattr(index_store, "_BATCH", 1)
    c = _clone(team, "c")

    def boom(*_args: object, **_kw: object) -> object:
        raise KeyboardInterrupt  # Ctrl-C half-way through storing, or through the refs

    monkeypatch.setattr(index_store.Index, where, boom)
    with pytest.raises(KeyboardInterrupt):
        index_store.open_index(find_repo(c))
    monkeypatch.undo()
    rows, err = _show_json(c)
    assert "Traceback" not in err
    assert sorted(r["run_id"] for r in rows) == sorted(ids)
    assert rows == _show_json(c, "--rebuild")[0]


def test_a_second_process_that_dies_leaves_its_runs_to_their_records(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [_log(team.a, i) for i in range(6)]
    assert xp_main("push", cwd=team.a)[0] == 0
    monkeypatch.setattr(index_store, "PARALLEL_AT", 2)
    dead = [sys.executable, "-c", "import sys; sys.exit(3)"]

    def dies(self: index_store.Index, *mode: str, **_kw: object) -> subprocess.Popen[bytes]:
        out = subprocess.PIPE if mode else subprocess.DEVNULL  # as Index._helper
        return subprocess.Popen(dead, stdin=subprocess.PIPE, stdout=out)

    monkeypatch.setattr(index_store.Index, "_helper", dies)
    c = _clone(team, "c")
    rows, err = _show_json(c)
    monkeypatch.undo()
    assert "Traceback" not in err
    assert sorted(r["run_id"] for r in rows) == sorted(ids)
    assert rows == _show_json(c, "--rebuild")[0]


def test_a_few_new_runs_in_full_buckets_are_read_from_their_records(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary is decoded whole: for a colleague's few new runs in buckets that list many,
    their records are cheaper, and are what the index reads."""
    from xp.sharing.catalog import publish

    repo = find_repo(team.a)
    first = _log(team.a, 1)
    runs = {first: git(team.a, "rev-parse", f"refs/xp/runs/{first}").strip()}
    for k in (2, 3, 4):
        run_id = _log(team.a, k)
        tip = git(team.a, "rev-parse", f"refs/xp/runs/{run_id}").strip()
        runs[_same_bucket(first, f"r{k}-")] = tip
    publish(repo, remote="origin", runs=runs)
    assert xp_main("init", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin")
    assert len(_show_json(team.b)[0]) == 4
    late = _log(team.a, 5)
    late_id = _same_bucket(first, "late-")
    late_tip = git(team.a, "rev-parse", f"refs/xp/runs/{late}").strip()
    publish(repo, remote="origin", runs={late_id: late_tip})
    git(team.b, "fetch", "-q", "origin")
    monkeypatch.setattr(index_store, "_LINES_PER_RECORD", 2)  # 5 lines > 2 x 1 new run
    monkeypatch.setattr(summary, "decode", _no_records)
    rows, err = _show_json(team.b)
    assert "warning" not in err
    assert late_id in {r["run_id"] for r in rows}
    assert len(rows) == 5


def _named_in(bucket: str, stem: str) -> str:
    n = 0
    while bucket_of(f"{stem}{n}") != bucket:
        n += 1
    return f"{stem}{n}"


def test_a_fresh_clone_is_indexed_by_two_processes_each_writing_its_own_file(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh clone of a big catalog (tiny thresholds here): the second process indexes its
    buckets into a scratch file that is copied in. Same answers as the records give,
    annotations included; no scratch file left; a commit two run ids share (one in each
    half) stored once, both ids shown."""
    from xp.sharing.catalog import publish

    ids = [_log(team.a, i, **(ODD_PARAMS if i < 2 else {})) for i in range(8)]
    for run_id in ids:  # annotations: runs in both processes' buckets carry one
        assert xp_main("tag", run_id, "reviewed=yes", cwd=team.a)[0] == 0
    assert xp_main("push", cwd=team.a)[0] == 0
    tip = git(team.a, "rev-parse", f"refs/xp/runs/{ids[0]}").strip()
    # bucket 00 is always in this process's half, ff in the second's
    twins = [_named_in("00", "twin-a"), _named_in("ff", "twin-b")]
    publish(find_repo(team.a), remote="origin", runs=dict.fromkeys(twins, tip))
    monkeypatch.setattr(index_store, "PARALLEL_AT", 2)
    merged: list[bool] = []
    merge = index_store.Index._merge_part

    def spy(self: index_store.Index, *args: object) -> int:
        runs = merge(self, *args)  # type: ignore[arg-type]
        merged.append(runs > 0)
        return runs

    monkeypatch.setattr(index_store.Index, "_merge_part", spy)
    c = team.bare.parent / "c"
    git(team.bare.parent, "clone", "-q", str(team.bare), "c")
    assert xp_main("init", cwd=c)[0] == 0
    assert xp_main("pull", cwd=c)[0] == 0  # runs and annotations (a plain fetch: runs)
    for path in (c / ".git" / "xp").glob("index.sqlite*"):  # indexed again, notes known
        path.unlink()
    merged.clear()
    bulk = _answers(c)  # run 2's NaN has no summary line: its record is read
    assert merged == [True]
    assert list((c / ".git" / "xp").glob("*.part-*")) == []
    shown = {r["run_id"]: r for r in _show_json(c)[0]}
    assert set(shown) == {*ids, *twins}
    assert all(row["tags"]["reviewed"] == "yes" for row in shown.values())  # type: ignore[index]
    assert _answers(c, "--rebuild") == bulk  # every record read again, in one process
    with index_store.Index(find_repo(c)) as index:
        assert index.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == len(ids)
        assert index.conn.execute("SELECT count(*) FROM current").fetchone()[0] == len(shown)


def test_notes_that_move_while_the_second_process_works_leave_its_buckets_to_the_usual_way(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its rows were annotated as the notes were when it started: not copied, read again."""
    ids = [_log(team.a, i) for i in range(6)]
    assert xp_main("push", cwd=team.a)[0] == 0
    monkeypatch.setattr(index_store, "PARALLEL_AT", 2)
    merge = index_store.Index._merge_part

    def moved(self: index_store.Index, part: Path, _notes: str | None, *args: object) -> int:
        return merge(self, part, "a notes state that is not the stored one", *args)  # type: ignore[arg-type]

    monkeypatch.setattr(index_store.Index, "_merge_part", moved)
    c = _clone(team, "c")
    rows, err = _show_json(c)
    monkeypatch.undo()
    assert "Traceback" not in err
    assert sorted(r["run_id"] for r in rows) == sorted(ids)
    assert rows == _show_json(c, "--rebuild")[0]


@pytest.mark.parametrize("where", ["_store_buckets", "_merge_part"])
def test_a_fresh_catalog_build_interrupted_leaves_an_index_that_works(
    team: Team, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Ctrl-C while this process stores its share, or after it did and before the second's
    is copied in (its secondary indexes dropped): the next show lists every run, the same as
    records give, with the indexes back and no scratch file left."""
    ids = [_log(team.a, i) for i in range(6)]
    assert xp_main("push", cwd=team.a)[0] == 0
    monkeypatch.setattr(index_store, "PARALLEL_AT", 2)
    c = _clone(team, "c")

    def boom(*_args: object, **_kw: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(index_store.Index, where, boom)
    with pytest.raises(KeyboardInterrupt):
        index_store.open_index(find_repo(c))
    monkeypatch.undo()
    assert list((c / ".git" / "xp").glob("*.part-*")) == []
    rows, err = _show_json(c)
    assert "Traceback" not in err
    assert sorted(r["run_id"] for r in rows) == sorted(ids)
    assert rows == _show_json(c, "--rebuild")[0]
    with index_store.Index(find_repo(c)) as index:
        names = {r[0] for r in index.conn.execute("SELECT name FROM sqlite_master")}
        assert set(index_store._SECONDARY) <= names


def test_a_fresh_catalog_build_lets_a_local_ref_win_over_the_fetched_entry(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clone holding its own ref for a run a bucket lists (an index deleted, then built
    fresh): the local ref is the one shown, as the usual way and records say."""
    ids = [_log(team.a, i) for i in range(6)]
    assert xp_main("push", cwd=team.a)[0] == 0
    monkeypatch.setattr(index_store, "PARALLEL_AT", 2)
    c = _clone(team, "c")
    other = git(c, "rev-parse", f"refs/xp/remotes/origin/catalog/{bucket_of(ids[1])}:{ids[1]}")
    git(c, "update-ref", f"refs/xp/runs/{ids[0]}", other.strip())
    rows = {r["run_id"]: r for r in _show_json(c)[0]}
    assert rows[ids[0]]["ref"] == f"refs/xp/runs/{ids[0]}"
    assert rows[ids[0]]["commit"] == other.strip()
    assert sorted(rows) == sorted(ids)
    assert list(rows.values()) == _show_json(c, "--rebuild")[0]
