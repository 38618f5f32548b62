"""Tests of src/xp/record/."""
