"""Tests of src/xp/query/."""
