"""The suite's pytest plugin (registered by tests/conftest.py): opt-in markers and coverage.

Opt-in markers. ``slow``, ``browser`` and ``framework`` tests are skipped in a local run unless
``--run-slow`` / ``--run-browser`` / ``--run-framework`` is given, and all run when the ``CI``
environment variable is set (CI systems set it; ``.ci/run`` exports ``CI=true``).

Coverage. With ``--coverage``, on by default when ``CI`` is set, every Python process of the
run is measured: the pytest process, each xdist worker and every child a test starts (``xp``
CLIs, git hooks' ``git-xp``, scripts, multiprocessing workers). They inherit
``COVERAGE_PROCESS_START``, so coverage.py's ``.pth`` file starts measuring at interpreter start,
with the settings of ``[tool.coverage.*]`` in pyproject.toml (branches, parallel data files),
and ``COVERAGE_FILE``, so every data file lands in the repository root, not in the temporary
repo a child ran in. At the end the files are combined into ``.coverage``, a report is printed,
and the run fails when the total is below ``fail_under``. This is why the README's one test
command is also CI's: CI only sets ``CI``.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import pytest

OPT_IN = {
    "slow": "takes more than a few seconds",
    "browser": "drives a headless browser",
    "framework": "needs an ML framework (PyTorch, Lightning, ...)",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xp", "xp's test suite")
    for marker, what in OPT_IN.items():
        group.addoption(
            f"--run-{marker}",
            action="store_true",
            help=f"also run tests marked {marker} ({what}); implied when CI is set",
        )
    group.addoption(
        "--coverage",
        action="store_true",
        default=None,
        help="measure branch coverage of every process and fail under the floor in "
        "pyproject.toml; on when CI is set",
    )
    group.addoption("--no-coverage", dest="coverage", action="store_false")


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: its coverage started at startup
        return
    wanted = config.getoption("coverage")
    if wanted or (wanted is None and in_ci()):
        distributed = config.getoption("dist", default="no") != "no"  # xdist runs the tests
        config.pluginmanager.register(Coverage(config.rootpath, distributed), "xp-coverage")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_ci():
        return
    skipped = [m for m in OPT_IN if not config.getoption(f"run_{m}")]
    for item in items:
        for marker in skipped:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"{marker}: run with --run-{marker}"))


class Coverage:
    """Set up measurement of every process, then combine, report and check the floor."""

    def __init__(self, root: Path, distributed: bool) -> None:
        import coverage

        self.config_file = str(root / "pyproject.toml")
        self.data_file = str(root / ".coverage")
        coverage.Coverage(data_file=self.data_file, config_file=self.config_file).erase()
        os.environ["COVERAGE_PROCESS_START"] = self.config_file
        os.environ["COVERAGE_FILE"] = self.data_file
        # Workers and children are started by the .pth file; xdist's own shutdown waits for the
        # workers to exit (and so to write their data) before the trylast sessionfinish below
        # runs. Without xdist this process runs the tests: it measures itself.
        self.own: coverage.Coverage | None = None
        if not distributed:
            self.own = coverage.Coverage(
                data_file=self.data_file, data_suffix=True, config_file=self.config_file
            )
            self.own.start()
        self.report = ""
        self.failed = False

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """After xdist has shut its workers down: combine, report, check the floor."""
        import coverage

        if self.own is not None:
            self.own.stop()
            self.own.save()
        cov = coverage.Coverage(data_file=self.data_file, config_file=self.config_file)
        with warnings.catch_warnings(record=True) as caught:
            # A process SIGKILLed while writing its data (tests kill processes) leaves a file
            # that cannot be read: skipped, and said so, rather than failing the run.
            warnings.simplefilter("always")
            cov.combine()
        for leftover in Path(self.data_file).parent.glob(Path(self.data_file).name + ".*"):
            leftover.unlink()
        cov.save()
        out = io.StringIO()
        for warning in caught:
            out.write(f"coverage.py: {warning.message}\n")
        total = cov.report(file=out)
        floor = float(cov.get_option("report:fail_under") or 0)  # type: ignore[arg-type]
        precision = int(cov.get_option("report:precision") or 0)  # type: ignore[call-overload]
        self.report = out.getvalue()
        verdict = "below" if total < floor else "at or above"
        self.report += (
            f"Total coverage {total:.{precision}f} % (branches and every subprocess), "
            f"{verdict} the floor of {floor:g} % (fail_under in pyproject.toml)\n"
        )
        if total < floor:
            self.failed = True
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.section("coverage", red=self.failed, green=not self.failed)
        terminalreporter.write(self.report)
