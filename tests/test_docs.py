"""Docs are a contract: the CLI reference matches --help, every command is documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import xp
from xp.cli import COMMANDS
from xp.cli.reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == render(), (
        "docs/cli.md is stale: run `python -m xp.cli.reference > docs/cli.md`"
    )


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, (_module, _attr, short) in COMMANDS.items():
        assert short, name
        assert f"`xp {name}" in readme, f"README.md does not mention xp {name}"


def test_public_api_is_exactly_all() -> None:
    import types

    public = {
        n
        for n, v in vars(xp).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert set(xp.__all__) - {"__version__"} == (public | set(xp._LAZY)) - {"annotations", "Any"}
    for name in xp.__all__:
        assert getattr(xp, name) is not None


def test_import_xp_and_cli_stay_light() -> None:
    code = (
        "import sys, xp, xp.cli\n"
        "heavy = [m for m in ('pandas', 'dulwich', 'yaml', 'fsspec', 'sklearn', 'numpy')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_format_doc_names_every_record_file() -> None:
    from xp import format as fmt

    text = (ROOT / "docs" / "format.md").read_text()
    for name in (
        fmt.META_FILE,
        fmt.PARAMS_FILE,
        fmt.METRICS_FILE,
        fmt.TAGS_FILE,
        fmt.ARTIFACTS_FILE,
        fmt.INPUTS_FILE,
        fmt.PACKAGES_FILE,
        fmt.MEDIA_FILE,
        fmt.RUNS_PREFIX,
        fmt.REMOTES_PREFIX,
        fmt.RECORD_DIR,
    ):
        assert name in text, name
    assert f"version {fmt.FORMAT_VERSION}" in text
