"""The index shows runs as annotated now: xp show, search_runs and --where see tags and
moves made after the fact, re-read only the runs whose notes changed, and survive notes
history that git has lost or that is not a notes history at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import xp
from tests.helpers import Team, git, log_run, xp_main
from xp.gitstore.repo import find_repo
from xp.query.index import store
from xp.query.search import select_runs


def make_runs(n: int) -> list[str]:
    ids = []
    for i in range(n):
        with xp.start_run(name=f"r{i}", tags={"stage": "dev"}) as run:
            xp.log_metric("acc", i / 10)
        ids.append(str(run.id))
    return ids


def where(condition: str, path: Path | None = None) -> set[str]:
    repo = find_repo(path) if path else find_repo()
    return {r.run_id for r in select_runs(repo, where=condition, limit=None).rows}


def test_show_search_and_where_see_the_annotations(repo: Path) -> None:
    ids = make_runs(3)
    assert where("tags.stage = 'dev'") == set(ids)  # index built before any annotation
    assert xp_main("tag", ids[0], "reviewed=yes", cwd=repo)[0] == 0
    assert xp_main("tag", ids[1], "--rm", "stage", cwd=repo)[0] == 0
    assert xp_main("move", ids[2], "-e", "baselines", cwd=repo)[0] == 0
    assert where("tags.reviewed = 'yes'") == {ids[0]}
    assert where("tags.stage = 'dev'") == {ids[0], ids[2]}
    assert where("experiment = 'baselines'") == {ids[2]}
    code, out, err = xp_main(
        "show", "--where", "tags.reviewed = 'yes'", "--format", "json", cwd=repo
    )
    assert code == 0, err
    [doc] = json.loads(out)
    assert doc["tags"] == {"reviewed": "yes", "stage": "dev"}
    code, out, err = xp_main("show", "-e", "baselines", "--format", "json", cwd=repo)
    assert code == 0, err
    assert [d["run_id"] for d in json.loads(out)] == [ids[2]]
    frame = xp.search_runs(filter_string="tags.reviewed = 'yes'")
    assert list(frame["run_id"]) == [ids[0]]
    assert frame["tags.reviewed"].tolist() == ["yes"]
    # a later edit wins; removing an annotation-made tag removes it
    assert xp_main("tag", ids[0], "reviewed=no", cwd=repo)[0] == 0
    assert where("tags.reviewed = 'yes'") == set()
    assert xp_main("tag", ids[0], "--rm", "reviewed", cwd=repo)[0] == 0
    assert where("tags.reviewed IS NOT NULL") == set()
    # a rebuilt index says the same
    code, out, _err = xp_main("show", "--rebuild", "-e", "baselines", "--format", "json", cwd=repo)
    assert [d["run_id"] for d in json.loads(out)] == [ids[2]]
    assert where("tags.stage = 'dev'") == {ids[0], ids[2]}


def test_only_runs_whose_notes_changed_are_read_again(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = make_runs(5)
    assert len(where("tags.stage = 'dev'")) == 5
    read: list[str] = []
    real = store.iter_rows

    def counting(repo_: object, wanted: dict[str, str]) -> object:
        read.extend(wanted.values())
        return real(repo_, wanted)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "iter_rows", counting)
    xp.set_tag("reviewed", "yes", run=ids[3])
    assert where("tags.reviewed = 'yes'") == {ids[3]}
    assert read == [ids[3]]
    read.clear()
    assert where("tags.reviewed = 'yes'") == {ids[3]}  # nothing moved: nothing read
    assert read == []
    git(repo, "pack-refs", "--all")  # the notes ref now in packed-refs: the same tip
    assert where("tags.reviewed = 'yes'") == {ids[3]}
    assert read == []
    xp.set_tag("reviewed", "yes", run=ids[1])  # a loose ref again, over the packed one
    assert where("tags.reviewed = 'yes'") == {ids[1], ids[3]}
    assert read == [ids[1]]


def test_annotations_fetched_from_another_clone_show_before_a_merge(team: Team) -> None:
    a, b = team.a, team.b
    for clone in (a, b):
        assert xp_main("init", cwd=clone)[0] == 0
    run_id = log_run(a, {"m.bin": b"1"})
    git(a, "push", "-q")
    git(b, "fetch", "-q")
    assert "tags.reviewed" not in select_runs(find_repo(a)).keys
    assert xp_main("tag", run_id, "reviewed=yes", cwd=b)[0] == 0
    assert where("tags.reviewed = 'yes'", b) == {run_id}
    git(b, "push", "-q")
    git(a, "fetch", "-q")  # plain git: refs/xp/remotes/origin/notes
    assert where("tags.reviewed = 'yes'", a) == {run_id}


def test_a_lost_notes_history_reads_every_row_again(repo: Path) -> None:
    ids = make_runs(2)
    xp.set_tag("reviewed", "yes", run=ids[0])
    assert where("tags.reviewed = 'yes'") == {ids[0]}
    # someone throws the notes away and starts again; git gc drops the old notes commits
    git(repo, "update-ref", "-d", "refs/notes/xp")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    xp.set_tag("owner", "ann", run=ids[1])
    assert where("tags.reviewed = 'yes'") == set()
    assert where("tags.owner = 'ann'") == {ids[1]}
    assert where("tags.stage = 'dev'") == set(ids)


def test_a_notes_ref_that_is_not_a_commit_is_ignored(repo: Path) -> None:
    ids = make_runs(2)
    xp.set_tag("reviewed", "yes", run=ids[0])
    blob = git(repo, "hash-object", "-w", "--stdin", input_text="not notes").strip()
    git(repo, "update-ref", "refs/xp/remotes/origin/notes", blob)
    assert where("tags.reviewed = 'yes'") == {ids[0]}
    assert where("tags.stage = 'dev'") == set(ids)
    code, _out, err = xp_main("show", cwd=repo)
    assert code == 0, err


def test_a_reader_that_raced_a_notes_change_stores_rows_as_the_winner_annotated(
    repo: Path,
) -> None:
    """Reader A looked at the notes, then B applied newer ones before A stored a new run's
    row: A's row must carry B's annotations, or it would stay stale under B's notes state."""
    from xp.query.index import Index, open_index

    make_runs(1)
    open_index(find_repo()).close()
    a = Index(find_repo())
    a._sync_notes()  # A has looked at the notes (none yet)
    [late] = make_runs(1)
    xp.set_tag("reviewed", "yes", run=late)
    b = Index(find_repo())
    b._sync_notes()  # B applies the new notes; the new run has no row yet
    b.close()
    a._sync_notes = lambda: None  # type: ignore[method-assign]  # A goes on from its look
    a.sync()
    a.close()
    assert where("tags.reviewed = 'yes'") == {late}
