"""Run records from other people's clones are data, never code or paths out of the work tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import xp
from tests.helpers import fsck, git, user_error
from xp.artifacts import cache
from xp.cli import cli
from xp.errors import XPError

EVIL_META = (
    "format: 1\nid: 1nhostile00000a\nname: !!python/object/apply:os.system ['touch PWNED']\n"
)
ESCAPING = (
    "format: 1\nid: 1nhostile00000b\nname: escape\nstatus: finished\n",
    "- path: ../../outside.bin\n  sha256: "
    + "a" * 64
    + "\n  size: 1\n  source: ../../outside.bin\n",
)


def _forge(repo: Path, run_id: str, files: dict[str, str]) -> str:
    """A run commit made with plumbing, as a hostile clone could push it."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "forge-index")}
    for path, text in files.items():
        sha = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            cwd=repo,
            input=text,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(
            ["git", "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}"],
            cwd=repo,
            env=env,
            check=True,
        )
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    commit = git(repo, "commit-tree", tree, "-m", "xp: forged").strip()
    git(repo, "update-ref", f"refs/xp/runs/{run_id}", commit)
    os.unlink(env["GIT_INDEX_FILE"])
    return commit


def test_yaml_tags_are_not_executed(repo: Path) -> None:
    _forge(repo, "1nhostile00000a", {".xp/run/meta.yaml": EVIL_META})
    with pytest.raises(XPError, match=r"invalid YAML|not allowed in a record file"):
        xp.get_run("1nhostile00000a")
    assert not (repo / "PWNED").exists()
    result = CliRunner().invoke(cli, ["show", "--all"])
    assert result.exit_code == 0  # shown as an error row, never a crash
    assert not (repo / "PWNED").exists()


def test_escaping_artifact_paths_are_refused(repo: Path, tmp_path: Path) -> None:
    meta, artifacts = ESCAPING
    commit = _forge(
        repo, "1nhostile00000b", {".xp/run/meta.yaml": meta, ".xp/run/artifacts.yaml": artifacts}
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["get", "1nhostile00000b", "-o", str(out)])
    assert result.exit_code == 1
    assert "not a clean relative path" in result.stderr
    assert not (tmp_path / "outside.bin").exists()
    # the post-checkout hook refuses the same record
    result = CliRunner().invoke(cli, ["hook", "post-checkout", "HEAD", commit, "1"])
    assert result.exit_code == 1
    assert "xp: error:" in result.stderr
    assert "Traceback" not in result.output
    assert not (repo.parent / "outside.bin").exists()


def test_hostile_record_through_a_real_fetch(repo: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    git(tmp_path, "clone", "-q", str(repo), str(evil))
    _forge(evil, "1nhostile00000a", {".xp/run/meta.yaml": EVIL_META})
    git(repo, "fetch", "-q", str(evil), "+refs/xp/runs/*:refs/xp/remotes/evil/runs/*")
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "show", "--all"], cwd=repo, capture_output=True, text=True
    )
    assert "Traceback" not in proc.stderr
    assert not (repo / "PWNED").exists()


def test_post_checkout_does_not_follow_symlinks_out(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo / "outputs").symlink_to(outside)
    meta = "format: 1\nid: 1nhostile00000c\nname: link\nstatus: finished\n"
    artifacts = (
        "- path: model.bin\n  sha256: " + "b" * 64 + "\n  size: 1\n  source: outputs/model.bin\n"
    )
    commit = _forge(
        repo, "1nhostile00000c", {".xp/run/meta.yaml": meta, ".xp/run/artifacts.yaml": artifacts}
    )
    result = CliRunner().invoke(cli, ["hook", "post-checkout", "HEAD", commit, "1"])
    assert result.exit_code == 1
    assert "leads outside the work tree" in result.stderr
    assert not list(outside.iterdir())


# -- a corpus of crafted runs, built with git plumbing in another clone and fetched ---------


@dataclass(frozen=True)
class Link:
    """A symlink entry (mode 120000) whose blob is ``target``."""

    target: str


def _plumb(repo: Path, *args: str, data: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, input=data, capture_output=True, check=True)
    return proc.stdout.decode().strip()


def _tree(repo: Path, files: dict[str, bytes | Link]) -> str:
    """A tree of ``files`` (nested paths, symlinks included) made with git mktree."""
    here: dict[str, bytes | Link] = {}
    below: dict[str, dict[str, bytes | Link]] = {}
    for path, content in files.items():
        head, _, rest = path.partition("/")
        if rest:
            below.setdefault(head, {})[rest] = content
        else:
            here[path] = content
    lines = []
    for name, content in here.items():
        data = content.target.encode() if isinstance(content, Link) else content
        sha = _plumb(repo, "hash-object", "-w", "--stdin", data=data)
        mode = "120000" if isinstance(content, Link) else "100644"
        lines.append(f"{mode} blob {sha}\t{name}")
    for name, sub in below.items():
        lines.append(f"040000 tree {_tree(repo, sub)}\t{name}")
    return _plumb(repo, "mktree", data="".join(f"{line}\n" for line in lines).encode())


def craft(evil: Path, run_id: str, meta: dict[str, object], files: dict[str, bytes | Link]) -> str:
    """A run commit on evil's HEAD whose tree is ``files`` plus a record, under
    refs/xp/runs/<run_id>; as a hostile clone could push it."""
    head = _plumb(evil, "rev-parse", "HEAD")
    record = {
        "format": 1,
        "id": run_id,
        "name": "crafted",
        "status": "finished",
        "baseline": head,
        "cwd": ".",
        **meta,
    }
    body = {".xp/run/meta.yaml": yaml.safe_dump(record).encode()}
    for name in ("artifacts", "inputs"):
        if name in meta:
            body[f".xp/run/{name}.yaml"] = yaml.safe_dump(meta[name]).encode()
            del record[name]
            body[".xp/run/meta.yaml"] = yaml.safe_dump(record).encode()
    tree = _tree(evil, {**files, **body})
    commit = _plumb(evil, "commit-tree", tree, "-p", head, "-m", "xp: crafted")
    _plumb(evil, "update-ref", f"refs/xp/runs/{run_id.replace('/', '_')}", commit)
    return commit


@pytest.fixture
def evil(repo: Path, tmp_path: Path) -> Iterator[Path]:
    """Another clone of the user's project, whose runs the user fetches."""
    path = tmp_path / "evil"
    git(tmp_path, "clone", "-q", str(repo), str(path))
    yield path
    fsck(path)


def fetch(repo: Path, evil: Path) -> None:
    git(repo, "fetch", "-q", str(evil), "+refs/xp/runs/*:refs/xp/remotes/evil/runs/*")


def cached(repo: Path, data: bytes) -> dict[str, object]:
    """``data`` in the user's cache (as a store would give it); its manifest entry."""
    sha = cache.add_bytes(repo / ".git" / "xp" / "cache", data)
    return {"sha256": sha, "size": len(data)}


def test_checkout_never_writes_through_a_symlink_the_run_makes(
    repo: Path, evil: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    for n, target in enumerate((str(outside), "../outside")):
        run_id = f"1n0hvstxe0ck0{n}"
        entry = {"path": "model.bin", "source": "outputs/victim.txt", **cached(repo, b"EVIL")}
        craft(
            evil,
            run_id,
            {"artifacts": [entry]},
            {"train.py": b"print('train')\n", "outputs": Link(target)},
        )
        fetch(repo, evil)
        result = CliRunner().invoke(cli, ["checkout", run_id])
        assert "symlink the run's own files make" in user_error(result)
        assert (outside / "victim.txt").read_text() == "precious"
        assert not (repo / "outputs").exists()  # refused before anything changed


def test_artifacts_into_git_s_own_folder_are_refused(repo: Path, evil: Path) -> None:
    hook = {
        "path": ".git/hooks/pre-commit",
        "source": ".git/hooks/post-checkout",
        **cached(repo, b"#!/bin/sh\n"),
    }
    craft(evil, "1n0hvstxe0gt00", {"artifacts": [hook]}, {"train.py": b"x\n"})
    fetch(repo, evil)
    assert ".git folder" in user_error(CliRunner().invoke(cli, ["checkout", "1n0hvstxe0gt00"]))
    assert not (repo / ".git" / "hooks" / "post-checkout").exists()
    got = CliRunner().invoke(cli, ["get", "1n0hvstxe0gt00", "-o", str(repo)])
    assert ".git folder" in user_error(got)
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()


def test_post_checkout_hook_refuses_a_symlink_git_just_made(
    repo: Path, evil: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    entry = {"path": "m.bin", "source": "outputs/m.bin", **cached(repo, b"EVIL")}
    commit = craft(evil, "1n0hvstxe0hk00", {"artifacts": [entry]}, {"outputs": Link(str(outside))})
    fetch(repo, evil)
    git(repo, "checkout", "-q", "--detach", commit)  # git makes outputs -> outside
    result = CliRunner().invoke(cli, ["hook", "post-checkout", "HEAD", commit, "1"])
    assert "outside the work tree" in user_error(result)
    assert list(outside.iterdir()) == []
    git(repo, "checkout", "-q", "-")


def test_reproduce_asks_before_running_someone_else_s_command(repo: Path, evil: Path) -> None:
    marker = repo.parent / "PWNED"
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    craft(evil, "1n0hvstxe0rp00", {"command": command}, {"train.py": b"x\n"})
    fetch(repo, evil)
    msg = user_error(CliRunner().invoke(cli, ["reproduce", "1n0hvstxe0rp00"]))
    assert "comes from git remote 'evil'" in msg
    assert "--trust" in msg
    assert "open(" in msg  # the command is shown
    assert not marker.exists()
    trusted = CliRunner().invoke(cli, ["reproduce", "1n0hvstxe0rp00", "--trust"])
    assert trusted.exit_code == 0, trusted.stderr  # the user read it and said so
    assert marker.exists()


@pytest.mark.parametrize(
    ("meta", "expect"),
    [
        ({"cwd": "../.."}, "working folder '../..', outside the repository"),
        ({"command": ["/bin/sh", "-c", "touch PWNED"]}, "runs '/bin/sh', outside the repo"),
        ({"command": ["python", "../../evil.py"]}, "runs '../../evil.py', outside"),
        ({"id": "../../../escape"}, "invalid id"),
    ],
)
def test_reproduce_refuses_paths_out_of_the_repository_even_when_trusted(
    repo: Path, evil: Path, meta: dict[str, object], expect: str
) -> None:
    craft(evil, "1n0hvstxe0pq00", {"command": ["python", "train.py"], **meta}, {"a": b"x\n"})
    fetch(repo, evil)
    ref = "refs/xp/remotes/evil/runs/1n0hvstxe0pq00"
    assert expect in user_error(CliRunner().invoke(cli, ["reproduce", ref, "--trust"]))
    assert not (repo / "PWNED").exists()
    assert not (repo.parent / "escape").exists()
    assert git(repo, "worktree", "list").count("\n") == 1


def test_reproduce_never_places_inputs_through_a_symlink(
    repo: Path, evil: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    entry = {"path": "data/x.csv", **cached(repo, b"EVIL")}
    craft(
        evil,
        "1n0hvstxe0np00",
        {"inputs": [entry], "command": ["train.py"]},
        {"train.py": b"print('x')\n", "data": Link(str(outside))},
    )
    fetch(repo, evil)
    result = CliRunner().invoke(cli, ["reproduce", "1n0hvstxe0np00", "--trust"])
    assert "outside" in user_error(result)
    assert list(outside.iterdir()) == []


def test_escape_sequences_in_records_never_reach_the_terminal(repo: Path, evil: Path) -> None:
    osc = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202e"
    craft(
        evil,
        "1n0hvstxe0sc00",
        {"name": f"n{osc}", "command": [f"c{osc}"]},
        {".xp/run/tags.yaml": yaml.safe_dump({"t": f"v{osc}"}).encode()},
    )
    fetch(repo, evil)
    streamed = (["show", "-a"], ["show", "-a", "--format", "md"])  # xp show -a streams rows
    for args in (
        ["show"],
        ["show", "--format", "md"],
        *streamed,
        ["diff", "1n0hvstxe0sc00", "HEAD"],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code in (0, 1), result.output
        for ch in "\x1b\x07\x9b\u202e":
            assert ch not in result.output, (args, result.output)
    shown = CliRunner().invoke(cli, ["show"]).stdout
    assert "n\\x1b]0;owned\\x07" in shown  # visible, not obeyed
    as_json = CliRunner().invoke(cli, ["show", "--format", "json"])
    assert "\x1b" not in as_json.stdout
    assert json.loads(as_json.stdout)[0]["name"] == f"n{osc}"  # exact once parsed
    assert CliRunner().invoke(cli, ["show", "-a", "--format", "json"]).stdout == as_json.stdout
    assert "n\\x1b]0;owned\\x07" in CliRunner().invoke(cli, ["show", "-a"]).stdout
    as_csv = CliRunner().invoke(cli, ["show", "--format", "csv"])
    assert f"n{osc}" in as_csv.stdout  # exact when piped; escaped only on a terminal
    assert CliRunner().invoke(cli, ["show", "-a", "--format", "csv"]).stdout == as_csv.stdout
    untrusted = CliRunner().invoke(cli, ["reproduce", "1n0hvstxe0sc00"])
    assert "\x1b" not in untrusted.output


# -- a corpus of crafted runs, built with plumbing and fetched (issue 10) ------------------------
BOMB = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
META = (
    "format: 1\nid: {id}\nname: {name}\nstatus: finished\nstart_time: '2026-01-01T00:00:00.000Z'\n"
)


def _meta(run_id: str, name: str) -> str:
    return META.format(id=run_id, name=name)


def corpus() -> dict[str, dict[str, bytes | str]]:
    """Run id -> record files (path below .xp/run/ -> content) of runs no xp would write."""
    many = "".join(f"m{i}: {i}\n" for i in range(12_000))
    return {
        "1nhost11e00001": {"meta.yaml": _meta("1nhost11e00001", "bomb"), "params.yaml": BOMB},
        "1nhost11e00002": {"meta.yaml": _meta("1nhost11e00002", "bomb-m"), "metrics.yaml": BOMB},
        "1nhost11e00003": {"meta.yaml": BOMB + "id: 1nhost11e00003\n"},
        "1nhost11e00004": {"meta.yaml": _meta("1nhost11e00004", "many"), "metrics.yaml": many},
        "1nhost11e00005": {
            "meta.yaml": _meta("1nhost11e00005", "deep"),
            "params.yaml": "a: " + "[" * 5000 + "]" * 5000 + "\n",
        },
        "1nhost11e00006": {
            "meta.yaml": _meta("1nhost11e00006", "big"),
            "tags.yaml": "t: '" + "x" * (5 << 20) + "'\n",
        },
        "1nhost11e00007": {
            "meta.yaml": _meta("1nhost11e00007", "tagged"),
            "params.yaml": "a: !!binary aGVsbG8=\nb: !!set {x}\n",
        },
        "1nhost11e00008": {
            "meta.yaml": _meta("1nhost11e00008", "digits"),
            "metrics.yaml": "m: " + "9" * 5000 + "\n",
        },
        "1nhost11e00009": {
            "meta.yaml": "format: 1\nid: 1nhost11e00009\nname: [a, b]\n"
            "start_time: '99999-01-01T00:00:00Z'\nend_time: '2026-13-45'\nduration: 1e999\n"
        },
        "1nhost11e0000a": {
            "meta.yaml": _meta("1nhost11e0000a", "utf8"),
            "series/loss.tsv": b"step\tvalue\ttimestamp\n0\t0.5\t1\n1\t\xff\xfe\t2\n",
            "packages.txt": b"numpy==2\n\xff\xfebad==1\n",
        },
        "1nhost11e0000b": {
            "meta.yaml": _meta("1nhost11e0000b", "entries"),
            "artifacts.yaml": "- just a string\n- [1, 2]\n",
        },
        "1nhost11e0000c": {
            "meta.yaml": _meta("1nhost11e0000c", "times"),
            "series/loss.tsv": "step\tvalue\ttimestamp\n0\t0.5\t" + "9" * 30 + "\n1\t1\t-1\n",
            "metrics.yaml": "loss: 1\n",
        },
        "1nhost11e0000d": {"meta.yaml": _meta("1nhost11e0000d", "newer") + "format: 99\n"},
        "1nhost11e0000e": {"meta.yaml": "- not\n- a mapping\n"},
        "1nhost11e0000g": {
            "meta.yaml": _meta("1nhost11e0000g", "series"),
            **{f"series/s{i}.tsv": "step\tvalue\ttimestamp\n0\t1\t1\n" for i in range(12_000)},
        },
        "1nhost11e0000f": {"meta.yaml": _meta("1nhost11e0000f", "date") + "end_time: 2026-13-45\n"},
    }


def _forge_many(repo: Path, runs: dict[str, dict[str, bytes | str]]) -> dict[str, str]:
    """Commits made with git hash-object / mktree / commit-tree / update-ref; id -> commit."""

    def run(*args: str, data: bytes | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, input=data, capture_output=True, check=True)
        return proc.stdout.decode().strip()

    blobs: dict[bytes, str] = {}

    def blob(data: bytes) -> str:
        if data not in blobs:
            blobs[data] = run("hash-object", "-w", "--stdin", data=data)
        return blobs[data]

    def tree(entries: dict[str, bytes | str]) -> str:
        """A tree of {path: content}; folders nest."""
        here: dict[str, bytes | str] = {}
        below: dict[str, dict[str, bytes | str]] = {}
        for path, content in entries.items():
            head, _, rest = path.partition("/")
            if rest:
                below.setdefault(head, {})[rest] = content
            else:
                here[path] = content
        lines = []
        for name, content in here.items():
            data = content.encode() if isinstance(content, str) else content
            lines.append(f"100644 blob {blob(data)}\t{name}")
        for name, sub in below.items():
            lines.append(f"040000 tree {tree(sub)}\t{name}")
        return run("mktree", data="".join(f"{line}\n" for line in lines).encode())

    out = {}
    for run_id, files in runs.items():
        root = tree({f".xp/run/{path}": content for path, content in files.items()})
        commit = run("commit-tree", root, "-m", f"xp: crafted {run_id}")
        run("update-ref", f"refs/xp/runs/{run_id}", commit)
        out[run_id] = commit
    return out


def test_a_fetched_corpus_of_crafted_runs_is_shown_never_fatal(repo: Path, tmp_path: Path) -> None:
    """Each crafted run through a real fetch: plain `xp show` lists every run (the broken
    ones as `invalid`, with why) and exits 0; get_run, xp diff and search_runs give a clean
    error or a value, never an internal error. How fast (<= 1 s, <= 200 MB) is measured by
    benchmarks/hostile_records.py."""
    with xp.start_run(name="mine") as mine:
        xp.log_metric("acc", 0.5)
    evil = tmp_path / "evil"
    git(tmp_path, "clone", "-q", str(repo), str(evil))
    crafted = corpus()
    _forge_many(evil, crafted)
    git(repo, "fetch", "-q", str(evil), "+refs/xp/runs/*:refs/xp/remotes/evil/runs/*")
    # ref names git takes but that are not UTF-8 (or not ASCII), packed by git itself
    commit = git(evil, "rev-parse", "refs/xp/runs/1nhost11e00001").strip().encode()
    for name in (b"refs/xp/runs/caf\xc3\xa9", b"refs/xp/runs/\xff\xfe", b"refs/heads/\xe9t\xe9"):
        subprocess.run([b"git", b"update-ref", name, commit], cwd=evil, check=True)
    git(repo, "fetch", "-q", str(evil), "+refs/xp/runs/*:refs/xp/remotes/evil/runs/*")
    git(repo, "pack-refs", "--all")
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "show", "--all", "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    docs = {d["run_id"]: d for d in json.loads(proc.stdout)}
    assert set(crafted) | {mine.id} == set(docs)
    invalid = {i for i, d in docs.items() if d["status"] == "invalid"}
    assert invalid == {
        "1nhost11e00001",
        "1nhost11e00002",
        "1nhost11e00003",
        "1nhost11e00004",
        "1nhost11e00005",
        "1nhost11e00006",
        "1nhost11e00007",
        "1nhost11e00008",
        "1nhost11e0000d",
        "1nhost11e0000e",
        "1nhost11e0000f",
    }, {i: d.get("error") for i, d in docs.items()}
    assert "anchors and aliases" in docs["1nhost11e00001"]["error"]
    assert "10,000" in docs["1nhost11e00004"]["error"]
    assert "upgrade xp" in docs["1nhost11e0000d"]["error"]
    assert docs["1nhost11e00009"]["created"] is None  # a year the index cannot hold: no time
    table = subprocess.run(
        [sys.executable, "-m", "xp", "show", "--all"], cwd=repo, capture_output=True, text=True
    )
    assert table.returncode == 0, table.stderr
    for run_id in crafted:
        _read_all(run_id)
    assert xp.get_run("1nhost11e0000c").series("loss")["timestamp"].isna().tolist() == [True, False]
    assert xp.get_run("1nhost11e00009").name == "['a', 'b']"
    # series files are read when asked for (issue 18): the damaged one fails its reader
    with pytest.raises(XPError, match="not UTF-8"):
        xp.get_run("1nhost11e0000a").series("loss")
    with pytest.raises(XPError, match="not UTF-8"):
        xp.get_series("1nhost11e0000a", "loss")
    with pytest.raises(XPError, match="entry 1 is not"):
        xp.get_run("1nhost11e0000b")
    with pytest.raises(XPError, match="12,000 series files"):
        xp.get_run("1nhost11e0000g")
    for other in ("1nhost11e00001", "1nhost11e0000c", "1nhost11e00009"):
        result = CliRunner().invoke(cli, ["diff", mine.id, other])
        assert result.exit_code in (0, 1), result.output
        assert "Traceback" not in result.output
    frame = xp.search_runs()
    assert len(frame) == len(docs)
    assert "internal error" not in CliRunner().invoke(cli, ["gc", "--dry-run"]).output


def _read_all(run_id: str) -> None:
    """Read every part of a run a user can ask for: a value, or one clean XPError line."""
    try:
        got = xp.get_run(run_id)
        got.series_frame()
    except XPError as exc:
        assert "\n" not in str(exc)  # noqa: PT017 - many runs in one test, each either way
