from __future__ import annotations

import time

import pytest

from xp import format as fmt
from xp.errors import InvalidKeyError


def test_run_ids_sort_by_time_and_are_unique() -> None:
    t = time.time()
    ids = [fmt.new_run_id(t + i / 1000) for i in range(0, 5000, 7)]
    assert ids == sorted(ids)
    assert all(fmt.ID_RE.match(i) for i in ids)
    assert fmt.id_time(ids[0]) == int(t * 1000) / 1000
    assert len(ids[0]) == 14


def test_ids_made_in_a_row_sort_in_order() -> None:
    ids = [fmt.new_run_id() for _ in range(5000)]  # many per millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == 5000


def test_run_id_has_no_ambiguous_letters() -> None:
    ids = "".join(fmt.new_run_id() for _ in range(2000))
    assert not set(ids) & set("ilou")


@pytest.mark.parametrize("key", ["loss", "train/loss", "a.b-c d:e", "métrica", "x" * 250])
def test_valid_keys(key: str) -> None:
    assert fmt.validate_key(key) == key


@pytest.mark.parametrize(
    "key", ["", "a//b", "/a", "a/", "../a", "a/./b", "x" * 251, "a\tb", "a\nb", "a*b", 3, " a"]
)
def test_invalid_keys(key: object) -> None:
    with pytest.raises(InvalidKeyError) as info:
        fmt.validate_key(key)
    assert "\n" not in str(info.value)
