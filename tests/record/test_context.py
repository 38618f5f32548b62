"""A run's static context says what ``platform`` would, without importing it on Linux."""

from __future__ import annotations

import platform
import sys

import pytest

from xp.record import context


def test_python_and_platform_strings_are_platforms_own() -> None:
    found = context.static_context()
    assert found["python"] == platform.python_version()
    if sys.platform.startswith("linux"):
        assert found["platform"].endswith(
            "-with-" + "".join(platform.libc_ver()) if platform.libc_ver()[0] else ""
        )
    assert context._libc() == platform.libc_ver()


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3.11.7 (main, Dec  8 2023, 18:56:58) [GCC 12.2.0]", "3.11.7"),
        ("3.13.0rc1 (main, Aug  1 2024) [GCC 12.2.0]", "3.13.0rc1"),
        ("3.12 (main, Aug  1 2024) [GCC 12.2.0]", "3.12.0"),
        ("3.12.1+ (heads/3.12:abc, Aug  1 2024) [GCC 12.2.0]", "3.12.1+"),
    ],
)
def test_python_version_reads_sys_version_as_platform_does(
    monkeypatch: pytest.MonkeyPatch, version: str, expected: str
) -> None:
    monkeypatch.setattr(sys, "version", version)
    platform._sys_version_cache.clear()  # type: ignore[attr-defined]
    try:
        assert context._python_version() == expected == platform.python_version()
    finally:
        platform._sys_version_cache.clear()  # type: ignore[attr-defined]
