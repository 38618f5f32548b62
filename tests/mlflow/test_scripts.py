"""The corpus: 20 MLflow tracking scripts (tests/mlflow/scripts/: ten adapted from MLflow's
examples and docs tutorials, ten written from the common patterns of public scripts), each
ending in MLflow's own expectations as assertions and printing ``OK``.

Each script runs in its own process three ways:

- ``xp``: with only its imports changed (``import mlflow`` -> ``import xp.mlflow as mlflow``,
  ``from mlflow...`` -> ``from xp.mlflow...``) and MLflow made unimportable: the one-line
  switch of issue 12, without MLflow;
- ``mlflow`` (framework): unchanged, with real MLflow on its sqlite store, which shows the
  assertions are MLflow's behaviour and not xp's;
- ``plugin`` (framework): unchanged, with real MLflow and ``MLFLOW_TRACKING_URI=xp:<repo>``.

Scripts that train with scikit-learn are marked ``framework`` in every variant.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import git

SCRIPTS = Path(__file__).resolve().parent / "scripts"
NEEDS_SKLEARN = {path.name for path in SCRIPTS.glob("*.py") if "sklearn" in path.read_text()}
BLOCK_MLFLOW = "import sys; sys.modules['mlflow'] = None  # MLflow is not installed\n"


def to_xp(source: str) -> str:
    """The one-line switch: only the import statements change."""
    source = re.sub(
        r"^(\s*)import mlflow(\.\w+)*$", r"\1import xp.mlflow as mlflow", source, flags=re.M
    )
    return re.sub(r"^(\s*)from mlflow([. ])", r"\1from xp.mlflow\2", source, flags=re.M)


def _env(uri: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    if uri is not None:
        env["MLFLOW_TRACKING_URI"] = uri
    return env


def _run(script: Path, cwd: Path, uri: str | None) -> None:
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=_env(uri),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("OK"), proc.stdout[-2000:]


def _cases(variant: str) -> list[object]:
    cases: list[object] = []
    for path in sorted(SCRIPTS.glob("*.py")):
        marks = [pytest.mark.framework] if variant != "xp" or path.name in NEEDS_SKLEARN else []
        cases.append(pytest.param(path.name, marks=marks, id=path.stem))
    return cases


def test_the_corpus_has_twenty_scripts() -> None:
    assert len(list(SCRIPTS.glob("*.py"))) == 20


def test_only_imports_change() -> None:
    source = "import mlflow\nimport mlflow.sklearn\n"
    source += "from mlflow.entities import Run\nx = 'import mlflow'\n"
    assert to_xp(source) == (
        "import xp.mlflow as mlflow\nimport xp.mlflow as mlflow\n"
        "from xp.mlflow.entities import Run\nx = 'import mlflow'\n"
    )


@pytest.mark.parametrize("name", _cases("xp"))
def test_script_runs_on_xp_mlflow(name: str, repo: Path, tmp_path: Path) -> None:
    script = tmp_path / name
    script.write_text(BLOCK_MLFLOW + to_xp((SCRIPTS / name).read_text()))
    _run(script, repo, None)
    assert git(repo, "for-each-ref", "refs/xp/runs/").strip(), "no run recorded in git"
    assert not (repo / "mlruns").exists()
    assert not (repo / "mlflow.db").exists()


@pytest.mark.framework
@pytest.mark.parametrize("name", _cases("mlflow"))
def test_script_runs_on_mlflow(name: str, tmp_path: Path) -> None:
    _run(SCRIPTS / name, tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.mark.framework
@pytest.mark.parametrize("name", _cases("plugin"))
def test_script_runs_on_the_plugin(name: str, repo: Path) -> None:
    _run(SCRIPTS / name, repo, f"xp:{repo}")
    assert git(repo, "for-each-ref", "refs/xp/runs/").strip(), "no run recorded in git"
