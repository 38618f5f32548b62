"""The query index answers exactly what the refs say, whatever git did to them since."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import xp
import xp.cli
from tests.helpers import git, spawned
from xp.gitstore.refs import list_refs
from xp.gitstore.repo import find_repo
from xp.query.index import INDEX_FILE, Index, open_index, store
from xp.query.index.pack import wait_for_packer
from xp.query.search import search_runs, select_runs


def make_run(name: str, acc: float = 0.5) -> str:
    with xp.start_run(name=name) as run:
        xp.log_metric("acc", acc)
        xp.log_param("p", name)
    return str(run.id)


def shown() -> dict[str, str]:
    """run id -> name, as xp show would list them."""
    return {r.run_id: r.name for r in select_runs(find_repo(), limit=None).rows}


def from_refs(repo: Path) -> set[str]:
    out = git(repo, "for-each-ref", "--format=%(refname)", "refs/xp/")
    return {line.rsplit("/", 1)[1] for line in out.split()}


def rewrite_record(repo: Path, ref: str, name: str, content: bytes) -> str:
    """Point ``ref`` at a copy of its commit whose record file ``name`` holds ``content``."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "tmp-index")}

    def run(*args: str, data: bytes | None = None) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=repo, env=env, input=data, capture_output=True, check=True
        )
        return proc.stdout.decode().strip()

    run("read-tree", ref)
    blob = run("hash-object", "-w", "--stdin", data=content)
    run("update-index", "--cacheinfo", f"100644,{blob},.xp/run/{name}")
    tree = run("write-tree")
    parent = run("rev-parse", f"{ref}^")
    commit = run("commit-tree", tree, "-p", parent, "-m", "xp: edited by hand")
    run("update-ref", ref, commit)
    os.unlink(env["GIT_INDEX_FILE"])
    return commit


def test_incremental_after_new_deleted_packed_and_gc(repo: Path) -> None:
    ids = [make_run(f"r{i}") for i in range(4)]
    assert set(shown()) == set(ids)
    git(repo, "pack-refs", "--all")
    assert set(shown()) == set(ids)
    git(repo, "update-ref", "-d", f"refs/xp/runs/{ids[0]}")  # what xp rm does
    assert set(shown()) == set(ids[1:]) == from_refs(repo)
    new = make_run("r4")
    git(repo, "gc", "-q", "--prune=now")
    assert set(shown()) == {*ids[1:], new} == from_refs(repo)
    git(repo, "update-ref", "-d", f"refs/xp/runs/{ids[1]}")  # deleted while packed
    assert set(shown()) == {*ids[2:], new}


def test_rewritten_ref_shows_the_new_commit(repo: Path) -> None:
    run_id = make_run("before")
    assert shown() == {run_id: "before"}
    rewrite_record(
        repo,
        f"refs/xp/runs/{run_id}",
        "meta.yaml",
        git(repo, "show", f"refs/xp/runs/{run_id}:.xp/run/meta.yaml")
        .replace("name: before", "name: after")
        .encode(),
    )
    assert shown() == {run_id: "after"}


def test_fetched_runs_appear_and_local_wins(repo: Path, tmp_path: Path) -> None:
    mine = make_run("mine")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    os.chdir(other)
    theirs = make_run("theirs")
    os.chdir(repo)
    git(repo, "fetch", "-q", str(other), "+refs/xp/runs/*:refs/xp/remotes/other/runs/*")
    assert shown() == {mine: "mine", theirs: "theirs"}
    row = {r.run_id: r for r in select_runs(find_repo(), limit=None).rows}
    assert row[theirs].ref == f"refs/xp/remotes/other/runs/{theirs}"
    assert row[mine].ref == f"refs/xp/runs/{mine}"
    git(repo, "update-ref", "-d", f"refs/xp/remotes/other/runs/{theirs}")  # fetch --prune
    assert shown() == {mine: "mine"}


def test_invalid_yaml_is_an_error_row_not_a_crash(repo: Path) -> None:
    good = make_run("good")
    bad = make_run("bad")
    rewrite_record(repo, f"refs/xp/runs/{bad}", "metrics.yaml", b"acc: [unclosed\n")
    rows = {r.run_id: r for r in select_runs(find_repo(), limit=None).rows}
    assert rows[good].error is None
    assert rows[bad].status == "invalid"
    assert "invalid YAML" in (rows[bad].error or "")
    assert [r.run_id for r in select_runs(find_repo(), status=["invalid"]).rows] == [bad]
    assert [r.run_id for r in select_runs(find_repo(), where="metrics.acc > 0").rows] == [good]


def test_ref_to_a_commit_without_record_is_an_error_row(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-ref", "refs/xp/runs/0000000000000a", head)
    (row,) = select_runs(find_repo()).rows
    assert row.status == "invalid"
    assert "no run record" in (row.error or "")


def test_corrupt_or_foreign_index_file_is_rebuilt(repo: Path) -> None:
    run_id = make_run("x")
    shown()
    path = find_repo().xp_dir / INDEX_FILE
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    assert shown() == {run_id: "x"}
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema'")
    conn.commit()
    conn.close()
    assert shown() == {run_id: "x"}


def test_rebuild_gives_the_same_answer(repo: Path) -> None:
    ids = {make_run(f"r{i}") for i in range(3)}
    with Index(find_repo()) as index:
        assert index.sync() == 3
        assert index.sync() == 0  # nothing changed: nothing to do
        assert index.rebuild() == 3
    rows = select_runs(find_repo(), rebuild=True, limit=None).rows
    assert {r.run_id for r in rows} == ids


def test_read_only_repo_still_answers(repo: Path) -> None:
    run_id = make_run("ro")
    xp_dir = find_repo().xp_dir
    (xp_dir / INDEX_FILE).unlink(missing_ok=True)
    # A folder where the index file should be: it cannot be opened, even by root (for whom
    # file permissions would not stop anything), as on a read-only file system.
    (xp_dir / INDEX_FILE).mkdir()
    try:
        assert shown() == {run_id: "ro"}
    finally:
        (xp_dir / INDEX_FILE).rmdir()


_WORKER = """
import sys, xp
from xp.query.search import search_runs, select_runs
from xp.gitstore.repo import find_repo
for i in range(int(sys.argv[1])):
    if sys.argv[2] == 'write':
        with xp.start_run(name=f'w{i}'):
            xp.log_metric('acc', i)
    else:
        select_runs(find_repo(), limit=None)
"""


@pytest.mark.slow
def test_concurrent_readers_and_writers(repo: Path) -> None:
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(spawned([sys.executable, "-c", _WORKER, "15", role], cwd=repo))
            for role in ("write", "write", "read", "read")
        ]
        assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    assert set(shown()) == from_refs(repo)
    assert len(from_refs(repo)) == 30
    with open_index(find_repo()) as index:
        assert index.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_damaged_row_is_read_again_from_its_record(repo: Path) -> None:
    """Every row carries a CRC-32 of what it shows: a row changed under the index (a bad
    disk page, a hand edit) is rebuilt from git before it is shown (issue 10)."""
    run_id = make_run("a", acc=0.5)
    assert shown() == {run_id: "a"}
    db = sqlite3.connect(repo / ".git" / "xp" / INDEX_FILE)
    with db:
        # (schema 3: what a row shows is ``doc``, its values' JSON array)
        db.execute("UPDATE runs SET doc = replace(doc, '0.5', '0.9'), name = 'b'")
    db.close()
    (row,) = select_runs(find_repo(), limit=None).rows
    assert (row.name, row.values["metrics.acc"]) == ("a", 0.5)
    db = sqlite3.connect(repo / ".git" / "xp" / INDEX_FILE)
    with db:
        db.execute("UPDATE runs SET doc = replace(doc, '0.5', '0.9'), name = 'b'")
    db.close()
    frame = search_runs(find_repo())  # read column by column: its own check of each row
    assert (frame["run_name"][0], frame["metrics.acc"][0]) == ("a", 0.5)


def test_show_verify_rebuilds_rows_that_disagree_with_their_records(repo: Path) -> None:
    """A row whose checksum matches but whose values do not (an index written by a buggy
    xp): `xp show --verify` compares the rows shown with their records and rebuilds them."""
    from xp.query.index.store import _checksum

    run_id = make_run("a", acc=0.5)
    make_run("b", acc=0.7)
    shown()
    db = sqlite3.connect(repo / ".git" / "xp" / INDEX_FILE)
    commit, name, status, start, data, error = db.execute(
        "SELECT commit_sha, name, status, start, doc, error FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    data = data.replace("0.5", "0.9")
    with db:
        db.execute(
            "UPDATE runs SET doc = ?, crc = ? WHERE commit_sha = ?",
            (data, _checksum(commit, name, status, start, data, error), commit),
        )
    db.close()
    wrong = {r.run_id: r.values["metrics.acc"] for r in select_runs(find_repo()).rows}
    assert wrong[run_id] == 0.9  # the cache believes itself...
    frame = search_runs(find_repo())
    assert dict(zip(frame["run_id"], frame["metrics.acc"], strict=True))[run_id] == 0.9
    result = subprocess.run(
        [sys.executable, "-m", "xp", "show", "--verify", "-c", "acc", "--format", "csv"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "verified 2 rows against their records; 1 disagreed and were rebuilt" in result.stderr
    assert result.stdout.splitlines()[2].startswith(run_id)
    assert result.stdout.splitlines()[2].endswith(",0.5")
    again = subprocess.run(
        [sys.executable, "-m", "xp", "show", "--verify"], cwd=repo, capture_output=True, text=True
    )
    assert "disagreed" not in again.stderr


def cli_output(*args: str) -> str:
    result = CliRunner().invoke(xp.cli.cli, list(args), env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    return result.stdout


VIEWS = [("show",), ("show", "-a"), ("show", "-a", "-f", "json"), ("show", "-f", "csv")]


def all_views() -> list[str]:
    return [cli_output(*args) for args in VIEWS]


def unpack(repo: Path) -> None:
    """Every run ref loose again, as `git fetch` leaves them (packed-refs keeps the rest)."""
    common = repo / ".git"
    for ref, sha in list_refs(common, "refs/xp/").items():
        path = common / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sha + "\n")
    lines = (common / "packed-refs").read_text().splitlines(keepends=True)
    kept, skip = [], False
    for line in lines:
        if line.startswith("^"):
            if not skip:
                kept.append(line)
            continue
        skip = " refs/xp/" in line
        if not skip:
            kept.append(line)
    (common / "packed-refs").write_text("".join(kept))


def test_loose_packed_and_mixed_refs_show_the_same(repo: Path, tmp_path: Path) -> None:
    ids = [make_run(f"r{i}", acc=i / 10) for i in range(6)]
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    os.chdir(other)
    theirs = make_run("theirs")
    os.chdir(repo)
    git(repo, "fetch", "-q", str(other), "+refs/xp/runs/*:refs/xp/remotes/other/runs/*")
    loose = all_views()
    assert all(run_id in loose[1] for run_id in [*ids, theirs])
    git(repo, "pack-refs", "--all")
    assert not list((repo / ".git" / "refs" / "xp").rglob("*[0-9a-z]"))  # all packed
    assert all_views() == loose
    (repo / ".git" / "xp" / INDEX_FILE).unlink()  # cold, from packed refs
    assert all_views() == loose
    unpack(repo)
    first = git(repo, "rev-parse", f"refs/xp/runs/{ids[0]}").strip()
    git(repo, "update-ref", "-d", f"refs/xp/runs/{ids[0]}")  # a deletion while loose
    git(repo, "pack-refs", "--all")
    git(repo, "update-ref", f"refs/xp/runs/{ids[0]}", first)
    mixed = all_views()  # packed, plus one loose ref written back
    assert mixed == loose
    unpack(repo)
    assert all_views() == loose


def test_many_loose_run_refs_are_packed(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xp.query.index import store

    monkeypatch.setattr(store, "PACK_AT", 3)
    ids = [make_run(f"r{i}") for i in range(4)]
    runs_dir = repo / ".git" / "refs" / "xp" / "runs"
    git(repo, "config", "xp.packRefs", "false")
    assert set(shown()) == set(ids)
    assert len(list(runs_dir.iterdir())) == 4  # turned off: left loose
    git(repo, "config", "--unset", "xp.packRefs")
    make_run("r4")
    before = shown()  # this look starts the packer; it runs detached
    wait_for_packer(repo / ".git" / "xp")
    assert not runs_dir.exists() or not list(runs_dir.iterdir())  # packed
    assert set(from_refs(repo)) == set(before)
    assert shown() == before  # and the index followed without reading anything again
    with Index(find_repo()) as index:
        assert index.sync() == 0


def test_a_run_made_or_deleted_after_a_look_is_seen_at_the_next(repo: Path) -> None:
    first = make_run("first")
    assert set(shown()) == {first}
    second = make_run("second")  # the folder's stamp moved
    assert set(shown()) == {first, second}
    git(repo, "update-ref", "-d", f"refs/xp/runs/{first}")
    assert set(shown()) == {second}
    git(repo, "pack-refs", "--all")
    assert set(shown()) == {second}
    third = make_run("third")  # loose beside packed
    assert set(shown()) == {second, third} == from_refs(repo)


def test_a_big_build_reads_most_records_in_a_second_process(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xp.query.index import store

    ids = {make_run(f"r{i}", acc=i / 10) for i in range(8)}
    one_process = all_views()
    (find_repo().xp_dir / INDEX_FILE).unlink()
    monkeypatch.setattr(store, "PARALLEL_AT", 4)  # 8 records: 2 here, 6 in the helper
    assert all_views() == one_process
    with Index(find_repo()) as index:
        assert index.count() == len(ids)
        assert index.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = index.conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        assert rows == len(ids)  # each commit stored once


# The real helper, two rows a frame, its output cut: into a frame, or garbage instead
_CUT_HELPER = r"""
import io, sys
from xp.query.index import build, rows
rows._FRAME_ROWS = 2
out = io.BytesIO()
real, sys.stdout = sys.stdout, io.TextIOWrapper(out)
build.main(sys.argv[1:-1])
data = out.getvalue()
cut = {"nothing": b"", "half": data[: len(data) // 2], "all": data}.get(sys.argv[-1])
real.buffer.write(b"\x05\0\0\0garbage" if cut is None else cut)
"""


@pytest.mark.parametrize("cut", ["garbage", "nothing", "half", "all"])
def test_rows_a_helper_did_not_hand_over_are_read_here(
    repo: Path, monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    """A helper that dies mid-way (a frame cut short, garbage, nothing): its runs are read by
    the first process, and the index is what one process builds."""
    from xp.query.index import store

    ids = {make_run(f"r{i}", acc=i / 10) for i in range(12)}
    one_process = all_views()
    (find_repo().xp_dir / INDEX_FILE).unlink()
    monkeypatch.setattr(store, "PARALLEL_AT", 4)

    def cut_short(self: store.Index, *mode: str) -> subprocess.Popen[bytes]:
        assert mode == ("--rows",)
        where = [self.path, self.repo.worktree, self.repo.git_dir, self.repo.common_dir]
        argv = [sys.executable, "-c", _CUT_HELPER, *mode, *map(str, where), cut]
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    monkeypatch.setattr(store.Index, "_helper", cut_short)
    read_here: list[int] = []
    real_iter_rows = store.iter_rows

    def counted(repo: Any, wanted: dict[str, str]) -> Any:
        read_here.append(len(wanted))
        return real_iter_rows(repo, wanted)

    monkeypatch.setattr(store, "iter_rows", counted)
    assert all_views() == one_process
    # this process read its quarter (3 of 12), then the runs the helper did not hand over
    left = {"all": [], "half": [5], "nothing": [9], "garbage": [9]}[cut]
    assert read_here == [3, *left]
    with Index(find_repo()) as index:
        assert index.count() == len(ids)
        assert index.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == len(ids)


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8))
def test_frames_read_back_whatever_pieces_the_pipe_gives(cuts: list[int]) -> None:
    import io

    from xp.query.index.rows import FrameReader, Stored, write_frames

    made = [
        Stored(
            f"{i:040x}",
            f"id{i}",
            "n\udcff\u00e9",
            "e",
            "finished",
            1.5,
            None,
            2.0,
            None,
            "main",
            None,
            None,
            ("params.lr", "metrics.acc"),
            "[0.1,0.9]",
            [("params.lr", 0.1, "0.1"), ("metrics.acc", 10**400, None)],
            None,
            "m",
            "python",
        )
        for i in range(250)
    ]
    out = io.BytesIO()
    assert write_frames(iter(made), out) == len(made)
    data = out.getvalue()
    reader = FrameReader()
    got: list[Stored] = []
    at = 0
    for cut in [*sorted({min(c * 7, len(data)) for c in cuts}), len(data)]:
        got += reader.feed(data[at:cut])
        at = cut
    assert got == made
    assert not reader.broken
    reader = FrameReader()
    assert reader.feed((9).to_bytes(4, "little") + b"notmarshal" + data) == []
    assert reader.broken
    assert reader.feed(data) == []


def test_rows_a_killed_sync_stored_are_dropped_by_the_next(repo: Path) -> None:
    # A sync stores records in batches before it applies the refs; killed in between, it
    # leaves rows no ref shows. The next sync that changes a ref drops them.
    make_run("kept")
    with Index(find_repo()) as index:
        index.sync()
    gone = make_run("gone")
    gone_commit = git(repo, "rev-parse", f"refs/xp/runs/{gone}")
    git(repo, "update-ref", "-d", f"refs/xp/runs/{gone}")
    from xp.query.index.rows import iter_rows

    with Index(find_repo()) as index:
        index.store(iter_rows(find_repo(), {gone_commit: gone}))  # stored, no ref applied
        assert index.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
        make_run("new")
        assert index.sync() == 1
        commits = {r[0] for r in index.conn.execute("SELECT commit_sha FROM runs")}
    assert gone_commit not in commits
    assert len(commits) == 2
    assert sorted(shown().values()) == ["kept", "new"]


def test_integers_beyond_the_float_range_are_held_and_compared(repo: Path) -> None:
    """A param of 10**400 is a value users pass (#10): the index holds it as the infinity of
    its sign for comparisons, and the run stays readable with the exact value."""
    with xp.start_run(name="huge", params={"big": 10**400, "small": -(10**400)}):
        pass
    with xp.start_run(name="plain", params={"big": 3, "small": 3}):
        pass
    found = select_runs(find_repo(), where="params.big > 5")
    assert [r.name for r in found.rows] == ["huge"]
    found = select_runs(find_repo(), where="params.small < -5")
    assert [r.name for r in found.rows] == ["huge"]
    assert xp.get_run("huge").params["big"] == 10**400
    assert {r.status for r in select_runs(find_repo()).rows} == {"finished"}


def test_bulk_reads_leave_garbage_collection_as_they_found_it(repo: Path) -> None:
    """Builds and table reads pause the cyclic collector and always turn it back on (also
    when the read fails); a collector the caller had turned off stays off."""
    import gc

    from xp.query.index import gc_paused

    ids = [make_run(f"g{i}") for i in range(3)]
    assert gc.isenabled()
    frame = xp.search_runs()
    assert set(frame["run_id"]) == set(ids)
    assert gc.isenabled()
    seen: list[bool] = []

    def failing_read() -> None:
        with gc_paused():
            seen.append(gc.isenabled())
            raise RuntimeError("read failed")

    with pytest.raises(RuntimeError):
        failing_read()
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_streamed_rows_are_ordinary_frozen_run_rows(repo: Path) -> None:
    """Rows the index streams (made without the dataclass's __init__) equal, print, replace
    and refuse assignment exactly as rows made the ordinary way."""
    import dataclasses

    from xp.query.index.rows import RunRow

    make_run("streamed")
    with open_index(find_repo(repo)) as index:
        rows, _ = index.select()
    assert rows
    for row in rows:
        assert vars(row).keys() == RunRow.__dataclass_fields__.keys()  # none left to a default
        ordinary = RunRow(**vars(row))
        assert row == ordinary
        assert repr(row) == repr(ordinary)
        assert dataclasses.replace(row, name="other").name == "other"
        with pytest.raises(dataclasses.FrozenInstanceError):
            row.name = "changed"  # type: ignore[misc]


def test_a_run_of_many_metrics_reads_the_key_table_once_per_sync(repo: Path) -> None:
    """`xp show` lays out each column and asks the index per column: a run of 10,000 metrics
    (or a crafted one) read the whole key table per column, 54 s for one `xp show --all`."""
    from xp.query.search import Query

    with xp.start_run():
        xp.log_metrics({f"m{i}": i for i in range(300)})
    statements: list[str] = []
    with open_index(find_repo()) as index:
        index.sync()
        index.conn.set_trace_callback(statements.append)
        for i in range(300):
            assert list(index.value_texts(Query(), f"metrics.m{i}")) == []
        index.conn.set_trace_callback(None)
    assert sum("FROM keys" in s for s in statements) <= 1, statements[:3]


_cells = st.one_of(
    st.none(), st.text(max_size=4), st.floats(), st.integers(), st.binary(max_size=2)
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.text(max_size=3),
            _cells,
            _cells,
            st.none() | st.floats(),
            st.text(max_size=5),
            st.none() | st.text(max_size=3),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_batch_finds_the_rows_checksum_finds(
    rows: list[tuple[Any, Any, Any, Any, Any, Any, bool]],
) -> None:
    """``store._damaged`` (a batch's checksums, by column) flags exactly the rows whose
    ``_checksum`` is not their crc: cells of any type a damaged page could hold, None, lone
    surrogates included."""
    crcs = [store._checksum(*row[:6]) ^ (1 if flip else 0) for *row, flip in rows]
    columns = [list(c) for c in zip(*(r[:6] for r in rows), strict=True)]
    commit, name, status, start, doc, error = columns
    got = store._damaged(commit, name, status, start, doc, error, crcs)
    assert got == [i for i, row in enumerate(rows) if row[6]]


def test_a_frame_of_big_runs_holds_fewer_of_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames are bounded by their values' text too: crafted records near the size limit
    do not make a frame of a hundred of them."""
    import io

    from xp.query.index import rows

    monkeypatch.setattr(rows, "_FRAME_TEXT", 1000)
    made = [
        rows.Stored(
            f"{i:040x}",
            f"id{i}",
            "n",
            "e",
            "finished",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            ("tags.t",),
            f'["{"x" * 400}"]',
            [("tags.t", None, "x" * 400)],
        )
        for i in range(10)
    ]
    out = io.BytesIO()
    rows.write_frames(iter(made), out)
    data, sizes, at = out.getvalue(), [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "little")
        sizes.append(len(rows.FrameReader().feed(data[at : at + 4 + size])))
        at += 4 + size
    assert sizes == [3, 3, 3, 1]
    assert rows.FrameReader().feed(data) == made
