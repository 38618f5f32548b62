"""Tests of src/xp/execution/."""
