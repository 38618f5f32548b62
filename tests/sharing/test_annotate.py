"""Annotations after the fact: xp tag / note / move as git notes on the run commit, merged
from two clones editing the same run, carried by plain git push/fetch, hostile notes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import xp
from tests.helpers import Team, git, log_run, one_line_error, xp_main
from xp import format as fmt


def run_commit(root: Path, run_id: str) -> str:
    return git(root, "rev-parse", f"{fmt.RUNS_PREFIX}{run_id}").strip()


def test_tag_note_move_without_rewriting_the_run(repo: Path) -> None:
    with xp.start_run(name="rf", tags={"stage": "dev"}) as run:
        xp.log_metric("acc", 0.9)
    run_id = str(run.id)
    before = run_commit(repo, run_id)
    code, out, err = xp_main("tag", "rf", "reviewed=yes", "owner=ann", "--rm", "stage", cwd=repo)
    assert code == 0, err
    assert out.strip() == f"run {run_id}: owner=ann reviewed=yes"
    assert xp_main("note", run_id, "looks overfit\nsee plot", cwd=repo)[0] == 0
    assert xp_main("move", run_id, "-e", "baselines", cwd=repo)[0] == 0
    assert run_commit(repo, run_id) == before  # the run commit is as it was
    view = xp.get_run(run_id)
    assert view.tags == {"owner": "ann", "reviewed": "yes"}
    assert view.recorded.tags == {"stage": "dev"}
    assert view.experiment == "baselines"
    assert [n.args["text"] for n in view.notes] == ["looks overfit\nsee plot"]
    assert view.notes[0].who == "Test Committer <committer@example.com>"
    # plain git shows them
    assert "looks overfit" in git(repo, "log", "-1", "--notes=xp", f"refs/xp/runs/{run_id}")
    # xp log RUN: recorded, then each change with who and when
    code, out, err = xp_main("log", run_id, "--json", cwd=repo)
    assert code == 0, err
    changes = json.loads(out)
    assert [c["what"] for c in changes] == [
        "recorded: rf (finished) in experiment default",
        "tag reviewed=yes",
        "tag owner=ann",
        "removed tag stage",
        "note: looks overfit\nsee plot",
        "moved to experiment baselines",
    ]
    assert {c["who"] for c in changes[1:]} == {"Test Committer <committer@example.com>"}
    assert changes[1]["time"] < changes[2]["time"] < changes[-1]["time"]
    code, out, err = xp_main("log", run_id, cwd=repo)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["when", "(UTC)", "who", "what"]
    code, out, err = xp_main("log", cwd=repo)  # across runs, newest first
    assert code == 0, err
    assert out.splitlines()[1].endswith("moved to experiment baselines")
    code, out, err = xp_main("note", run_id, cwd=repo)
    assert "looks overfit" in out
    # xp diff compares the tags as they are now
    with xp.start_run(name="other"):
        pass
    code, out, err = xp_main("diff", run_id, "other", cwd=repo)
    assert code == 0, err
    assert "reviewed" in out
    assert "stage" not in out


def test_annotation_errors_are_one_line(repo: Path) -> None:
    with xp.start_run() as run:
        pass
    run_id = str(run.id)
    for args, message in [
        (("tag", run_id, "novalue"), "is not KEY=VALUE"),
        (("tag", run_id), "nothing to change"),
        (("tag", run_id, "a=1", "--rm", "a"), "both set and removed"),
        (("tag", run_id, "xp.sweep=1"), "names starting with 'xp.' are xp's own"),
        (("tag", run_id, "bad key!=1"), "has characters outside"),
        (("tag", "nope", "a=1"), "no run, ref or commit 'nope'"),
        (("note", run_id, "   "), "a note needs some text"),
        (("move", run_id, "-e", "../x"), "not a clean path"),
    ]:
        code, _out, err = xp_main(*args, cwd=repo)
        assert message in one_line_error(code, err), args


def test_api(repo: Path) -> None:
    with xp.start_run() as run:
        xp.set_tag("live", "yes")  # the active run, as ever
    run_id = str(run.id)
    xp.set_tag("reviewed", True, run=run_id)
    xp.set_tags({"a": 1, "b": 2}, run=run_id)
    xp.delete_tag("live", run=run_id)
    xp.note(run_id, "fine")
    xp.move_run(run_id, "keep")
    view = xp.get_run(run_id)
    assert view.tags == {"a": "1", "b": "2", "reviewed": "True"}
    assert view.experiment == "keep"
    assert [e.verb for e in view.history] == ["tag", "tag", "tag", "untag", "note", "move"]


def test_two_clones_edit_the_same_run_and_both_edits_survive(team: Team) -> None:
    a, b = team.a, team.b
    for clone in (a, b):
        assert xp_main("init", cwd=clone)[0] == 0
    run_id = log_run(a, {"m.bin": b"1"})
    git(a, "push", "-q")  # plain git push carries the run
    git(b, "fetch", "-q")
    assert xp_main("tag", run_id, "reviewed=yes", cwd=a)[0] == 0
    assert xp_main("tag", run_id, "owner=bob", cwd=b)[0] == 0
    assert xp_main("note", run_id, "from b", cwd=b)[0] == 0
    assert xp_main("tag", run_id, "verdict=a-says", cwd=a)[0] == 0
    assert xp_main("tag", run_id, "verdict=b-says", cwd=b)[0] == 0  # the later edit
    git(a, "push", "-q")
    proc = subprocess.run(["git", "push", "-q"], cwd=b, capture_output=True, text=True)
    # b's notes are not a fast-forward of a's: the hook fetches a's, merges them
    # (cat_sort_uniq) and sends the merge, as `xp push` does
    assert proc.returncode == 0, proc.stderr
    assert "xp: sent 1 annotation ref to origin with this push" in proc.stderr
    git(b, "fetch", "-q")
    # reading shows the union before any merge
    assert xp.get_run(run_id, path=b).tags == {
        "owner": "bob",
        "reviewed": "yes",
        "verdict": "b-says",
    }
    assert xp_main("pull", cwd=b)[0] == 0  # merges (cat_sort_uniq) into refs/notes/xp
    git(b, "push", "-q")  # now a fast-forward
    git(a, "fetch", "-q")
    assert xp_main("pull", cwd=a)[0] == 0
    for clone in (a, b):
        view = xp.get_run(run_id, path=clone)
        assert view.tags == {"owner": "bob", "reviewed": "yes", "verdict": "b-says"}, clone
        assert [n.args["text"] for n in view.notes] == ["from b"]
    tips = {git(c, "rev-parse", "refs/notes/xp").strip() for c in (a, b)}
    assert len(tips) == 1
    assert git(b, "config", "notes.xp.mergeStrategy").strip() == "cat_sort_uniq"


def test_xp_push_merges_and_retries(team: Team) -> None:
    a, b = team.a, team.b
    run_id = log_run(a, {"m.bin": b"1"})
    assert xp_main("push", cwd=a)[0] == 0
    assert xp_main("pull", cwd=b)[0] == 0
    assert xp_main("tag", run_id, "x=1", cwd=a)[0] == 0
    assert xp_main("tag", run_id, "y=2", cwd=b)[0] == 0
    assert xp_main("push", cwd=a)[0] == 0
    code, _out, err = xp_main("push", cwd=b)  # rejected once, fetched, merged, pushed
    assert code == 0, err
    assert xp_main("pull", cwd=a)[0] == 0
    assert xp.get_run(run_id, path=a).tags == {"x": "1", "y": "2"}


def test_plain_git_push_works_before_any_annotation(team: Team) -> None:
    assert xp_main("init", cwd=team.a)[0] == 0
    (team.a / "f.txt").write_text("x")
    git(team.a, "add", "f.txt")
    git(team.a, "commit", "-qm", "f")
    git(team.a, "push", "-q")  # no refs/notes/xp here yet: the glob refspec is fine
    git(team.b, "pull", "-q")  # nor on the remote
    _code, out, _err = xp_main("init", "--undo", cwd=team.a)
    assert "refs/notes/xp" in out
    assert "notes" not in git(team.a, "config", "--get-all", "remote.origin.fetch")


@pytest.mark.parametrize(
    "content",
    [
        b"garbage\n\xff\xfe not utf-8\n2026-01-01T00:00:00.000Z\ttag\t{bad json\tx\n",
        b'2026-01-01T00:00:00.000Z\ttag\t{"key":"../x","value":"v"}\tx\n',
        b"2026-01-01T00:00:00.000Z\tlaunch\t{}\tx\n",
        b"x" * (1 << 20) + b"\n",
    ],
)
def test_hostile_notes_from_a_remote_are_ignored_with_a_warning(team: Team, content: bytes) -> None:
    a, b = team.a, team.b
    run_id = log_run(a, {"m.bin": b"1"})
    assert xp_main("tag", run_id, "fine=yes", cwd=a)[0] == 0
    assert xp_main("push", cwd=a)[0] == 0
    commit = run_commit(a, run_id)
    # someone writes junk into the shared notes with plain git
    git(b, "fetch", "-q", "origin", "refs/notes/xp:refs/notes/xp")
    git(b, "fetch", "-q", "origin", "+refs/xp/runs/*:refs/xp/remotes/origin/runs/*")
    path = b / "junk"
    path.write_bytes(content)
    git(b, "notes", "--ref=xp", "append", "-F", str(path), commit)
    git(b, "push", "-q", "-f", "origin", "refs/notes/xp")
    assert xp_main("pull", cwd=a)[0] == 0
    view = xp.get_run(run_id, path=a)
    assert view.tags.get("fine") == "yes"  # ours survive the merge
    code, _out, err = xp_main("log", run_id, cwd=a)
    assert code == 0
    assert "xp: warning:" in err
    assert xp_main("show", cwd=a)[0] == 0


def test_a_notes_ref_that_is_not_a_notes_history_is_skipped(team: Team) -> None:
    a, b = team.a, team.b
    run_id = log_run(a, {"m.bin": b"1"})
    assert xp_main("push", cwd=a)[0] == 0
    blob = git(b, "hash-object", "-w", "--stdin", input_text="not a commit").strip()
    git(b, "update-ref", "refs/notes/xp", blob)
    git(b, "push", "-q", "origin", "refs/notes/xp")
    code, _out, err = xp_main("pull", cwd=a)
    assert code == 0, err
    assert xp_main("tag", run_id, "ok=1", cwd=a)[0] == 0  # our own notes still work
    assert xp.get_run(run_id, path=a).tags == {"ok": "1"}


def test_bundles_carry_annotations(team: Team, tmp_path: Path) -> None:
    a = team.a
    run_id = log_run(a, {"m.bin": b"1"})
    assert xp_main("tag", run_id, "reviewed=yes", cwd=a)[0] == 0
    out = tmp_path / "r.xpb"
    assert xp_main("bundle", "create", str(out), cwd=a)[0] == 0
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(team.bare), "other")
    assert xp_main("bundle", "import", str(out), cwd=other)[0] == 0
    assert xp.get_run(run_id, path=other).tags == {"reviewed": "yes"}
    assert (
        git(other, "rev-parse", "refs/notes/xp").strip()
        == git(a, "rev-parse", "refs/notes/xp").strip()
    )


def test_xp_tag_loads_only_what_annotating_takes(repo: Path) -> None:
    """`xp tag`/`xp note` are typed by hand after a run (issue 15: <= 100 ms): opening the
    repository must not load recovery, clone setup, the record model or suggestions, nor
    PyYAML (the config's parse is cached, the run's tags read by fastyaml)."""
    with xp.start_run(name="rf") as run:
        xp.log_metric("acc", 0.9)
    code = (
        "import sys\n"
        "from xp.cli import main\n"
        f"assert main(['tag', {str(run.id)!r}, 'k=v']) == 0\n"
        f"assert main(['note', {str(run.id)!r}, 'fine']) == 0\n"
        "heavy = ('click', 'xp.cli.render', 'pandas', 'difflib', 'xp.tracking.recover',"
        " 'xp.record.journal',"
        " 'xp.sharing.project_setup', 'xp.hooks.install', 'xp.record.model', 'yaml',"
        " 'xp.record.yamlio', 'xp.gitstore.trees', 'socket', 'secrets', 'dulwich.objects',"
        " 'hashlib')\n"
        "print('loaded:', [m for m in heavy if m in sys.modules])\n"
    )
    # coverage.py, which CI starts in every process, imports socket and hashlib itself
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "loaded: []", out.stdout


def test_plain_annotation_commands_end_as_click_commands_do(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plain forms (answered before click loads) and the click forms give the same
    output, errors and exit codes; anything with an option goes to click."""
    from xp.cli import main

    with xp.start_run(name="rf") as run:
        xp.log_metric("acc", 0.9)
    rid = str(run.id)
    assert main(["tag", rid, "k=v", "w=1"]) == 0
    assert capsys.readouterr().out == f"run {rid}: k=v w=1\n"
    assert main(["tag", rid, "--rm", "w"]) == 0  # click's form
    assert capsys.readouterr().out == f"run {rid}: k=v\n"
    assert main(["tag", rid, "novalue"]) == 1
    err = capsys.readouterr().err
    assert err == "xp: error: 'novalue' is not KEY=VALUE; e.g. xp tag RUN reviewed=yes\n"
    assert main(["tag", "nosuchrun", "k=v"]) == 1
    assert capsys.readouterr().err.startswith("xp: error: ")
    assert main(["note", rid, "x\x1b]0;pwned\x07"]) == 0
    assert main(["note", rid]) == 0
    assert "x\\x1b]0;pwned\\x07" in capsys.readouterr().out  # shown, never obeyed
    assert main(["tag", rid]) == 1  # through click: the library says what is missing
    assert "nothing to change" in capsys.readouterr().err
