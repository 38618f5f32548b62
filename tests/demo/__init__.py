"""Tests of src/xp/demo/."""
