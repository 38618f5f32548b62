"""``.xp/config.yaml``: validation a user meets on a typo, and the one unit rule for sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import one_line_error, xp_main
from xp.config import human_size, parse_size


def write_config(repo: Path, text: str) -> None:
    (repo / ".xp").mkdir(exist_ok=True)
    (repo / ".xp" / "config.yaml").write_text(text)


def test_misspelt_key_is_named_with_a_did_you_mean(repo: Path) -> None:
    write_config(repo, "parmas: [p.yaml]\nmax_file_size: 5MB\n")
    code, _out, err = xp_main("show", cwd=repo)
    assert code == 0
    assert "unknown key 'parmas' (did you mean 'params'?)" in err
    code, out, _err = xp_main("doctor", cwd=repo)
    assert code == 1
    assert "did you mean 'params'" in out


def test_newer_format_and_wrong_types_are_one_line_errors(repo: Path) -> None:
    write_config(repo, "format: 99\n")
    line = one_line_error(*xp_main("show", cwd=repo)[::2])
    assert "format 99" in line
    assert "upgrade xp" in line
    write_config(repo, "hooks: [pre-push]\n")
    line = one_line_error(*xp_main("commit", cwd=repo)[::2])
    assert "'hooks' must be a mapping" in line
    write_config(repo, "format: one\n")
    assert "format must be a whole number" in one_line_error(*xp_main("show", cwd=repo)[::2])


@pytest.mark.parametrize(
    ("text", "size"),
    [("10MB", 10**7), ("10 mb", 10**7), ("10MiB", 10 * 2**20), ("1.5kB", 1500), ("512", 512)],
)
def test_one_unit_rule(text: str, size: int) -> None:
    assert parse_size(text) == size
    assert parse_size(human_size(size).replace(" ", "")) == pytest.approx(size, rel=0.01)


def test_a_changed_config_is_seen_by_the_next_command(repo: Path) -> None:
    """The parsed config is cached under the git dir keyed by the file's exact text: every
    edit is seen, a broken cache is ignored, and a value JSON cannot hold exactly
    (a date) is parsed again each time rather than cached."""
    import subprocess
    import sys

    from xp.config import load_config
    from xp.gitstore.repo import find_repo

    def cold(text: str) -> list[str]:  # a fresh process: nothing cached in memory
        write_config(repo, text)
        code = "from xp.config import load_config\nfrom xp.gitstore.repo import find_repo\n"
        code += "import sys\nprint(list(load_config(find_repo('.')).params), 'yaml' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
        )
        return out.stdout.split()

    assert cold("params: [a.yaml]\n") == ["['a.yaml']", "True"]  # parsed, cached
    assert cold("params: [a.yaml]\n") == ["['a.yaml']", "False"]  # from the cache
    assert cold("params: [b.yaml]\n") == ["['b.yaml']", "True"]  # same size, new text
    assert cold("params: [b.yaml]\n") == ["['b.yaml']", "False"]
    cache = find_repo(repo).xp_dir / "config-parsed.json"
    cache.write_text("not json")
    assert cold("params: [d.yaml]\n") == ["['d.yaml']", "True"]
    assert cold("params: [d.yaml]\nwhen: 2001-12-14\n") == ["['d.yaml']", "True"]
    assert cold("params: [d.yaml]\nwhen: 2001-12-14\n") == ["['d.yaml']", "True"]  # not cached
    write_config(repo, "params: [e.yaml]\nmax_file_size: 5MB\n")
    config = load_config(find_repo(repo))
    assert config.params == ("e.yaml",)
    assert config.max_file_size == 5 * 10**6
