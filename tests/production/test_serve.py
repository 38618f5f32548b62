"""``xp model serve``: predictions over HTTP from a real scikit-learn model, request metrics
logged as production points, and pickles from runs this clone did not record refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import xp
from tests.helpers import (
    Team,
    free_port,
    git,
    model_version,
    one_line_error,
    spawned,
    wait_for,
    xp_main,
)
from xp.gitstore.repo import find_repo
from xp.production import points
from xp.production.serve import Serving, serving
from xp.production.trust import version_trust
from xp.sharing import registry

X = [[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 5.0], [4.0, 2.0]]
Y = [1.0, 2.0, 4.0, 9.0, 8.0]


def fitted() -> Any:
    """A real scikit-learn model, fitted on named columns as most pipelines are."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(pd.DataFrame(X, columns=["a", "b"]), Y)


def predicted(model: Any, rows: list[list[float]]) -> list[Any]:
    import pandas as pd

    return [pytest.approx(v) for v in model.predict(pd.DataFrame(rows, columns=["a", "b"]))]


def call(url: str, body: object, path: str = "/predict") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def served(repo: Path) -> Iterator[tuple[Serving, Any]]:
    model = fitted()
    model_version(repo, "diabetes", stage="production", model=model)
    with serving(find_repo(repo), spec="diabetes@production", port=0, window=3600) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        try:
            yield srv, model
        finally:
            srv.shutdown()
            thread.join()


def test_serve_answers_predictions_in_every_input_form(served: tuple[Serving, Any]) -> None:
    srv, model = served
    rows = [[1.5, 2.0], [0.0, 0.0]]
    expected = predicted(model, rows)
    assert call(srv.url, {"instances": rows}) == (200, {"predictions": expected})
    assert call(srv.url, {"inputs": rows}, "/invocations")[1]["predictions"] == expected
    assert call(srv.url, rows)[1]["predictions"] == expected
    split = {"dataframe_split": {"columns": ["a", "b"], "data": rows}}
    assert call(srv.url, split)[1]["predictions"] == expected
    records = {"dataframe_records": [{"b": r[1], "a": r[0]} for r in rows]}
    assert call(srv.url, records)[1]["predictions"] == expected
    with urllib.request.urlopen(srv.url + "/health", timeout=30) as response:
        health = json.loads(response.read())
    assert health["status"] == "ok"
    assert (health["model"], health["version"]) == ("diabetes", "v0.0.1")
    code, error = call(srv.url, {"instances": [[1.0]]})  # the model wants two features
    assert code == 400
    assert "ValueError" in error["error"]
    assert call(srv.url, b"not json")[0] == 400
    assert call(srv.url, {"nothing": 1})[1]["error"].startswith("send {")
    assert call(srv.url, {"instances": rows}, "/elsewhere")[0] == 404
    assert srv.stage == "production"


def test_request_metrics_become_production_points_of_the_version(repo: Path) -> None:
    model_version(repo, "diabetes", stage="production", model=fitted())
    with serving(find_repo(repo), spec="diabetes@production", port=0, window=3600) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        for _ in range(4):
            assert call(srv.url, {"instances": X})[0] == 200
        assert call(srv.url, {"instances": [[1.0]]})[0] == 400
        srv.shutdown()
        thread.join()
    assert not list((repo / ".git" / "xp" / "tmp").glob("**/serve-*"))  # its files are gone
    found = {p.metric: p for p in points.read(find_repo(repo), model="diabetes").points}
    assert found["requests"].value == 5
    assert found["errors"].value == 1
    assert found["rows"].value == 20
    assert found["latency_ms_p95"].value >= found["latency_ms_p50"].value > 0
    assert {p.version for p in found.values()} == {"v0.0.1"}
    assert {p.stage for p in found.values()} == {"production"}


def test_serve_command_over_http_until_interrupted(repo: Path) -> None:
    model = fitted()
    model_version(repo, "diabetes", stage="production", model=model)
    port = free_port()
    cmd = [sys.executable, "-m", "xp", "model", "serve", "diabetes@production"]
    cmd += ["--port", str(port), "--window", "0.3"]
    with spawned(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert p.poll() is None, p.communicate()
            try:
                urllib.request.urlopen(url + "/health", timeout=5).close()
            except OSError:
                return False
            return True

        wait_for(up, "xp model serve to answer")
        for _ in range(3):
            code, body = call(url, {"instances": [[1.0, 1.0]]})
            assert code == 200
            assert body["predictions"] == predicted(model, [[1.0, 1.0]])

        def logged() -> float:
            found = points.read(find_repo(repo), model="diabetes").points
            return sum(pt.value for pt in found if pt.metric == "requests")

        wait_for(lambda: logged() == 3, "the request metrics of a window to be logged")
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert "serving diabetes@v0.0.1" in err
    assert "was recorded in this clone" in err
    logged_lines = [line for line in err.splitlines() if line.startswith("logged ")]
    assert sum(int(line.split()[1]) for line in logged_lines) == 3  # over one or more windows


def test_a_pickle_from_someone_elses_run_is_refused_unless_trusted(team: Team) -> None:
    a, b = team.a, team.b
    model = fitted()
    model_version(a, "diabetes", stage="production", model=model)
    assert xp_main("push", cwd=a)[0] == 0
    git(a, "push", "-q", "origin", "--tags")
    assert xp_main("pull", cwd=b)[0] == 0
    git(b, "fetch", "-q", "origin", "--tags")

    code, _out, err = xp_main("model", "serve", "diabetes@production", "--port", "0", cwd=b)
    line = one_line_error(code, err)
    assert "diabetes@v0.0.1: run " in line
    assert "was fetched from origin; loading its pickle would run that run's code here" in line
    assert "--trust" in line
    assert not (b / ".git" / "xp" / "tmp").exists() or not list(
        (b / ".git" / "xp" / "tmp").glob("**/serve-*")
    )
    # at a terminal xp asks; "n" keeps the refusal
    primary, secondary = os.openpty()
    cmd = [sys.executable, "-m", "xp", "model", "serve", "diabetes@production", "--port", "0"]
    with spawned(cmd, cwd=b, stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 text=True) as proc:  # fmt: skip
        os.close(secondary)
        os.write(primary, b"n\n")
        _out, asked = proc.communicate(timeout=120)
    os.close(primary)
    assert proc.returncode == 1
    assert "was fetched from origin; loading its model runs code it chose." in asked
    assert "Load it anyway? [y/N]" in asked
    assert "]: xp: error: diabetes@v0.0.1: run" in asked.strip().splitlines()[-1]
    with serving(find_repo(b), spec="diabetes@v0.0.1", port=0, trust=True) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        assert call(srv.url, {"instances": X})[1]["predictions"] == predicted(model, X)
        assert srv.stage is None  # a version spec logs nothing without --stage
        srv.shutdown()
        thread.join()
    assert not version_trust(
        find_repo(b), registry.resolve(find_repo(b), "diabetes@v0.0.1")
    ).trusted
    assert version_trust(find_repo(a), registry.resolve(find_repo(a), "diabetes@v0.0.1")).trusted


def test_a_run_fetched_into_refs_xp_runs_is_still_someone_elses(team: Team) -> None:
    """A fetch refspec such as ``refs/xp/*:refs/xp/*`` writes fetched runs where local runs
    live; trust follows who wrote the commit, not where its ref is."""
    a, b = team.a, team.b
    model_version(a, "diabetes", stage="production", model=fitted())
    assert xp_main("push", cwd=a)[0] == 0
    git(a, "push", "-q", "origin", "--tags")
    # one ref per run on the remote, as an older xp pushes them (docs/format.md, section 1)
    git(a, "push", "-q", "--no-verify", "origin", "refs/xp/runs/*:refs/xp/runs/*")
    git(b, "fetch", "-q", "origin", "+refs/xp/runs/*:refs/xp/runs/*", "--tags")
    version = registry.resolve(find_repo(b), "diabetes@v0.0.1")
    assert git(b, "rev-parse", f"refs/xp/runs/{version.run_id}").strip() == version.commit
    trust = version_trust(find_repo(b), version)
    assert not trust.trusted
    assert "not recorded here" in trust.reason


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen (openssh-client)")
def test_a_version_whose_tag_is_signed_by_a_known_key_is_trusted(team: Team) -> None:
    a, b = team.a, team.b
    key = team.bare.parent / "signing"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)], check=True
    )
    model_version(a, "churn", model=fitted())
    message = git(a, "tag", "-l", "--format=%(contents)", "churn@v0.0.1")
    commit = git(a, "rev-parse", "churn@v0.0.1^{commit}").strip()
    git(a, "tag", "-d", "churn@v0.0.1")
    git(
        a, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "tag", "-s",
        "churn@v0.0.1", "-m", message, commit,
    )  # fmt: skip
    assert xp_main("push", cwd=a)[0] == 0
    git(a, "push", "-q", "origin", "--tags")
    assert xp_main("pull", cwd=b)[0] == 0
    git(b, "fetch", "-q", "origin", "--tags")
    version = registry.resolve(find_repo(b), "churn@v0.0.1")
    assert not version_trust(find_repo(b), version).trusted  # no key known yet
    allowed = team.bare.parent / "allowed_signers"
    allowed.write_text(f"committer@example.com {key.with_suffix('.pub').read_text()}")
    git(b, "config", "gpg.ssh.allowedSignersFile", str(allowed))
    trust = version_trust(find_repo(b), version)
    assert trust.trusted
    assert "churn@v0.0.1 has a signature git verify-tag accepts" in trust.reason


@pytest.mark.framework
@pytest.mark.filterwarnings("ignore")  # MLflow's own warnings about its signatures
def test_serve_loads_an_mlflow_pyfunc_model(repo: Path) -> None:
    """Runs where MLflow is installed (not part of the test extra: it is large)."""
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    model = fitted()
    folder = repo / "out" / "mlflow-model"
    mlflow_sklearn.save_model(model, str(folder))
    with xp.start_run(path=repo) as run:
        xp.log_artifact(folder, name="model")
    xp.register_model(str(run.id), "iris", path=repo)
    with serving(find_repo(repo), spec="iris@v0.0.1", port=0) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        split = {"dataframe_split": {"columns": ["a", "b"], "data": X}}
        assert call(srv.url, split, "/invocations")[1]["predictions"] == predicted(model, X)
        assert srv.loaded.flavor == "mlflow"
        srv.shutdown()
        thread.join()
