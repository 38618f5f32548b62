"""Signed provenance: xp init --sign, signed run commits and registry tags (a real SSH key
made by ssh-keygen, gpg.format=ssh), and xp verify's chain down to the artifact bytes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import xp
from tests.helpers import Team, git, one_line_error, xp_main
from xp.artifacts import cache
from xp.gitstore.repo import find_repo

pytestmark = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="needs ssh-keygen (openssh-client)"
)


def keypair(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def use_key(root: Path, key: Path) -> None:
    git(root, "config", "gpg.format", "ssh")
    git(root, "config", "user.signingKey", str(key))


def trust(root: Path, folder: Path, *keys: Path) -> None:
    allowed = folder / "allowed_signers"
    allowed.write_text(
        "".join(f"{k.name}@example.com {k.with_suffix('.pub').read_text()}" for k in keys)
    )
    git(root, "config", "gpg.ssh.allowedSignersFile", str(allowed))


def model(root: Path, content: bytes = b"weights") -> str:
    out = root / "out"
    out.mkdir(exist_ok=True)
    (out / "model.pkl").write_bytes(content)
    with xp.start_run(path=root) as run:
        xp.log_metric("acc", 0.9)
        xp.log_artifact(out / "model.pkl")
    version = xp.register_model(str(run.id), "churn", path=root).version
    xp.assign_stage("churn", version, "production", path=root)
    return str(run.id)


def test_init_sign_needs_a_key_then_signs_runs_and_tags(repo: Path, tmp_path: Path) -> None:
    code, _out, err = xp_main("init", "--sign", cwd=repo)
    assert "git cannot sign here" in one_line_error(code, err)
    assert "xp.sign" not in git(repo, "config", "--list")
    alice = keypair(tmp_path, "alice")
    use_key(repo, alice)
    code, out, err = xp_main("init", "--sign", cwd=repo)
    assert code == 0, err
    assert "signed: xp.sign true" in out
    run_id = model(repo)
    ref = f"refs/xp/runs/{run_id}"
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in git(repo, "cat-file", "-p", ref)
    assert "BEGIN SSH SIGNATURE" in git(repo, "cat-file", "-p", "churn@v0.0.1")
    assert "BEGIN SSH SIGNATURE" in git(repo, "cat-file", "-p", "churn#production#1")
    trust(repo, tmp_path, alice)
    git(repo, "verify-commit", ref)  # git itself accepts them
    git(repo, "verify-tag", "churn@v0.0.1")
    # the signed commit is the unsigned one plus its signature: same tree, parent, message
    body = git(repo, "cat-file", "-p", ref)
    assert f"xp-run: {run_id}" in body
    assert body.splitlines()[1].startswith("parent ")
    code, out, err = xp_main("init", "--undo", cwd=repo)
    assert "no longer signed" in out
    with xp.start_run(path=repo) as unsigned:
        pass
    assert "gpgsig" not in git(repo, "cat-file", "-p", f"refs/xp/runs/{unsigned.id}")


def test_verify_walks_the_chain_and_names_each_signer(repo: Path, tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    use_key(repo, alice)
    assert xp_main("init", "--sign", cwd=repo)[0] == 0
    run_id = model(repo)
    # without an allowed-signers file git cannot check SSH signatures: say how to fix it
    code, out, err = xp_main("verify", "churn@production", cwd=repo)
    assert "gpg.ssh.allowedSignersFile" in one_line_error(code, err)
    trust(repo, tmp_path, alice)
    code, out, err = xp_main("verify", "churn@production", cwd=repo)
    assert code == 0, err
    kinds = [line.split()[1:3] for line in out.splitlines()[1:-1]]
    assert [k[0] for k in kinds] == ["stage", "version", "run", "code", "artifact"]
    assert out.count("signed by alice@example.com (ssh key SHA256:") == 3
    assert "churn#production#1" in out
    assert "churn@v0.0.1" in out
    assert run_id in out
    assert "bytes match" in out
    assert out.splitlines()[-1] == "verified: 5 links hold"
    code, out, err = xp_main("verify", run_id, cwd=repo)  # a run: its own chain
    assert code == 0, err
    assert "stage tag" not in out


def test_broken_links_fail_with_the_reason(repo: Path, tmp_path: Path) -> None:
    alice, mallory = keypair(tmp_path, "alice"), keypair(tmp_path, "mallory")
    use_key(repo, alice)
    assert xp_main("init", "--sign", cwd=repo)[0] == 0
    run_id = model(repo)
    trust(repo, tmp_path, alice)
    # a tampered artifact in the cache
    entry = xp.get_run(run_id, path=repo).artifacts[0]
    obj = cache.object_path(cache.cache_dir(find_repo(repo)), entry.sha256)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"evil weights")
    code, out, err = xp_main("verify", "churn@production", cwd=repo)
    assert "artifact model.pkl" in one_line_error(code, err)
    assert "tampered" in err
    assert out.splitlines()[-1].startswith("FAIL")
    obj.unlink()
    code, out, err = xp_main("verify", "churn@production", cwd=repo)
    assert "not in the local cache" in one_line_error(code, err)
    # a version tag re-made by a key nobody trusts
    message = git(repo, "tag", "-l", "--format=%(contents:subject)", "churn@v0.0.1")
    commit = git(repo, "rev-parse", "churn@v0.0.1^{commit}").strip()
    git(repo, "tag", "-d", "churn@v0.0.1")
    git(
        repo, "-c", f"user.signingKey={mallory}", "tag", "-s", "churn@v0.0.1", "-m", message, commit
    )
    code, out, err = xp_main("verify", "churn@v0.0.1", cwd=repo)
    line = one_line_error(code, err)
    assert "version tag churn@v0.0.1" in line
    assert "a key git does not trust" in line
    # a run that was never signed
    git(repo, "config", "xp.sign", "false")
    with xp.start_run(path=repo) as plain:
        pass
    code, _out, err = xp_main("verify", str(plain.id), cwd=repo)
    assert "not signed" in one_line_error(code, err)
    code, _out, err = xp_main("verify", "nope@production", cwd=repo)
    assert "no model 'nope'" in one_line_error(code, err)


def test_a_clone_verifies_what_it_fetched(team: Team) -> None:
    alice = keypair(team.bare.parent, "alice")
    use_key(team.a, alice)
    assert xp_main("init", "--sign", cwd=team.a)[0] == 0
    model(team.a)
    assert xp_main("push", cwd=team.a)[0] == 0
    git(team.a, "push", "-q", "origin", "--tags")
    assert xp_main("pull", "--artifacts", cwd=team.b)[0] == 0
    git(team.b, "fetch", "-q", "origin", "--tags")
    code, _out, err = xp_main("verify", "churn@production", cwd=team.b)
    assert "allowedSignersFile" in one_line_error(code, err)
    trust(team.b, team.bare.parent, alice)
    code, out, err = xp_main("verify", "churn@production", cwd=team.b)
    assert code == 0, err
    assert out.count("signed by alice@example.com") == 3


def test_data_inputs_are_checked_when_cached(repo: Path, tmp_path: Path) -> None:
    """A run's data inputs are links too: bytes in the cache are re-hashed; an input recorded
    by hash alone is reported as not checked, not as broken."""
    alice = keypair(tmp_path, "alice")
    use_key(repo, alice)
    assert xp_main("init", "--sign", cwd=repo)[0] == 0
    trust(repo, tmp_path, alice)
    (repo / "train.csv").write_text("a,b\n1,2\n")
    (repo / "test.csv").write_text("a,b\n3,4\n")
    with xp.start_run(path=repo) as run:
        xp.log_input(repo / "train.csv", cache=True)
        xp.log_input(repo / "test.csv")  # hashed, bytes not kept
    code, out, err = xp_main("verify", str(run.id), cwd=repo)
    assert code == 0, err
    lines = out.splitlines()
    assert any("train.csv" in line and "cached bytes match" in line for line in lines)
    assert any("test.csv" in line and "bytes not checked" in line for line in lines)
    entry = next(e for e in xp.get_run(str(run.id), path=repo).inputs if e.path == "train.csv")
    obj = cache.object_path(cache.cache_dir(find_repo(repo)), entry.sha256)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"a,b\n6,6\n")
    code, out, err = xp_main("verify", str(run.id), cwd=repo)
    assert code == 1
    assert "data input train.csv" in one_line_error(code, err)
    assert "cached bytes do not match the sha256" in out + err


def test_xp_commit_signs_its_run_as_the_api_does(repo: Path, tmp_path: Path) -> None:
    """``xp commit`` (its lean path, issue 18: xp.sign read from one ``git var -l``) signs
    under ``xp init --sign`` and stops when it is undone."""
    alice = keypair(tmp_path, "alice")
    use_key(repo, alice)
    assert xp_main("init", "--sign", cwd=repo)[0] == 0
    trust(repo, tmp_path, alice)
    code, out, err = xp_main("commit", "-m", "signed", cwd=repo)
    assert code == 0, err
    ref = out.split("ref ", 1)[1].split()[0]
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in git(repo, "cat-file", "-p", ref)
    git(repo, "verify-commit", ref)
    assert xp_main("init", "--undo", cwd=repo)[0] == 0
    code, out, err = xp_main("commit", "-m", "plain", cwd=repo)
    assert code == 0, err
    plain = out.split("ref ", 1)[1].split()[0]
    assert "gpgsig" not in git(repo, "cat-file", "-p", plain)
