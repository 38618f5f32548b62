"""Tests of src/xp/artifacts/."""
